// Adam and AdamW (torch.optim), and AdamP (the `adamp` package, Heo et al. 2021). Equations:
// optim/update_math.h.
//
//   Adam   moments m, v with bias correction; weight decay is L2 (added to the gradient)
//   AdamW  the same with decoupled weight decay: p *= 1 - lr wd before the step
//   AdamP  Adam's moments (optionally a nesterov direction); for a parameter with more than one dimension
//          the cosine between gradient and weight is tested per output channel, then over the whole tensor;
//          below delta / sqrt(row length) the radial component of the step is removed and the (decoupled)
//          weight decay is scaled by wd_ratio. Meant for scale-invariant weights (convolutions followed by
//          batch norm), where the radial component only shrinks the effective step size.
#pragma once

#include <utility>
#include <vector>

#include "optim/optimizer.h"

namespace effnet {

struct AdamOptions {
  double lr = 1e-3;
  std::pair<double, double> betas{0.9, 0.999};
  double eps = 1e-8;
  double weight_decay = 0;
};

class Adam : public Optimizer {
 public:
  explicit Adam(std::vector<ParamGroup> groups, const AdamOptions& options = {});

 protected:
  Adam(std::string name, bool decoupled, std::vector<ParamGroup> groups, const AdamOptions& options);
  void check_hyperparameters(const Hyperparameters& h, const std::string& where) const override;
  std::vector<std::string> hyperparameter_names() const override;
  std::vector<std::string> state_names(const Hyperparameters& h) const override;
  void set_step_scalars(ParamUpdate& update, const Hyperparameters& h, int64_t t) const override;
};

// torch.optim.AdamW's default weight decay is 1e-2.
struct AdamWOptions : AdamOptions {
  AdamWOptions() { weight_decay = 1e-2; }
};

class AdamW : public Adam {
 public:
  explicit AdamW(std::vector<ParamGroup> groups, const AdamWOptions& options = {});
};

struct AdamPOptions {
  double lr = 1e-3;
  std::pair<double, double> betas{0.9, 0.999};
  double eps = 1e-8;
  double weight_decay = 0;
  double delta = 0.1;
  double wd_ratio = 0.1;
  bool nesterov = false;
};

class AdamP : public Optimizer {
 public:
  explicit AdamP(std::vector<ParamGroup> groups, const AdamPOptions& options = {});

 protected:
  void check_hyperparameters(const Hyperparameters& h, const std::string& where) const override;
  std::vector<std::string> hyperparameter_names() const override;
  std::vector<std::string> state_names(const Hyperparameters& h) const override;
  void set_step_scalars(ParamUpdate& update, const Hyperparameters& h, int64_t t) const override;
};

}  // namespace effnet
