// Hyper-parameter checks shared by the optimizers; each error names the optimizer and group (`where`),
// the hyper-parameter, what it must be and what it was.
#pragma once

#include <cmath>
#include <string>

#include "tensor/error.h"

namespace effnet::optim_checks {

inline void at_least_zero(const std::string& where, const char* name, double value) {
  EFFNET_CHECK(std::isfinite(value) && value >= 0, where, ": ", name, " must be a finite number >= 0, got ", value);
}

// [0, 1): betas and momentum coefficients that divide by 1 - value or must forget.
inline void below_one(const std::string& where, const char* name, double value) {
  EFFNET_CHECK(value >= 0 && value < 1, where, ": ", name, " must be in [0, 1), got ", value);
}

inline void at_most_one(const std::string& where, const char* name, double value) {
  EFFNET_CHECK(value >= 0 && value <= 1, where, ": ", name, " must be in [0, 1], got ", value);
}

}  // namespace effnet::optim_checks
