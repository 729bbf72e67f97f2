// The shared optimizer driver: groups, per-parameter state, the step loop and state save / restore.
#include "optim/optimizer.h"

#include <algorithm>
#include <cmath>
#include <set>
#include <type_traits>

#include "autograd/grad_mode.h"
#include "optim/serialize.h"
#include "tensor/backend.h"
#include "tensor/ops.h"

namespace effnet {
namespace {

// The Hyperparameters fields by name (bools as 0 / 1 in saved state).
template <class H, class F>
void for_each_field(H& h, F&& f) {
  f("lr", h.lr);
  f("weight_decay", h.weight_decay);
  f("momentum", h.momentum);
  f("dampening", h.dampening);
  f("beta1", h.beta1);
  f("beta2", h.beta2);
  f("eps", h.eps);
  f("delta", h.delta);
  f("wd_ratio", h.wd_ratio);
  f("nesterov", h.nesterov);
  f("decoupled_weight_decay", h.decoupled_weight_decay);
}

std::string joined_names(const NamedParameters& params) {
  std::string out;
  for (const auto& [name, param] : params) out += (out.empty() ? "" : " ") + name;
  return out;
}

}  // namespace

NamedParameters numbered(const std::vector<Tensor>& params) {
  NamedParameters named;
  for (size_t i = 0; i < params.size(); ++i) named.emplace_back(std::to_string(i), params[i]);
  return named;
}

Optimizer::Optimizer(std::string name, UpdateRule rule) : name_(std::move(name)), rule_(rule) {}

std::string Optimizer::where(size_t group) const { return detail::concat(name_, ": group ", group); }

void Optimizer::add_groups(std::vector<ParamGroup> groups, const Hyperparameters& defaults) {
  std::set<const TensorImpl*> seen;
  std::set<std::string> seen_names;
  size_t total = 0;
  for (ParamGroup& group : groups) {
    Group g;
    g.hyper = defaults;
    if (group.lr) g.hyper.lr = *group.lr;
    if (group.weight_decay) g.hyper.weight_decay = *group.weight_decay;
    check_hyperparameters(g.hyper, where(groups_.size()));
    for (const auto& [name, param] : group.params) {
      check_param(name, param);
      EFFNET_CHECK(seen.insert(param.impl()).second, name_, ": parameter '", name,
                   "' appears twice; each parameter may belong to one group only");
      EFFNET_CHECK(seen_names.insert(name).second, name_, ": two parameters are named '", name,
                   "'; names must be unique (they key the saved state)");
    }
    total += group.params.size();
    g.params = std::move(group.params);
    g.state.resize(g.params.size());
    groups_.push_back(std::move(g));
  }
  EFFNET_CHECK(total > 0, name_, ": got no parameters to optimize");
}

void Optimizer::check_param(const std::string& name, const Tensor& param) const {
  EFFNET_CHECK(param.defined(), name_, ": parameter '", name, "' is an undefined tensor");
  EFFNET_CHECK(param.dtype() == kFloat32 || param.dtype() == kFloat64, name_, ": parameter '", name,
               "' must be float32 or float64, got ", param.str());
  EFFNET_CHECK(param.is_leaf(), name_, ": parameter '", name, "' must be a leaf tensor (not the result of an op)");
  EFFNET_CHECK(param.is_contiguous(), name_, ": parameter '", name, "' must be contiguous, got ", param.str());
}

const NamedParameters& Optimizer::group_params(size_t group) const {
  EFFNET_CHECK(group < groups_.size(), name_, ": no group ", group, " (it has ", groups_.size(), ")");
  return groups_[group].params;
}

const Hyperparameters& Optimizer::hyperparameters(size_t group) const {
  EFFNET_CHECK(group < groups_.size(), name_, ": no group ", group, " (it has ", groups_.size(), ")");
  return groups_[group].hyper;
}

void Optimizer::set_lr(size_t group, double lr) {
  EFFNET_CHECK(group < groups_.size(), name_, ": no group ", group, " (it has ", groups_.size(), ")");
  EFFNET_CHECK(std::isfinite(lr) && lr >= 0, where(group), ": lr must be a finite number >= 0, got ", lr);
  groups_[group].hyper.lr = lr;
}

void Optimizer::zero_grad() {
  for (const Group& group : groups_) {
    for (const auto& [name, param] : group.params) param.set_grad(Tensor());
  }
}

// Everything that allocates (state buffers, contiguous gradients) is done for every group before any
// update runs, the backend's own allocations too (one optimizer_step call takes every group of a device),
// and step counts advance after: running out of memory on the way leaves every parameter and count as it
// was. (With parameters on two devices, the first device's groups are updated before the second's call
// allocates.)
void Optimizer::step() {
  autograd::NoGradGuard no_grad;
  std::vector<PreparedStep> prepared;
  for (Group& group : groups_) prepared.push_back(prepare_step(group));
  std::vector<std::pair<Device, std::vector<MultiTensorStep>>> by_device;  // in the groups' order
  for (const PreparedStep& p : prepared) {
    if (p.step.params.empty()) continue;
    const Device device = p.step.params.front().param.device();
    auto it = std::find_if(by_device.begin(), by_device.end(), [&](const auto& d) { return d.first == device; });
    if (it == by_device.end()) it = by_device.insert(by_device.end(), {device, {}});
    it->second.push_back(p.step);
  }
  for (const auto& [device, steps] : by_device) backend(device, name_.c_str()).optimizer_step(steps);
  for (const PreparedStep& p : prepared) {
    for (ParamState* state : p.stepped) ++state->step;
  }
  ++steps_;
}

Optimizer::PreparedStep Optimizer::prepare_step(Group& group) {
  PreparedStep prepared{MultiTensorStep{rule_, group.hyper, {}}, {}};
  MultiTensorStep& step = prepared.step;
  const std::vector<std::string> names = state_names(group.hyper);
  for (size_t i = 0; i < group.params.size(); ++i) {
    const auto& [name, param] = group.params[i];
    const Tensor& grad = param.grad();
    if (!grad.defined()) continue;
    EFFNET_CHECK(grad.shape() == param.shape() && grad.dtype() == param.dtype() && grad.device() == param.device(),
                 name_, ": parameter '", name, "' is ", param.str(), " but its gradient is ", grad.str());
    if (!step.params.empty()) {
      const Tensor& first = step.params.front().param;
      EFFNET_CHECK(param.device() == first.device() && param.dtype() == first.dtype(), name_, ": parameter '", name,
                   "' is ", param.str(), " but its group's first updated parameter is ", first.str(),
                   "; one group updates in one launch, so it needs one device and dtype");
    }
    ParamState& state = group.state[i];
    if (state.buffers.empty()) {
      // All or none: running out of memory here leaves the parameter without state, as before.
      std::vector<Tensor> buffers;
      for (size_t k = 0; k < names.size(); ++k) buffers.push_back(zeros_like(param));
      state.buffers = std::move(buffers);
    }
    ParamUpdate update;
    update.param = param;
    update.grad = grad.contiguous();
    for (size_t k = 0; k < state.buffers.size(); ++k) {
      EFFNET_CHECK(state.buffers[k].device() == param.device(), name_, ": parameter '", name, "' is on ",
                   param.device(), " but its ", names[k], " is on ", state.buffers[k].device(),
                   "; move the model before creating the optimizer, or load its state_dict after");
      update.state[k] = state.buffers[k];
    }
    set_step_scalars(update, group.hyper, state.step + 1);
    step.params.push_back(std::move(update));
    prepared.stepped.push_back(&state);
  }
  return prepared;
}

OptimizerState Optimizer::state_dict() const {
  OptimizerState out;
  out.metadata["optimizer"] = name_;
  out.metadata["steps"] = std::to_string(steps_);
  out.metadata["groups"] = std::to_string(groups_.size());
  for (size_t g = 0; g < groups_.size(); ++g) {
    const Group& group = groups_[g];
    const std::string prefix = "group." + std::to_string(g) + ".";
    out.metadata[prefix + "params"] = joined_names(group.params);
    const std::vector<std::string> wanted = hyperparameter_names();
    for_each_field(group.hyper, [&](const std::string& field, const auto& value) {
      if (std::find(wanted.begin(), wanted.end(), field) != wanted.end()) {
        out.metadata[prefix + field] = format_number(static_cast<double>(value));
      }
    });
    const std::vector<std::string> names = state_names(group.hyper);
    for (size_t i = 0; i < group.params.size(); ++i) {
      const ParamState& state = group.state[i];
      if (state.step == 0) continue;
      const std::string& param_name = group.params[i].first;
      out.metadata[param_name + ".step"] = std::to_string(state.step);
      for (size_t k = 0; k < names.size(); ++k) {
        out.tensors.emplace_back(param_name + "." + names[k], state.buffers[k].detach().clone());
      }
    }
  }
  return out;
}

void Optimizer::load_state_dict(const OptimizerState& state) {
  const std::string context = name_ + ": load_state_dict";
  const auto& meta = state.metadata;
  const std::string saved_name = metadata_value(meta, "optimizer", context);
  EFFNET_CHECK(saved_name == name_, context, ": the state is of a ", saved_name, " optimizer, expected ", name_);
  const int64_t group_count = parse_integer(metadata_value(meta, "groups", context), context + ": groups");
  EFFNET_CHECK(group_count == static_cast<int64_t>(groups_.size()), context, ": the state has ", group_count,
               " parameter groups, this optimizer ", groups_.size());
  const int64_t steps = parse_integer(metadata_value(meta, "steps", context), context + ": steps");

  std::map<std::string, const Tensor*> tensors;
  for (const auto& [key, tensor] : state.tensors) tensors[key] = &tensor;
  size_t used_tensors = 0;

  // Everything is parsed and checked first, and only then installed: a bad state leaves this one intact.
  std::vector<Hyperparameters> hypers;
  std::vector<std::vector<ParamState>> states;
  for (size_t g = 0; g < groups_.size(); ++g) {
    const Group& group = groups_[g];
    const std::string prefix = "group." + std::to_string(g) + ".";
    const std::string saved_params = metadata_value(meta, prefix + "params", context);
    EFFNET_CHECK(saved_params == joined_names(group.params), context, ": group ", g, " holds parameters [",
                 saved_params, "] in the state, expected [", joined_names(group.params), "]");
    Hyperparameters hyper = group.hyper;
    const std::vector<std::string> wanted = hyperparameter_names();
    for_each_field(hyper, [&](const std::string& field, auto& value) {
      if (std::find(wanted.begin(), wanted.end(), field) == wanted.end()) return;
      const std::string key = prefix + field;
      const double parsed = parse_number(metadata_value(meta, key, context), context + ": " + key);
      value = static_cast<std::remove_reference_t<decltype(value)>>(parsed);
    });
    check_hyperparameters(hyper, context + ": group " + std::to_string(g));
    const std::vector<std::string> names = state_names(hyper);
    std::vector<ParamState> group_state(group.params.size());
    for (size_t i = 0; i < group.params.size(); ++i) {
      const auto& [param_name, param] = group.params[i];
      const auto step_entry = meta.find(param_name + ".step");
      if (step_entry == meta.end()) continue;  // never updated: fresh state
      ParamState& ps = group_state[i];
      ps.step = parse_integer(step_entry->second, context + ": " + param_name + ".step");
      EFFNET_CHECK(ps.step > 0, context, ": parameter '", param_name, "' has step ", ps.step, ", expected > 0");
      for (const std::string& buffer : names) {
        const std::string key = param_name + "." + buffer;
        const auto found = tensors.find(key);
        EFFNET_CHECK(found != tensors.end(), context, ": parameter '", param_name, "' has no '", key,
                     "' in the state (", name_, " keeps ", names.size(), " buffers per parameter)");
        const Tensor& saved = *found->second;
        EFFNET_CHECK(saved.shape() == param.shape(), context, ": '", key, "' has shape ", shape_str(saved.shape()),
                     ", expected ", shape_str(param.shape()), " (the parameter's)");
        EFFNET_CHECK(saved.dtype() == kFloat32 || saved.dtype() == kFloat64, context, ": '", key,
                     "' must be float32 or float64, got ", saved.str());
        Tensor buffer_copy = empty_like(param);
        buffer_copy.copy_(saved);
        ps.buffers.push_back(buffer_copy);
        ++used_tensors;
      }
    }
    hypers.push_back(hyper);
    states.push_back(std::move(group_state));
  }
  if (used_tensors != state.tensors.size()) {
    for (const auto& [key, tensor] : state.tensors) {
      bool known = false;
      for (const Group& group : groups_) {
        for (const auto& [param_name, param] : group.params) {
          known = known || key.rfind(param_name + ".", 0) == 0;
        }
      }
      EFFNET_CHECK(known, context, ": the state has '", key, "', which belongs to no parameter of this optimizer");
    }
    EFFNET_FAIL(context, ": the state has ", state.tensors.size(), " tensors, of which ", used_tensors,
                " belong to this optimizer's parameters and buffers");
  }
  for (size_t g = 0; g < groups_.size(); ++g) {
    groups_[g].hyper = hypers[g];
    groups_[g].state = std::move(states[g]);
  }
  steps_ = steps;
}

}  // namespace effnet
