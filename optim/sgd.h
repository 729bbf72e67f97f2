// SGD (torch.optim.SGD) and SGDP (the `adamp` package's SGD with projection). Equations:
// optim/update_math.h.
//
//   SGD   weight decay is L2 (added to the gradient); the momentum buffer starts as the first step's
//         direction; nesterov needs momentum > 0 and dampening 0
//   SGDP  the momentum buffer starts at zero; for parameters with more than one dimension whose gradient
//         is nearly orthogonal to them, the radial part of the step is removed and weight decay (decoupled,
//         scaled by 1 / (1 - momentum)) is scaled by wd_ratio
#pragma once

#include <vector>

#include "optim/optimizer.h"

namespace effnet {

struct SGDOptions {
  double lr = 1e-3;
  double momentum = 0;
  double dampening = 0;
  double weight_decay = 0;
  bool nesterov = false;
};

class SGD : public Optimizer {
 public:
  explicit SGD(std::vector<ParamGroup> groups, const SGDOptions& options = {});

 protected:
  void check_hyperparameters(const Hyperparameters& h, const std::string& where) const override;
  std::vector<std::string> hyperparameter_names() const override;
  std::vector<std::string> state_names(const Hyperparameters& h) const override;
  void set_step_scalars(ParamUpdate& update, const Hyperparameters& h, int64_t t) const override;
};

struct SGDPOptions {
  double lr = 1e-3;
  double momentum = 0;
  double dampening = 0;
  double weight_decay = 0;
  bool nesterov = false;
  double eps = 1e-8;
  double delta = 0.1;
  double wd_ratio = 0.1;
};

class SGDP : public Optimizer {
 public:
  explicit SGDP(std::vector<ParamGroup> groups, const SGDPOptions& options = {});

 protected:
  void check_hyperparameters(const Hyperparameters& h, const std::string& where) const override;
  std::vector<std::string> hyperparameter_names() const override;
  std::vector<std::string> state_names(const Hyperparameters& h) const override;
  void set_step_scalars(ParamUpdate& update, const Hyperparameters& h, int64_t t) const override;
};

}  // namespace effnet
