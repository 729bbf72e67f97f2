// The finite-difference gradient checker.
//
// For a function f: inputs -> outputs (outputs y_k), draw a random cotangent v_k per output and compare,
// for every element x_j of every checked input,
//
//   analytic  a_j = d/dx_j  sum_k <v_k, y_k>          (one backward pass through the tape)
//   numeric   n_j = sum_k <v_k, y_k(x + eps e_j) - y_k(x - eps e_j)> / (2 eps)      (central differences)
//
// and require |a_j - n_j| <= atol + rtol * |n_j|. Projecting on a random v (not a plain sum of the outputs)
// catches errors that cancel in a sum, such as a softmax gradient that is off by a constant.
// Defaults are PyTorch gradcheck's (eps 1e-6, atol 1e-5, rtol 1e-3), which need float64: all checked
// tensors must be float64, on the CPU or on a CUDA device.
//
// The inputs are perturbed in place, so parameters held inside a module are checked the same way as
// plain inputs: pass them in `inputs` and let `f` read them from wherever it keeps them.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "tensor/tensor.h"

namespace effnet::autograd {

struct GradcheckOptions {
  double eps = 1e-6;
  double atol = 1e-5;
  double rtol = 1e-3;
  // Re-seeds the default generator with this before every evaluation of f, so stochastic ops (dropout)
  // draw the same mask in the analytic and in every numeric evaluation.
  uint64_t seed = 1234;
  // Checks at most this many elements per input, a seeded random sample (0 = every element).
  int64_t max_elements_per_input = 0;
  // Skips elements where f has a kink (relu at 0, max at a tie): there the one-sided differences
  // disagree, and a central difference is meaningless.
  bool skip_kinks = false;
};

struct GradcheckResult {
  bool ok = true;
  int64_t checked = 0;   // elements compared
  int64_t skipped = 0;   // elements skipped at kinks
  double max_abs_error = 0;
  std::string report;    // the first mismatches, with input, element, analytic and numeric values
};

GradcheckResult gradcheck(const std::function<std::vector<Tensor>()>& f, const std::vector<Tensor>& inputs,
                          const GradcheckOptions& options = {});

// Single-output convenience.
GradcheckResult gradcheck(const std::function<Tensor()>& f, const std::vector<Tensor>& inputs,
                          const GradcheckOptions& options = {});

}  // namespace effnet::autograd
