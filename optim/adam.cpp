// Adam, AdamW and AdamP: hyper-parameter checks and per-step scalars, the bias corrections
//   step_size = lr / (1 - beta1^t),   bias_correction2_sqrt = sqrt(1 - beta2^t)
// computed in float64 from each parameter's own step count t, as the references compute them in Python.
// The update is the backend's multi-tensor kernel (optim/update_math.h: rules Adam and AdamP).
#include "optim/adam.h"

#include <cmath>

#include "optim/checks.h"

namespace effnet {
namespace {

void check_adam_family(const Hyperparameters& h, const std::string& where) {
  optim_checks::at_least_zero(where, "lr", h.lr);
  optim_checks::below_one(where, "beta1", h.beta1);
  optim_checks::below_one(where, "beta2", h.beta2);
  optim_checks::at_least_zero(where, "eps", h.eps);
  optim_checks::at_least_zero(where, "weight_decay", h.weight_decay);
}

void set_bias_corrections(ParamUpdate& update, const Hyperparameters& h, int64_t t) {
  const double exponent = static_cast<double>(t);
  update.step_size = h.lr / (1 - std::pow(h.beta1, exponent));
  update.bias_correction2_sqrt = std::sqrt(1 - std::pow(h.beta2, exponent));
  update.first_step = t == 1;
}

// The hyper-parameters Adam, AdamW and AdamP share.
template <class Options>
Hyperparameters adam_hyperparameters(const Options& options, bool decoupled) {
  Hyperparameters h;
  h.lr = options.lr;
  h.beta1 = options.betas.first;
  h.beta2 = options.betas.second;
  h.eps = options.eps;
  h.weight_decay = options.weight_decay;
  h.decoupled_weight_decay = decoupled;
  return h;
}

}  // namespace

Adam::Adam(std::vector<ParamGroup> groups, const AdamOptions& options)
    : Adam("Adam", false, std::move(groups), options) {}

Adam::Adam(std::string name, bool decoupled, std::vector<ParamGroup> groups, const AdamOptions& options)
    : Optimizer(std::move(name), UpdateRule::Adam) {
  add_groups(std::move(groups), adam_hyperparameters(options, decoupled));
}

void Adam::check_hyperparameters(const Hyperparameters& h, const std::string& where) const {
  check_adam_family(h, where);
}

std::vector<std::string> Adam::hyperparameter_names() const {
  return {"lr", "beta1", "beta2", "eps", "weight_decay", "decoupled_weight_decay"};
}

std::vector<std::string> Adam::state_names(const Hyperparameters&) const { return {"exp_avg", "exp_avg_sq"}; }

void Adam::set_step_scalars(ParamUpdate& update, const Hyperparameters& h, int64_t t) const {
  set_bias_corrections(update, h, t);
}

AdamW::AdamW(std::vector<ParamGroup> groups, const AdamWOptions& options)
    : Adam("AdamW", true, std::move(groups), options) {}

AdamP::AdamP(std::vector<ParamGroup> groups, const AdamPOptions& options) : Optimizer("AdamP", UpdateRule::AdamP) {
  Hyperparameters h = adam_hyperparameters(options, false);
  h.delta = options.delta;
  h.wd_ratio = options.wd_ratio;
  h.nesterov = options.nesterov;
  add_groups(std::move(groups), h);
}

void AdamP::check_hyperparameters(const Hyperparameters& h, const std::string& where) const {
  check_adam_family(h, where);
  optim_checks::at_least_zero(where, "delta", h.delta);
  optim_checks::at_most_one(where, "wd_ratio", h.wd_ratio);
}

std::vector<std::string> AdamP::hyperparameter_names() const {
  return {"lr", "beta1", "beta2", "eps", "weight_decay", "delta", "wd_ratio", "nesterov"};
}

std::vector<std::string> AdamP::state_names(const Hyperparameters&) const { return {"exp_avg", "exp_avg_sq"}; }

void AdamP::set_step_scalars(ParamUpdate& update, const Hyperparameters& h, int64_t t) const {
  set_bias_corrections(update, h, t);
}

}  // namespace effnet
