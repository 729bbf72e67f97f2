// The one table of op test cases. Every op of tensor/ops.h (and every differentiable view) appears here
// once, and so do the channels-last variants of tensor/nn.h's convolution and batch norm (their row-major
// forms are layer cases, tests/test_layers.cpp); test_ops.cpp runs each case as
//   - a float64 finite-difference gradient check on the CPU, and on CUDA when present, and
//   - an fp32 CPU<->CUDA parity check of the forward result and of every input gradient.
#pragma once

#include <functional>
#include <ostream>
#include <string>
#include <vector>

#include "tensor/ops.h"

namespace effnet::test {

// How a case's inputs are drawn: standard normal, or uniform in [0.5, 2] where an op needs x > 0 (log,
// sqrt, a divisor, a power's base).
enum class Domain { Normal, Positive };

struct OpCase {
  std::string name;
  std::vector<Shape> shapes;
  std::function<Tensor(const std::vector<Tensor>&)> fn;
  std::vector<Domain> domains = {};  // per input; missing entries are Normal
  bool differentiable = true;
  bool kinks = false;  // relu, abs, max: skip finite differences that straddle a kink
};

// GoogleTest prints a case as its name (not as bytes).
inline void PrintTo(const OpCase& c, std::ostream* os) { *os << c.name; }

const std::vector<OpCase>& op_cases();
std::vector<OpCase> differentiable_op_cases();

}  // namespace effnet::test
