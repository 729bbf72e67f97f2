// Classification losses on logits z [N, C] (N samples, C classes) and int64 targets t [N] (class indices):
// cross-entropy (one fused kernel and one tape node), focal loss and soft macro-F1 (built of ops).
//
// Legend: p_ic = softmax(z_i)_c, log p_ic = log_softmax(z_i)_c, t = t_i the target of row i, w_c the class
// weights (1 when none are given), e the label smoothing, [c = t] 1 for the target class and 0 otherwise.
//
// Cross-entropy, PyTorch's F.cross_entropy(z, t, weight=w, label_smoothing=e) exactly:
//   loss_i = (1 - e) w_t (-log p_it) + (e / C) sum_c w_c (-log p_ic)
//   mean   = sum_i loss_i / sum_i w_{t_i}       (both terms divide by the target weights, as torch does)
//   sum    = sum_i loss_i,   none = [loss_i]
// Focal loss, the common multi-class form F.nll_loss((1 - p)^gamma log p, t, weight=w):
//   loss_i = -w_t (1 - p_it)^gamma log p_it,    mean = sum_i loss_i / sum_i w_{t_i}   (weighted like CE)
//   One tape node whose forward and closed-form backward are built of ops; gamma = 0 is cross-entropy
//   and runs its kernel.
// Soft macro-F1, with one-hot targets y_ic = [c = t_i] and per class c (sums over the batch):
//   F1_c = 2 sum_i p_ic y_ic / (sum_i p_ic + sum_i y_ic + eps),   loss = 1 - (1 / C) sum_c F1_c
//   This is 2 tp / (2 tp + fp + fn + eps) with soft counts tp = sum p y, fp = sum p (1 - y),
//   fn = sum (1 - p) y, i.e. the harmonic mean of soft precision and recall. A class absent from the batch
//   adds F1_c = 0 and no gradient (the competition's macro-F1 counts it as 0 too).
//
// Class weights are constants: no gradient flows into them (as in PyTorch). Every argument problem is an
// effnet::Error naming the loss, the tensor and what was expected. Targets are checked on the host before
// any kernel runs (a target outside [0, C) names its position, its value and C): for CUDA targets that is
// one copy of N int64 values and a wait for the stream, the price of an exact message instead of a
// device-side assert, which would leave the CUDA context unusable.
#pragma once

#include <cstdint>

#include "tensor/tensor.h"

namespace effnet {

enum class Reduction { Mean, Sum, None };

struct CrossEntropyOptions {
  Tensor weight;               // [C], the logits' dtype and device; undefined = every class 1
  double label_smoothing = 0;  // e in [0, 1]
  Reduction reduction = Reduction::Mean;
};

// One fused kernel forward (a numerically stable log-softmax and the weighted NLL per row) and one tape node
// whose backward is the closed form p_c ((1 - e) w_t + e W / C) - (1 - e) w_t [c = t] - e w_c / C per
// element, W = sum_c w_c, times the incoming gradient (divided by sum_i w_{t_i} for the mean).
Tensor cross_entropy(const Tensor& logits, const Tensor& targets, const CrossEntropyOptions& options = {});

struct FocalLossOptions {
  double gamma = 2;  // >= 0
  Tensor weight;     // [C] or undefined, as for cross-entropy
  Reduction reduction = Reduction::Mean;
};

Tensor focal_loss(const Tensor& logits, const Tensor& targets, const FocalLossOptions& options = {});

struct SoftF1Options {
  double epsilon = 1e-7;  // > 0; keeps an empty class's 0 / 0 at 0
};

// A scalar: 1 - the mean soft F1 over all C classes.
Tensor soft_f1_loss(const Tensor& logits, const Tensor& targets, const SoftF1Options& options = {});

// y[i, c] = [c = targets[i]] as float32 or float64 on the targets' device; targets int64 [N], each in
// [0, classes) (a target outside gives a row of zeros: the losses check their targets first).
Tensor one_hot(const Tensor& targets, int64_t classes, DType dtype);

const char* reduction_name(Reduction reduction);

}  // namespace effnet
