// A weighted sum of losses written as a spec string, so an experiment changes its loss with one setting:
//
//   "ce"                 cross-entropy (weight 1)
//   "ce:0.7+f1:0.3"      0.7 cross-entropy + 0.3 soft macro-F1
//   "focal:1 + ce:0.5"   spaces around names, weights and '+' are ignored
//
// Grammar: spec = term ('+' term)*, term = name [':' weight]. Names: ce (cross-entropy: class weights,
// label smoothing), focal (focal loss: gamma, class weights), f1 (soft macro-F1: epsilon), all defined in
// losses.h and reduced by their mean; the settings come from LossOptions. A weight is a finite number > 0;
// a name appears at most once. Anything else is an effnet::Error quoting the spec and the bad part.
#pragma once

#include <string>
#include <vector>

#include "tensor/tensor.h"

namespace effnet {

struct LossTerm {
  std::string name;
  double weight = 1;
};

std::vector<LossTerm> parse_loss_spec(const std::string& spec);

struct LossOptions {
  Tensor class_weights;        // [C] on the logits' device and dtype, for ce and focal; undefined = none
  double label_smoothing = 0;  // ce
  double focal_gamma = 2;      // focal
  double f1_epsilon = 1e-7;    // f1
};

class WeightedLoss {
 public:
  WeightedLoss(const std::string& spec, LossOptions options);

  // sum_k weight_k loss_k(logits, targets), a scalar.
  Tensor operator()(const Tensor& logits, const Tensor& targets) const;

  const std::vector<LossTerm>& terms() const { return terms_; }
  // "0.7 ce + 0.3 f1"
  std::string str() const;

 private:
  std::vector<LossTerm> terms_;
  LossOptions options_;
};

}  // namespace effnet
