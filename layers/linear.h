// Linear: y = x W^T + b with weight [out, in] and bias [out] (cuBLAS / OpenBLAS through matmul).
// Initialised as timm initialises EfficientNet's classifier: uniform(-r, r), r = 1 / sqrt(out); bias 0.
// GlobalAvgPool2d: [N, C, H, W] -> [N, C], the mean over H and W. Flatten: [N, ...] -> [N, rest].
#pragma once

#include "layers/module.h"

namespace effnet {

class Linear : public Module {
 public:
  Linear(int64_t in_features, int64_t out_features, bool bias = true);
  Tensor forward(const Tensor& x) override;

  int64_t in_features() const { return in_; }
  int64_t out_features() const { return out_; }
  Tensor weight, bias;

 private:
  int64_t in_, out_;
};

class GlobalAvgPool2d : public Module {
 public:
  Tensor forward(const Tensor& x) override;
};

class Flatten : public Module {
 public:
  Tensor forward(const Tensor& x) override;
};

}  // namespace effnet
