// Mixed precision's autocast, as torch.autocast. While an AutocastGuard(dtype) lives on a thread,
// convolutions cast their input, weight and bias to `dtype` (float16 or bfloat16) before they run; each cast
// is an op on the tape, so gradients reach the float32 parameters ("master weights") as float32. What a
// convolution returns is 16-bit, so everything after it computes in 16 bits too: elementwise ops and
// reductions (in float32 registers, rounded once), batch norm (float32 parameters, statistics and running
// averages; 16-bit activations). The model casts back to float32 before its classifier (models/), so losses,
// metrics and the optimizer see float32 as before.
//
//   { AutocastGuard amp(kBFloat16); logits = model.forward(images); }   loss and backward after it
//
// The guard nests and restores the previous state; AutocastGuard(std::nullopt) turns autocast off inside.
#pragma once

#include <optional>

#include "tensor/tensor.h"

namespace effnet {

class AutocastGuard {
 public:
  explicit AutocastGuard(std::optional<DType> dtype);
  ~AutocastGuard();
  AutocastGuard(const AutocastGuard&) = delete;
  AutocastGuard& operator=(const AutocastGuard&) = delete;

 private:
  std::optional<DType> previous_;
};

// The 16-bit dtype convolutions cast to on this thread, or nullopt.
std::optional<DType> autocast_dtype();

// t cast to the autocast dtype (recorded on the tape) when autocast is on and t is a floating tensor of
// another dtype; t itself otherwise (undefined included).
Tensor autocast(const Tensor& t);

}  // namespace effnet
