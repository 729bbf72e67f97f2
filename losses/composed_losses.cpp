// The losses built from ops, with no kernel of their own: focal loss and soft macro-F1, and the one-hot
// encoding they share. At N = 32, C = 18 each is a dozen small kernels; a fused kernel would only pay off
// if either became the main loss of long runs.
//
//   y_ic = [c = t_i]                            one_hot
//   q_i  = sum_c p_ic (1 - y_ic)  (= 1 - p_it)  the mass off the target, summed from the small
//                                               probabilities, so it stays exact where p_it rounds to 1
//   focal  L_i = -w_t (q_i + tiny)^gamma log p_it, one tape node with the closed-form gradient
//          dL_i/dz_ij = (y_ij - p_ij) c_i,   c_i = w_t (gamma q_i^(gamma - 1) p_it log p_it - q_i^gamma)
//          (autograd through the ops would form it as p_j - p_j q, which cancels in float32 where p_t ~ 0
//          and multiplies the rounding by |log p_t|)
//   soft F1_c = 2 sum_i p_ic y_ic / (sum_i p_ic + sum_i y_ic + eps),   loss = 1 - mean_c F1_c
//          (differentiated by autograd)
#include <cmath>

#include "autograd/grad_mode.h"
#include "autograd/node.h"
#include "losses/loss_checks.h"
#include "losses/losses.h"
#include "tensor/ops.h"

namespace effnet {

namespace {

// Added to q before the power: where every probability off the target underflows, q = 0 and the
// derivative gamma q^(gamma - 1) is infinite for gamma < 1 (0 * inf = NaN in the chain). 1e-30 is a normal
// float32; it leaves any q above 1e-14 (float64) or 1e-22 (float32) unchanged, and below that the row's
// loss, about q^(gamma + 1), is nothing anyway.
constexpr double kOffTargetFloor = 1e-30;

}  // namespace

Tensor one_hot(const Tensor& targets, int64_t classes, DType dtype) {
  EFFNET_CHECK(targets.defined() && targets.dtype() == kInt64 && targets.dim() == 1,
               "one_hot: expected int64 targets [N], got ",
               targets.defined() ? targets.str() : "an undefined tensor");
  EFFNET_CHECK(classes >= 1, "one_hot: classes must be >= 1, got ", classes);
  EFFNET_CHECK(dtype == kFloat32 || dtype == kFloat64, "one_hot: dtype must be float32 or float64, got ", dtype);
  const Tensor labels = cast(targets, dtype).view({targets.size(0), 1});
  return eq(labels, arange(classes, TensorOptions(dtype, targets.device())).view({1, classes}));
}

Tensor focal_loss(const Tensor& logits, const Tensor& targets, const FocalLossOptions& options) {
  check_classification_inputs("focal_loss", logits, targets, options.weight);
  const double gamma = options.gamma;
  EFFNET_CHECK(std::isfinite(gamma) && gamma >= 0, "focal_loss: gamma must be a finite number >= 0, got ",
               gamma);
  if (gamma == 0) {
    CrossEntropyOptions ce;
    ce.weight = options.weight;
    ce.reduction = options.reduction;
    return cross_entropy(logits, targets, ce);
  }
  const int64_t rows = logits.size(0), classes = logits.size(1);
  const Reduction reduction = options.reduction;
  Tensor loss, y, p, row_coefficient, weight_total;
  {
    autograd::NoGradGuard no_grad;  // the node recorded below is the only one
    const Tensor z = logits.detach();
    y = one_hot(targets, classes, z.dtype());
    const Tensor log_p = log_softmax(z, 1);
    p = exp(log_p);
    const Tensor log_p_target = sum(mul(log_p, y), {1});
    const Tensor off_target = add(sum(mul(p, 1.0 - y), {1}), kOffTargetFloor);
    const Tensor modulation = pow(off_target, gamma);
    const Tensor target_weight = options.weight.defined()
                                     ? sum(mul(y, options.weight.detach().view({1, classes})), {1})
                                     : ones({rows}, TensorOptions(z.dtype(), z.device()));
    const Tensor per_row = neg(mul(mul(modulation, log_p_target), target_weight));
    row_coefficient =
        mul(sub(mul(mul(pow(off_target, gamma - 1), exp(log_p_target)), log_p_target) * gamma, modulation),
            target_weight);
    if (reduction == Reduction::Mean) {
      weight_total = sum(target_weight);
      loss = div(sum(per_row), weight_total);
    } else {
      loss = reduction == Reduction::Sum ? sum(per_row) : per_row;
    }
  }
  autograd::record("focal_loss", {logits}, {loss},
                   [y, p, row_coefficient, weight_total, reduction, rows](std::vector<Tensor>&& grads) {
                     Tensor grad_rows = grads[0];
                     if (reduction == Reduction::Mean) grad_rows = div(grad_rows, weight_total);
                     const Tensor scale = mul(grad_rows.expand({rows}), row_coefficient).view({rows, 1});
                     return std::vector<Tensor>{mul(sub(y, p), scale)};
                   });
  return loss;
}

Tensor soft_f1_loss(const Tensor& logits, const Tensor& targets, const SoftF1Options& options) {
  check_classification_inputs("soft_f1_loss", logits, targets, Tensor());
  EFFNET_CHECK(std::isfinite(options.epsilon) && options.epsilon > 0,
               "soft_f1_loss: epsilon must be a finite number > 0, got ", options.epsilon);
  const Tensor y = one_hot(targets, logits.size(1), logits.dtype());
  const Tensor p = softmax(logits, 1);
  const Tensor true_positives = sum(mul(p, y), {0});
  const Tensor denominator = add(add(sum(p, {0}), sum(y, {0})), options.epsilon);
  const Tensor f1 = div(mul(true_positives, 2.0), denominator);
  return 1.0 - mean(f1);
}

}  // namespace effnet
