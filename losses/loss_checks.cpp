// The shared argument checks of the losses. The target range is checked on the host, so that a bad label
// is an exact error message rather than a device-side assert that would leave the CUDA context unusable.
#include "losses/loss_checks.h"

#include "tensor/op_checks.h"

namespace effnet {

void check_classification_inputs(const char* loss, const Tensor& logits, const Tensor& targets,
                                 const Tensor& weight) {
  check_defined(loss, logits, "logits");
  check_defined(loss, targets, "targets");
  check_floating(loss, logits);
  EFFNET_CHECK(logits.dim() == 2 && logits.size(0) >= 1 && logits.size(1) >= 1, loss,
               ": expected logits [N, C] with N, C >= 1, got ", logits.str());
  const int64_t rows = logits.size(0), classes = logits.size(1);
  EFFNET_CHECK(targets.dtype() == kInt64 && targets.shape() == Shape{rows}, loss,
               ": expected targets of int64 class indices [", rows, "] for the logits ", logits.str(),
               ", got ", targets.str());
  EFFNET_CHECK(targets.device() == logits.device(), loss, ": targets ", targets.str(), " and logits ",
               logits.str(), " are on different devices");
  if (weight.defined()) {
    EFFNET_CHECK(weight.shape() == Shape{classes} && weight.dtype() == logits.dtype() &&
                     weight.device() == logits.device(),
                 loss, ": expected class weights [", classes, "] ", logits.dtype(), " on ", logits.device(),
                 " like the logits ", logits.str(), ", got ", weight.str());
  }
  const Tensor host = targets.cpu().contiguous();
  const int64_t* values = host.data<int64_t>();
  for (int64_t i = 0; i < rows; ++i) {
    EFFNET_CHECK(values[i] >= 0 && values[i] < classes, loss, ": target ", values[i], " at index ", i,
                 " is outside [0, ", classes, ") for the logits ", logits.str(), " (C = ", classes, ")");
  }
}

}  // namespace effnet
