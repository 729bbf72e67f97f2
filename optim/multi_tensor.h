// What an optimizer hands the backend for one step of one parameter group: the update rule, the group's
// hyper-parameters, and for each parameter that has a gradient its tensors and the scalars that depend on
// its own step count. The backend's `optimizer_step` (tensor/backend.h) updates all of them in one call:
// on the CPU in OpenMP loops (tensor/cpu/optim.cpp), on CUDA in one to three multi-tensor launches over a
// device table of the group's tensors (tensor/cuda/optim.cu). The per-element equations are in
// optim/update_math.h, shared word for word by both.
//
//   rule    state[0..2] (zeros when created, except where `first_step` says otherwise)
//   Sgd     momentum_buffer (when momentum > 0; set to the first step's direction)
//   Sgdp    momentum
//   Adam    exp_avg, exp_avg_sq          (Adam, AdamW: decoupled_weight_decay)
//   AdamP   exp_avg, exp_avg_sq
//   Madgrad grad_sum_sq, s, x0           (x0 when momentum > 0; set to the parameter on its first step)
#pragma once

#include <array>
#include <vector>

#include "tensor/tensor.h"

namespace effnet {

enum class UpdateRule { Sgd, Sgdp, Adam, AdamP, Madgrad };

// AdamP and SGDP remove the radial part of the update of every parameter with more than one dimension
// when its gradient is nearly orthogonal to it (optim/update_math.h has the test).
constexpr bool projects(UpdateRule rule) { return rule == UpdateRule::AdamP || rule == UpdateRule::Sgdp; }

// One parameter group's hyper-parameters; each rule reads the ones it names.
struct Hyperparameters {
  double lr = 0;
  double weight_decay = 0;
  double momentum = 0;   // Sgd, Sgdp, Madgrad
  double dampening = 0;  // Sgd, Sgdp
  double beta1 = 0;      // Adam, AdamP
  double beta2 = 0;      // Adam, AdamP
  double eps = 0;        // Adam, AdamP, Sgdp (the projection's), Madgrad
  double delta = 0;      // AdamP, Sgdp: the orthogonality threshold is delta / sqrt(elements per view row)
  double wd_ratio = 0;   // AdamP, Sgdp: weight decay is scaled by this where the projection applies
  bool nesterov = false;                // Sgd, Sgdp, AdamP
  bool decoupled_weight_decay = false;  // Adam (true: AdamW), Madgrad (decouple_decay)
};

// One parameter of a step. All tensors contiguous, of the parameter's shape, dtype and device.
struct ParamUpdate {
  Tensor param;
  Tensor grad;
  std::array<Tensor, 3> state;  // the rule's buffers (table above); unused ones undefined
  double step_size = 0;              // Sgd, Sgdp: lr; Adam, AdamP: lr / (1 - beta1^t); Madgrad: lamb
  double bias_correction2_sqrt = 1;  // Adam, AdamP: sqrt(1 - beta2^t)
  bool first_step = false;           // this parameter's first update (t = 1)
};

struct MultiTensorStep {
  UpdateRule rule = UpdateRule::Sgd;
  Hyperparameters hyper;
  std::vector<ParamUpdate> params;  // one device, one floating dtype
};

}  // namespace effnet
