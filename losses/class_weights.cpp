// Class weights from class counts: w_c = (N / (C n_c))^power * scale (see class_weights.h).
#include "losses/class_weights.h"

#include <cmath>

namespace effnet {

std::vector<int64_t> count_classes(const Tensor& labels, int64_t classes) {
  EFFNET_CHECK(labels.defined() && labels.dtype() == kInt64 && labels.dim() == 1,
               "count_classes: expected int64 labels [N], got ",
               labels.defined() ? labels.str() : "an undefined tensor");
  EFFNET_CHECK(classes >= 1, "count_classes: classes must be >= 1, got ", classes);
  const Tensor host = labels.cpu().contiguous();
  const int64_t* values = host.data<int64_t>();
  std::vector<int64_t> counts(static_cast<size_t>(classes), 0);
  for (int64_t i = 0; i < host.numel(); ++i) {
    EFFNET_CHECK(values[i] >= 0 && values[i] < classes, "count_classes: label ", values[i], " at index ", i,
                 " is outside [0, ", classes, ")");
    ++counts[static_cast<size_t>(values[i])];
  }
  return counts;
}

std::vector<double> class_weights_from_counts(const std::vector<int64_t>& counts,
                                              const ClassWeightOptions& options) {
  EFFNET_CHECK(!counts.empty(), "class_weights_from_counts: no classes (empty counts)");
  EFFNET_CHECK(std::isfinite(options.power) && std::isfinite(options.scale) && options.scale > 0,
               "class_weights_from_counts: power must be finite and scale finite and > 0, got power ",
               options.power, ", scale ", options.scale);
  int64_t total = 0;
  for (size_t c = 0; c < counts.size(); ++c) {
    EFFNET_CHECK(counts[c] > 0, "class_weights_from_counts: class ", c, " has ", counts[c],
                 " samples; every class needs at least one (its inverse frequency would be infinite)");
    total += counts[c];
  }
  const double classes = static_cast<double>(counts.size());
  std::vector<double> weights;
  for (int64_t n : counts) {
    weights.push_back(
        std::pow(static_cast<double>(total) / (classes * static_cast<double>(n)), options.power) *
        options.scale);
  }
  return weights;
}

}  // namespace effnet
