// Cross-entropy from logits as one fused op: the kernel of the dispatch table (tensor/cpu/loss.cpp,
// tensor/cuda/loss.cu) computes the per-row loss loss_i and target weight w_{t_i}; the reduction and one tape
// node with the closed-form backward are added here.
//
//   mean: L = sum_i loss_i / sum_i w_{t_i}   dL/dloss_i = 1 / sum_i w_{t_i}
//   sum:  L = sum_i loss_i                   dL/dloss_i = 1
//   none: L_i = loss_i                       dL_i/dloss_i = 1
// and the kernel's backward maps dloss_i to dz_ic (formula in tensor/backend.h and losses.h).
#include "autograd/grad_mode.h"
#include "autograd/node.h"
#include "losses/loss_checks.h"
#include "losses/losses.h"
#include "tensor/backend.h"
#include "tensor/ops.h"

namespace effnet {

const char* reduction_name(Reduction reduction) {
  switch (reduction) {
    case Reduction::Mean: return "mean";
    case Reduction::Sum: return "sum";
    case Reduction::None: return "none";
  }
  return "?";
}

Tensor cross_entropy(const Tensor& logits, const Tensor& targets, const CrossEntropyOptions& options) {
  check_classification_inputs("cross_entropy", logits, targets, options.weight);
  const double smoothing = options.label_smoothing;
  EFFNET_CHECK(smoothing >= 0 && smoothing <= 1, "cross_entropy: label_smoothing must be in [0, 1], got ",
               smoothing);
  const int64_t rows = logits.size(0);
  const Tensor z = logits.detach().contiguous(), t = targets.contiguous();
  const Tensor w = options.weight.defined() ? options.weight.detach().contiguous() : Tensor();
  const TensorOptions row_options(logits.dtype(), logits.device());
  Tensor per_row = empty({rows}, row_options), target_weight = empty({rows}, row_options);
  backend(logits.device(), "cross_entropy").cross_entropy(z, t, w, smoothing, per_row, target_weight);

  const Reduction reduction = options.reduction;
  Tensor loss, weight_total;
  {
    autograd::NoGradGuard no_grad;  // the node recorded below is the only one
    if (reduction == Reduction::Mean) {
      weight_total = sum(target_weight);
      loss = div(sum(per_row), weight_total);
    } else {
      loss = reduction == Reduction::Sum ? sum(per_row) : per_row;
    }
  }
  autograd::record("cross_entropy", {logits}, {loss},
                   [z, t, w, smoothing, reduction, weight_total, rows](std::vector<Tensor>&& grads) {
                     Tensor grad_rows = grads[0];
                     if (reduction == Reduction::Mean) grad_rows = div(grad_rows, weight_total);
                     grad_rows = grad_rows.expand({rows}).contiguous();
                     Tensor grad_logits = empty_like(z);
                     backend(z.device(), "cross_entropy backward")
                         .cross_entropy_backward(z, t, w, smoothing, grad_rows, grad_logits);
                     return std::vector<Tensor>{grad_logits};
                   });
  return loss;
}

}  // namespace effnet
