// MADGRAD (Defazio and Jelassi 2021, the `madgrad` package): dual averaging with a cube-root denominator
// and momentum by averaging the iterates. Equations: optim/update_math.h. Its step weight
// lamb = (lr + eps) sqrt(k + 1) uses k, the optimizer's count of step() calls (not a parameter's), as the
// reference does. Weight decay is L2 unless decouple_decay.
#pragma once

#include <vector>

#include "optim/optimizer.h"

namespace effnet {

struct MADGRADOptions {
  double lr = 1e-2;
  double momentum = 0.9;
  double weight_decay = 0;
  double eps = 1e-6;
  bool decouple_decay = false;
};

class MADGRAD : public Optimizer {
 public:
  explicit MADGRAD(std::vector<ParamGroup> groups, const MADGRADOptions& options = {});

 protected:
  void check_hyperparameters(const Hyperparameters& h, const std::string& where) const override;
  std::vector<std::string> hyperparameter_names() const override;
  std::vector<std::string> state_names(const Hyperparameters& h) const override;
  void set_step_scalars(ParamUpdate& update, const Hyperparameters& h, int64_t t) const override;
};

}  // namespace effnet
