#include "optim/param_groups.h"

#include <string>

namespace effnet {

std::vector<ParamGroup> weight_decay_groups(const Module& module, double weight_decay) {
  ParamGroup no_decay, decay;
  no_decay.weight_decay = 0.0;
  decay.weight_decay = weight_decay;
  const std::string bias_suffix = ".bias";
  for (const auto& [name, param] : module.named_parameters()) {
    if (!param.requires_grad()) continue;
    const bool is_bias = name == "bias" || (name.size() > bias_suffix.size() &&
                                            name.compare(name.size() - bias_suffix.size(), bias_suffix.size(),
                                                         bias_suffix) == 0);
    (param.dim() <= 1 || is_bias ? no_decay : decay).params.emplace_back(name, param);
  }
  return {no_decay, decay};
}

}  // namespace effnet
