// One training step of a reduced EfficientNet-B0, shared by the tests that compare a whole step across
// precisions, layouts and devices (test_mixed_precision.cpp, test_channels_last.cpp).
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <optional>
#include <vector>

#include "losses/losses.h"
#include "models/efficientnet.h"
#include "tensor/autocast.h"
#include "tensor/ops.h"
#include "tensor/random.h"

namespace effnet::test {

// B0 at a quarter of its width and depth, 10 classes, drop path on (its masks are drawn in float32 from
// the default generator, so every precision and layout drops the same samples).
inline EfficientNetOptions reduced_b0(bool channels_last = false) {
  EfficientNetOptions o = efficientnet_options("efficientnet_b0");
  o.width = 0.25;
  o.depth = 0.25;
  o.num_classes = 10;
  o.drop_path = 0.2;
  o.channels_last = channels_last;
  return o;
}

struct StepResult {
  std::vector<double> logits, grads;  // grads: every parameter's, concatenated in named_parameters order
  double loss = 0;
};

// Forward (under autocast to `precision` when given), cross-entropy and backward of 4 images of 64 x 64, in
// training mode, from fixed seeds. Whatever the precision and layout, the logits and every parameter's
// gradient must come out float32 and row-major (the optimizer reads them so).
inline StepResult train_step(const Device& device, const EfficientNetOptions& options,
                             std::optional<DType> precision) {
  manual_seed(7);
  EfficientNet model(options);
  model.to(device);
  model.train();
  manual_seed(8);
  const Tensor images = randn({4, 3, 64, 64}).to(device);
  const Tensor labels = from_vector({1, 3, 5, 7}, {4}, TensorOptions(kInt64, device));
  StepResult r;
  Tensor loss;
  {
    AutocastGuard amp(precision);
    const Tensor logits = model.forward(images);
    EXPECT_EQ(logits.dtype(), kFloat32);
    loss = cross_entropy(logits, labels);
    r.logits = logits.to_vector();
  }
  loss.backward();
  r.loss = loss.item();
  for (const auto& [name, p] : model.named_parameters()) {
    EXPECT_EQ(p.grad().dtype(), kFloat32) << name;
    EXPECT_TRUE(p.grad().is_contiguous()) << name;
    for (double g : p.grad().to_vector()) r.grads.push_back(g);
  }
  return r;
}

// ||a - b|| / ||b||
inline double relative_error(const std::vector<double>& a, const std::vector<double>& b) {
  double d = 0, n = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    d += (a[i] - b[i]) * (a[i] - b[i]);
    n += b[i] * b[i];
  }
  return std::sqrt(d / n);
}

}  // namespace effnet::test
