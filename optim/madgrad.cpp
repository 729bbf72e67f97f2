// MADGRAD: hyper-parameter checks and the step weight lamb = lr' sqrt(k + 1), lr' = lr + eps for lr > 0
// ("for stability" in the reference), k = steps() before this one. The update is the backend's
// multi-tensor kernel (optim/update_math.h: rule Madgrad).
#include "optim/madgrad.h"

#include <cmath>

#include "optim/checks.h"

namespace effnet {

MADGRAD::MADGRAD(std::vector<ParamGroup> groups, const MADGRADOptions& options)
    : Optimizer("MADGRAD", UpdateRule::Madgrad) {
  Hyperparameters h;
  h.lr = options.lr;
  h.momentum = options.momentum;
  h.weight_decay = options.weight_decay;
  h.eps = options.eps;
  h.decoupled_weight_decay = options.decouple_decay;
  add_groups(std::move(groups), h);
}

void MADGRAD::check_hyperparameters(const Hyperparameters& h, const std::string& where) const {
  optim_checks::at_least_zero(where, "lr", h.lr);
  optim_checks::below_one(where, "momentum", h.momentum);
  optim_checks::at_least_zero(where, "weight_decay", h.weight_decay);
  optim_checks::at_least_zero(where, "eps", h.eps);
}

std::vector<std::string> MADGRAD::hyperparameter_names() const {
  return {"lr", "momentum", "weight_decay", "eps", "decoupled_weight_decay"};
}

std::vector<std::string> MADGRAD::state_names(const Hyperparameters& h) const {
  if (h.momentum == 0) return {"grad_sum_sq", "s"};
  return {"grad_sum_sq", "s", "x0"};
}

void MADGRAD::set_step_scalars(ParamUpdate& update, const Hyperparameters& h, int64_t t) const {
  const double stable_lr = h.lr != 0 ? h.lr + h.eps : 0;
  update.step_size = stable_lr * std::sqrt(static_cast<double>(steps()) + 1);
  update.first_step = t == 1;
}

}  // namespace effnet
