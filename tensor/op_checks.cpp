#include "tensor/op_checks.h"

#include <algorithm>

#include "autograd/grad_mode.h"

namespace effnet {

void check_defined(const char* op, const Tensor& t, const char* arg) {
  EFFNET_CHECK(t.defined(), op, ": ", arg, " is an undefined tensor");
}

void check_same_device_dtype(const char* op, const std::vector<Tensor>& operands) {
  for (const Tensor& t : operands) check_defined(op, t);
  for (size_t k = 1; k < operands.size(); ++k) {
    EFFNET_CHECK(operands[k].device() == operands[0].device(), op, ": operands are on different devices: ",
                 operands[0].str(), " and ", operands[k].str(), " (move one with .to(device))");
    EFFNET_CHECK(operands[k].dtype() == operands[0].dtype(), op, ": operands have different dtypes: ",
                 operands[0].str(), " and ", operands[k].str(), " (convert one with .to(dtype))");
  }
}

void check_floating(const char* op, const Tensor& t) {
  check_defined(op, t);
  EFFNET_CHECK(is_floating(t.dtype()), op, ": expected a floating tensor (float32, float64, float16 or bfloat16), got ",
               t.str());
}

void check_inplace_allowed(const char* op, const Tensor& t) {
  check_defined(op, t);
  EFFNET_CHECK(!(autograd::grad_enabled() && t.requires_grad()), op, ": in-place change of ", t.str(),
               ", which requires grad, while grad mode is on (it would corrupt the gradient); "
               "do it under autograd::NoGradGuard or on a detach()ed tensor");
}

std::vector<int64_t> normalize_dims(const char* op, const std::vector<int64_t>& dims, int64_t ndim) {
  std::vector<int64_t> out;
  if (dims.empty()) {
    for (int64_t k = 0; k < ndim; ++k) out.push_back(k);
    return out;
  }
  for (int64_t d : dims) out.push_back(normalize_dim(op, d, ndim));
  std::sort(out.begin(), out.end());
  EFFNET_CHECK(std::adjacent_find(out.begin(), out.end()) == out.end(), op, ": a dim appears twice in ",
               shape_str(dims));
  return out;
}

}  // namespace effnet
