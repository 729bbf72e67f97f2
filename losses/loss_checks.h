// Argument checks shared by the losses of losses.h. Each message names the loss and the offending tensor.
#pragma once

#include "tensor/tensor.h"

namespace effnet {

// logits [N, C] float32/float64 with N, C >= 1; targets int64 [N] on the logits' device, every value in
// [0, C) (read on the host: see losses.h); weight undefined or [C] of the logits' dtype and device.
void check_classification_inputs(const char* loss, const Tensor& logits, const Tensor& targets,
                                 const Tensor& weight);

}  // namespace effnet
