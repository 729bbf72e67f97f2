// SGD and SGDP: hyper-parameter checks and per-step scalars; the update itself is the backend's
// multi-tensor kernel (optim/update_math.h: rules Sgd and Sgdp).
#include "optim/sgd.h"

#include "optim/checks.h"

namespace effnet {

namespace {

// The hyper-parameters SGD and SGDP share.
template <class Options>
Hyperparameters sgd_hyperparameters(const Options& options) {
  Hyperparameters h;
  h.lr = options.lr;
  h.momentum = options.momentum;
  h.dampening = options.dampening;
  h.weight_decay = options.weight_decay;
  h.nesterov = options.nesterov;
  return h;
}

}  // namespace

SGD::SGD(std::vector<ParamGroup> groups, const SGDOptions& options) : Optimizer("SGD", UpdateRule::Sgd) {
  add_groups(std::move(groups), sgd_hyperparameters(options));
}

void SGD::check_hyperparameters(const Hyperparameters& h, const std::string& where) const {
  optim_checks::at_least_zero(where, "lr", h.lr);
  optim_checks::at_least_zero(where, "momentum", h.momentum);
  optim_checks::at_most_one(where, "dampening", h.dampening);
  optim_checks::at_least_zero(where, "weight_decay", h.weight_decay);
  EFFNET_CHECK(!h.nesterov || (h.momentum > 0 && h.dampening == 0), where,
               ": nesterov momentum needs momentum > 0 and dampening 0, got momentum ", h.momentum,
               " and dampening ", h.dampening);
}

std::vector<std::string> SGD::hyperparameter_names() const {
  return {"lr", "momentum", "dampening", "weight_decay", "nesterov"};
}

std::vector<std::string> SGD::state_names(const Hyperparameters& h) const {
  if (h.momentum == 0) return {};
  return {"momentum_buffer"};
}

void SGD::set_step_scalars(ParamUpdate& update, const Hyperparameters& h, int64_t t) const {
  update.step_size = h.lr;
  update.first_step = t == 1;
}

SGDP::SGDP(std::vector<ParamGroup> groups, const SGDPOptions& options) : Optimizer("SGDP", UpdateRule::Sgdp) {
  Hyperparameters h = sgd_hyperparameters(options);
  h.eps = options.eps;
  h.delta = options.delta;
  h.wd_ratio = options.wd_ratio;
  add_groups(std::move(groups), h);
}

void SGDP::check_hyperparameters(const Hyperparameters& h, const std::string& where) const {
  optim_checks::at_least_zero(where, "lr", h.lr);
  optim_checks::below_one(where, "momentum", h.momentum);  // weight decay divides by 1 - momentum
  optim_checks::at_most_one(where, "dampening", h.dampening);
  optim_checks::at_least_zero(where, "weight_decay", h.weight_decay);
  optim_checks::at_least_zero(where, "eps", h.eps);
  optim_checks::at_least_zero(where, "delta", h.delta);
  optim_checks::at_most_one(where, "wd_ratio", h.wd_ratio);
}

std::vector<std::string> SGDP::hyperparameter_names() const {
  return {"lr", "momentum", "dampening", "weight_decay", "nesterov", "eps", "delta", "wd_ratio"};
}

std::vector<std::string> SGDP::state_names(const Hyperparameters&) const { return {"momentum"}; }

void SGDP::set_step_scalars(ParamUpdate& update, const Hyperparameters& h, int64_t t) const {
  update.step_size = h.lr;
  update.first_step = t == 1;
}

}  // namespace effnet
