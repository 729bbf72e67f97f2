// Class weights for an imbalanced data set, from the number of samples of each class:
//
//   w_c = (N / (C n_c))^power * scale,     n_c the samples of class c, N = sum_c n_c, C the classes
//
// power 1, scale 1 is inverse frequency normalised so that a balanced set gets 1 everywhere (scikit-learn's
// 'balanced'); power 0.5 softens it, power 0 turns it off. The recipe weighted its cross-entropy by inverse
// frequency with a custom 2x factor. Note that a common scale cancels in a weighted mean (cross-entropy and
// focal loss divide by sum_i w_{t_i}); it matters with reduction 'sum' or beside an unweighted loss
// (ce:0.7+f1:0.3). A class with n_c = 0 would get an infinite weight: that is an error naming the class.
#pragma once

#include <cstdint>
#include <vector>

#include "tensor/tensor.h"

namespace effnet {

struct ClassWeightOptions {
  double power = 1;
  double scale = 1;
};

// n_c for c in [0, classes) from int64 labels [N] on any device; a label outside [0, classes) is an error.
std::vector<int64_t> count_classes(const Tensor& labels, int64_t classes);

std::vector<double> class_weights_from_counts(const std::vector<int64_t>& counts,
                                              const ClassWeightOptions& options = {});

}  // namespace effnet
