// The three-head model of the recipe's experiments: the 18 competition classes factor as
// class = mask * 6 + gender * 3 + age_band (data/dataset.h), so a model may predict the three factors with
// three heads (mask 3, gender 2, age band 3) and still be scored, saved and ensembled as an 18-class model.
//
//   joint log-probabilities  log p(class) = log p_mask(m) + log p_gender(g) + log p_age(a)
//                            (log_softmax of each head, summed by broadcasting over [N, 3, 2, 3]); their
//                            softmax is exactly the product of the heads' probabilities (the rows already
//                            sum to 1), so softmax / argmax / every metric and file work unchanged
//   loss                     sum_h w_h L(z_h, t_h) over the heads with w_h > 0, t_h the factor of the
//                            18-class target, L the configured loss spec (losses/loss_spec.h) with that
//                            head's own LossOptions
// Decisions (config: train.head_weights, the usual loss keys): the loss spec, label smoothing, focal gamma
// and the f1 epsilon apply to each head on its own classes (smoothing spreads e over the head's classes, a
// soft F1 is that head's macro-F1); inverse class weights are computed per head from the head's own class
// counts (mask 3, gender 2, age 3), not from the 18 classes, which a head cannot weight.
#pragma once

#include <array>
#include <string>
#include <vector>

#include "losses/loss_spec.h"
#include "tensor/tensor.h"

namespace effnet {

// The heads, in this order everywhere (weights, options, names): mask, gender, age band.
constexpr int64_t kMaskHeadCount = 3;
constexpr std::array<int64_t, kMaskHeadCount> kMaskHeadClasses = {3, 2, 3};
constexpr std::array<const char*, kMaskHeadCount> kMaskHeadNames = {"mask", "gender", "age"};

// Logits [N, 3], [N, 2], [N, 3].
struct MaskHeadLogits {
  Tensor mask, gender, age;
  const Tensor& operator[](int64_t head) const { return head == 0 ? mask : head == 1 ? gender : age; }
};

// [N, 18] log-probabilities of the 18 classes; differentiable (ops only). Errors name the head whose shape
// is wrong.
Tensor mask_joint_log_probs(const MaskHeadLogits& heads);

// The head's targets of 18-class targets (int64 [N], any device, each in [0, 18)): mask = t / 6,
// gender = t / 3 mod 2, age = t mod 3; int64 on the targets' device. A target outside is an error naming
// its position.
std::array<Tensor, kMaskHeadCount> mask_head_targets(const Tensor& targets);
// The same for host labels (class counts for the per-head class weights).
std::array<std::vector<int64_t>, kMaskHeadCount> mask_head_labels(const std::vector<int64_t>& labels);

class MultiHeadLoss {
 public:
  // weights: w_h >= 0, finite, not all 0; options[h] is head h's (class weights [classes_h] or none).
  MultiHeadLoss(const std::string& spec, std::array<double, kMaskHeadCount> weights,
                std::array<LossOptions, kMaskHeadCount> options);

  // A scalar: sum_h w_h L_h(heads[h], head targets).
  Tensor operator()(const MaskHeadLogits& heads, const Tensor& targets) const;

 private:
  std::array<double, kMaskHeadCount> weights_;
  std::array<WeightedLoss, kMaskHeadCount> losses_;
};

// "1,1,1" -> {1, 1, 1}: three finite numbers >= 0 (mask, gender, age), not all 0. Throws naming `option`.
std::array<double, kMaskHeadCount> parse_head_weights(const std::string& text, const char* option);

}  // namespace effnet
