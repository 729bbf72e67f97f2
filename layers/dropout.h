// Dropout and DropPath (stochastic depth), both "inverted": in training, kept values are scaled by
// 1 / keep so that eval mode is the identity.
//   Dropout:  each element kept with probability keep = 1 - p       (before the classifier; the recipe: 0.7)
//   DropPath: each sample's whole residual branch kept with probability keep (one Bernoulli per sample)
// Masks come from the default generator (tensor/random.h), so manual_seed makes them reproducible.
#pragma once

#include "layers/module.h"

namespace effnet {

class Dropout : public Module {
 public:
  explicit Dropout(double p);  // p in [0, 1)
  Tensor forward(const Tensor& x) override;
  double p() const { return p_; }

 private:
  double p_;
};

class DropPath : public Module {
 public:
  explicit DropPath(double p);  // p in [0, 1)
  Tensor forward(const Tensor& x) override;
  // forward(x) + shortcut, the residual connection, as one pass in training (addcmul): the same bits and
  // random numbers as the two ops, without the dropped branch's temporary.
  Tensor forward_add(const Tensor& x, const Tensor& shortcut);
  double p() const { return p_; }

 private:
  double p_;
};

}  // namespace effnet
