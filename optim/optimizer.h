// Optimizer: the parameter groups, the per-parameter state and the step driver that every optimizer
// shares. A subclass (optim/sgd.h, optim/adam.h, optim/madgrad.h) names its update rule, checks its
// hyper-parameters, lists its state buffers and computes the scalars that depend on a parameter's step
// count; the arithmetic is one multi-tensor backend call per group (optim/multi_tensor.h), so nothing here
// branches on the device.
//
//   group   parameters with the same hyper-parameters (e.g. weights with weight decay, biases and batch norm
//           parameters without: optim/param_groups.h); each group may override lr and weight_decay
//   state   per parameter: its step count t and the rule's buffers, created (zeros) on its first update
//   step()  updates every parameter that has a gradient; one without is skipped, its state untouched (as in
//           PyTorch)
//
// state_dict() saves everything a resumed run needs to continue bit for bit: the buffers as tensors named
// "<parameter>.<buffer>", and as metadata the optimizer's name, its step count ("steps"), each group's
// hyper-parameters ("group.<g>.<name>", shortest round-trip decimals) and parameter names
// ("group.<g>.params", space-separated), and each parameter's step count ("<parameter>.step").
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "io/safetensors.h"
#include "optim/multi_tensor.h"
#include "tensor/tensor.h"

namespace effnet {

using NamedParameters = std::vector<std::pair<std::string, Tensor>>;

// Names parameters "0", "1", ... for callers without a Module.
NamedParameters numbered(const std::vector<Tensor>& params);

struct ParamGroup {
  NamedParameters params = {};
  std::optional<double> lr = std::nullopt;            // the optimizer's when unset
  std::optional<double> weight_decay = std::nullopt;  // the optimizer's when unset
};

struct OptimizerState {
  safetensors::NamedTensors tensors;
  std::map<std::string, std::string> metadata;
};

class Optimizer {
 public:
  virtual ~Optimizer() = default;
  Optimizer(const Optimizer&) = delete;
  Optimizer& operator=(const Optimizer&) = delete;

  // One update of every parameter that has a gradient, outside autograd.
  void step();
  // Drops every parameter's gradient (PyTorch's zero_grad(set_to_none=True)).
  void zero_grad();

  const std::string& name() const { return name_; }
  size_t group_count() const { return groups_.size(); }
  const NamedParameters& group_params(size_t group) const;
  const Hyperparameters& hyperparameters(size_t group) const;
  double lr(size_t group) const { return hyperparameters(group).lr; }
  void set_lr(size_t group, double lr);  // what LR schedules call
  int64_t steps() const { return steps_; }  // calls of step() so far

  // The live state's copy: later steps do not change it.
  OptimizerState state_dict() const;
  // Restores a state_dict() of an optimizer of the same kind over the same parameters (names, groups and
  // shapes are checked; a mismatch is an error naming the parameter and what was expected). Hyper-parameters
  // are restored too, as PyTorch does.
  void load_state_dict(const OptimizerState& state);

 protected:
  Optimizer(std::string name, UpdateRule rule);
  // Called by the subclass constructor: resolves each group's overrides against `defaults`, checks every
  // group (check_hyperparameters) and every parameter.
  void add_groups(std::vector<ParamGroup> groups, const Hyperparameters& defaults);

  // Throws (naming the optimizer and `where`, e.g. "group 1") unless h is valid for this optimizer.
  virtual void check_hyperparameters(const Hyperparameters& h, const std::string& where) const = 0;
  // The hyper-parameters this optimizer reads, by their Hyperparameters field names (saved and restored).
  virtual std::vector<std::string> hyperparameter_names() const = 0;
  // The state buffers of a parameter in a group with these hyper-parameters, in kernel order.
  virtual std::vector<std::string> state_names(const Hyperparameters& h) const = 0;
  // Sets update.step_size, bias_correction2_sqrt and first_step for a parameter at its step t (>= 1).
  virtual void set_step_scalars(ParamUpdate& update, const Hyperparameters& h, int64_t t) const = 0;

  std::string where(size_t group) const;

 private:
  struct ParamState {
    int64_t step = 0;
    std::vector<Tensor> buffers;  // empty until the first update
  };
  struct Group {
    NamedParameters params;
    Hyperparameters hyper;
    std::vector<ParamState> state;
  };

  // One group's update, made ready: its state buffers exist and its gradients are contiguous.
  struct PreparedStep {
    MultiTensorStep step;
    std::vector<ParamState*> stepped;  // whose step counts the update advances
  };

  void check_param(const std::string& name, const Tensor& param) const;
  PreparedStep prepare_step(Group& group);

  std::string name_;
  UpdateRule rule_;
  std::vector<Group> groups_;
  int64_t steps_ = 0;
};

}  // namespace effnet
