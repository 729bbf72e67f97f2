#include "tensor/autocast.h"

#include "tensor/error.h"

namespace effnet {

namespace {
thread_local std::optional<DType> t_autocast;
}  // namespace

AutocastGuard::AutocastGuard(std::optional<DType> dtype) : previous_(t_autocast) {
  EFFNET_CHECK(!dtype || is_16bit(*dtype),
               "AutocastGuard: autocast computes in float16 or bfloat16, not ", dtype_name(*dtype));
  t_autocast = dtype;
}

AutocastGuard::~AutocastGuard() { t_autocast = previous_; }

std::optional<DType> autocast_dtype() { return t_autocast; }

Tensor autocast(const Tensor& t) {
  if (!t_autocast || !t.defined() || !is_floating(t.dtype()) || t.dtype() == *t_autocast) return t;
  return t.to(*t_autocast);
}

}  // namespace effnet
