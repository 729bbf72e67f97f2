// Classification metrics from a confusion matrix, accumulated batch by batch on the host.
//
//   M[a][b]   the samples whose true label is a and whose prediction is b (rows: labels, as scikit-learn)
//   tp_c = M[c][c],  fp_c = sum_a M[a][c] - tp_c (predicted c, label other),
//   fn_c = sum_b M[c][b] - tp_c (label c, predicted other),  support_c = sum_b M[c][b]
//   accuracy     = sum_c tp_c / total
//   precision_c  = tp_c / (tp_c + fp_c)
//   recall_c     = tp_c / (tp_c + fn_c)
//   F1_c         = 2 tp_c / (2 tp_c + fp_c + fn_c)
//   macro-F1     = (1 / C) sum_c F1_c over all C classes
// A ratio whose denominator is 0 is 0: a class never predicted has precision 0, a class absent from the
// labels recall 0, and a class neither predicted nor present F1 0 and still counts in the macro mean (the
// competition's macro-F1). This is scikit-learn's precision_recall_fscore_support and
// f1_score(average='macro', labels=range(C), zero_division=0). With no samples at all, accuracy is 0.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "tensor/tensor.h"

namespace effnet {

class ConfusionMatrix {
 public:
  explicit ConfusionMatrix(int64_t classes);

  // Counts one batch: int64 predictions and labels [N] on any device (copied to the host), each in
  // [0, classes).
  void add(const Tensor& predictions, const Tensor& labels);
  void add(const std::vector<int64_t>& predictions, const std::vector<int64_t>& labels);
  void reset();

  int64_t classes() const { return classes_; }
  int64_t count(int64_t label, int64_t prediction) const;
  int64_t total() const;
  int64_t support(int64_t label) const;

  double accuracy() const;
  std::vector<double> precision() const;
  std::vector<double> recall() const;
  std::vector<double> f1() const;
  double macro_f1() const;

  // Per-class precision, recall, F1 and support, then accuracy and macro-F1; class_names (one per class)
  // label the rows, else the class indices do.
  std::string report(const std::vector<std::string>& class_names = {}) const;
  // The matrix itself, labels down, predictions across.
  std::string matrix_table(const std::vector<std::string>& class_names = {}) const;

 private:
  int64_t tp(int64_t c) const { return count(c, c); }
  int64_t predicted(int64_t c) const;  // sum_a M[a][c]
  std::vector<std::string> names(const std::vector<std::string>& class_names) const;

  int64_t classes_;
  std::vector<int64_t> counts_;  // row-major [label][prediction]
};

}  // namespace effnet
