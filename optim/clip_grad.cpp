// clip_grad_norm: collects the gradients, checks they share a device and dtype, and runs the backend's
// global_norm and clip_by_norm kernels.
#include "optim/clip_grad.h"

#include <cmath>

#include "tensor/backend.h"
#include "tensor/ops.h"

namespace effnet {

Tensor clip_grad_norm(const std::vector<Tensor>& params, double max_norm) {
  EFFNET_CHECK(std::isfinite(max_norm) && max_norm > 0, "clip_grad_norm: max_norm must be a finite number > 0, got ",
               max_norm);
  std::vector<Tensor> grads;
  for (size_t i = 0; i < params.size(); ++i) {
    const Tensor& grad = params[i].grad();
    if (!grad.defined()) continue;
    EFFNET_CHECK(grad.is_contiguous(), "clip_grad_norm: the gradient of parameter ", i, " must be contiguous, got ",
                 grad.str());
    if (!grads.empty()) {
      EFFNET_CHECK(grad.device() == grads.front().device() && grad.dtype() == grads.front().dtype(),
                   "clip_grad_norm: the gradient of parameter ", i, " is ", grad.str(), " but the first is ",
                   grads.front().str(), "; all gradients need one device and dtype");
    }
    grads.push_back(grad);
  }
  if (grads.empty()) return zeros({});
  Tensor norm = empty({}, TensorOptions(grads.front().dtype(), grads.front().device()));
  const Backend& kernels = backend(norm.device(), "clip_grad_norm");
  kernels.global_norm(grads, norm);
  kernels.clip_by_norm(grads, norm, max_norm);
  return norm;
}

}  // namespace effnet
