// Gradient clipping by global norm, as PyTorch's torch.nn.utils.clip_grad_norm_(params, max_norm,
// norm_type=2, error_if_nonfinite=False):
//
//   norm = sqrt(sum over every gradient element g^2)        (accumulated in float64, in a fixed order)
//   g   *= min(max_norm / (norm + 1e-6), 1)                 (always, so a norm within bounds scales by 1)
//
// A non-finite norm is not an error: an infinite norm scales by 0 (infinite elements become NaN), a NaN
// norm by NaN, exactly as PyTorch does; the returned norm lets the caller notice and skip the step.
// Two multi-tensor backend calls, no host round trip: the norm stays on the gradients' device.
#pragma once

#include <vector>

#include "tensor/tensor.h"

namespace effnet {

// Clips the gradients of `params` (those without one are skipped) in place and returns the total norm
// before clipping: a 0-dimensional tensor of the gradients' dtype on their device (zero when none has a
// gradient; .item() reads it, which waits for the device).
Tensor clip_grad_norm(const std::vector<Tensor>& params, double max_norm);
// The same total norm without clipping (an infinity or NaN in any gradient makes it non-finite).
Tensor grad_norm(const std::vector<Tensor>& params);

}  // namespace effnet
