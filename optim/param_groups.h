// Splitting a model's parameters into a weight-decay group and a no-decay group, as timm's
// param_groups_weight_decay does: parameters with one dimension (batch norm scales and shifts) and biases
// ("...bias") take no weight decay; convolution and linear weights do. Parameters that do not require grad
// (frozen) are left out.
#pragma once

#include <vector>

#include "layers/module.h"
#include "optim/optimizer.h"

namespace effnet {

// {no-decay group (weight_decay 0), decay group (weight_decay)}, timm's order; either may be empty.
std::vector<ParamGroup> weight_decay_groups(const Module& module, double weight_decay);

}  // namespace effnet
