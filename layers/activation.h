// Activations as modules, for use in Sequential. SiLU's backward saves only its input and recomputes the
// sigmoid (tensor/ops.h silu), which keeps one activation-sized tensor per layer out of memory.
#pragma once

#include "layers/module.h"
#include "tensor/ops.h"

namespace effnet {

class SiLU : public Module {
 public:
  Tensor forward(const Tensor& x) override { return silu(x); }
};

class Sigmoid : public Module {
 public:
  Tensor forward(const Tensor& x) override { return sigmoid(x); }
};

}  // namespace effnet
