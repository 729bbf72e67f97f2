// grad_norm and clip_grad_norm: collect the gradients, check they share a device and dtype, and run the
// backend's global_norm (and clip_by_norm) kernels.
#include "optim/clip_grad.h"

#include <cmath>

#include "tensor/backend.h"
#include "tensor/ops.h"

namespace effnet {

namespace {

// The gradients of `params` that exist, checked to share a device and dtype and to be contiguous.
std::vector<Tensor> gradients_of(const std::vector<Tensor>& params, const char* op) {
  std::vector<Tensor> grads;
  for (size_t i = 0; i < params.size(); ++i) {
    const Tensor& grad = params[i].grad();
    if (!grad.defined()) continue;
    EFFNET_CHECK(grad.is_contiguous(), op, ": the gradient of parameter ", i, " must be contiguous, got ", grad.str());
    if (!grads.empty()) {
      EFFNET_CHECK(grad.device() == grads.front().device() && grad.dtype() == grads.front().dtype(), op,
                   ": the gradient of parameter ", i, " is ", grad.str(), " but the first is ", grads.front().str(),
                   "; all gradients need one device and dtype");
    }
    grads.push_back(grad);
  }
  return grads;
}

Tensor norm_of(const std::vector<Tensor>& grads, const char* op) {
  Tensor norm = empty({}, TensorOptions(grads.front().dtype(), grads.front().device()));
  backend(norm.device(), op).global_norm(grads, norm);
  return norm;
}

}  // namespace

Tensor grad_norm(const std::vector<Tensor>& params) {
  const std::vector<Tensor> grads = gradients_of(params, "grad_norm");
  return grads.empty() ? zeros({}) : norm_of(grads, "grad_norm");
}

Tensor clip_grad_norm(const std::vector<Tensor>& params, double max_norm) {
  EFFNET_CHECK(std::isfinite(max_norm) && max_norm > 0, "clip_grad_norm: max_norm must be a finite number > 0, got ",
               max_norm);
  const std::vector<Tensor> grads = gradients_of(params, "clip_grad_norm");
  if (grads.empty()) return zeros({});
  const Tensor norm = norm_of(grads, "clip_grad_norm");
  backend(norm.device(), "clip_grad_norm").clip_by_norm(grads, norm, max_norm);
  return norm;
}

}  // namespace effnet
