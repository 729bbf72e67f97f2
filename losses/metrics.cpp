// The confusion matrix and the metrics derived from it (formulas in metrics.h).
#include "losses/metrics.h"

#include <algorithm>
#include <cstdio>
#include <sstream>

namespace effnet {

namespace {

double ratio_or_zero(int64_t numerator, int64_t denominator) {
  return denominator == 0 ? 0.0 : static_cast<double>(numerator) / static_cast<double>(denominator);
}

std::vector<int64_t> host_labels(const Tensor& t, const char* what) {
  EFFNET_CHECK(t.defined() && t.dtype() == kInt64 && t.dim() == 1, "ConfusionMatrix::add: expected int64 ",
               what, " [N], got ", t.defined() ? t.str() : "an undefined tensor");
  const Tensor host = t.cpu().contiguous();
  const int64_t* values = host.data<int64_t>();
  return std::vector<int64_t>(values, values + host.numel());
}

std::string fixed(double value) {
  char text[32];
  std::snprintf(text, sizeof text, "%.4f", value);
  return text;
}

}  // namespace

ConfusionMatrix::ConfusionMatrix(int64_t classes) : classes_(classes) {
  EFFNET_CHECK(classes >= 1, "ConfusionMatrix: classes must be >= 1, got ", classes);
  counts_.assign(static_cast<size_t>(classes * classes), 0);
}

void ConfusionMatrix::add(const Tensor& predictions, const Tensor& labels) {
  add(host_labels(predictions, "predictions"), host_labels(labels, "labels"));
}

void ConfusionMatrix::add(const std::vector<int64_t>& predictions, const std::vector<int64_t>& labels) {
  EFFNET_CHECK(predictions.size() == labels.size(), "ConfusionMatrix::add: ", predictions.size(),
               " predictions for ", labels.size(), " labels");
  // Validate the whole batch first, so a bad batch leaves the counts untouched.
  for (size_t i = 0; i < labels.size(); ++i) {
    EFFNET_CHECK(labels[i] >= 0 && labels[i] < classes_ && predictions[i] >= 0 && predictions[i] < classes_,
                 "ConfusionMatrix::add: at index ", i, " label ", labels[i], " / prediction ", predictions[i],
                 " is outside [0, ", classes_, ")");
  }
  for (size_t i = 0; i < labels.size(); ++i)
    ++counts_[static_cast<size_t>(labels[i] * classes_ + predictions[i])];
}

void ConfusionMatrix::reset() { std::fill(counts_.begin(), counts_.end(), 0); }

int64_t ConfusionMatrix::count(int64_t label, int64_t prediction) const {
  EFFNET_CHECK(label >= 0 && label < classes_ && prediction >= 0 && prediction < classes_,
               "ConfusionMatrix::count: (", label, ", ", prediction, ") is outside [0, ", classes_, ")");
  return counts_[static_cast<size_t>(label * classes_ + prediction)];
}

int64_t ConfusionMatrix::total() const {
  int64_t n = 0;
  for (int64_t v : counts_) n += v;
  return n;
}

int64_t ConfusionMatrix::support(int64_t label) const {
  int64_t n = 0;
  for (int64_t b = 0; b < classes_; ++b) n += count(label, b);
  return n;
}

int64_t ConfusionMatrix::predicted(int64_t c) const {
  int64_t n = 0;
  for (int64_t a = 0; a < classes_; ++a) n += count(a, c);
  return n;
}

double ConfusionMatrix::accuracy() const {
  int64_t correct = 0;
  for (int64_t c = 0; c < classes_; ++c) correct += tp(c);
  return ratio_or_zero(correct, total());
}

std::vector<double> ConfusionMatrix::precision() const {
  std::vector<double> out;
  for (int64_t c = 0; c < classes_; ++c) out.push_back(ratio_or_zero(tp(c), predicted(c)));
  return out;
}

std::vector<double> ConfusionMatrix::recall() const {
  std::vector<double> out;
  for (int64_t c = 0; c < classes_; ++c) out.push_back(ratio_or_zero(tp(c), support(c)));
  return out;
}

std::vector<double> ConfusionMatrix::f1() const {
  std::vector<double> out;
  // 2 tp + fp + fn = predicted + support
  for (int64_t c = 0; c < classes_; ++c) out.push_back(ratio_or_zero(2 * tp(c), predicted(c) + support(c)));
  return out;
}

double ConfusionMatrix::macro_f1() const {
  double total_f1 = 0;
  for (double f : f1()) total_f1 += f;
  return total_f1 / static_cast<double>(classes_);
}

std::vector<std::string> ConfusionMatrix::names(const std::vector<std::string>& class_names) const {
  if (class_names.empty()) {
    std::vector<std::string> indices;
    for (int64_t c = 0; c < classes_; ++c) indices.push_back(std::to_string(c));
    return indices;
  }
  EFFNET_CHECK(static_cast<int64_t>(class_names.size()) == classes_, "ConfusionMatrix: ", class_names.size(),
               " class names for ", classes_, " classes");
  return class_names;
}

std::string ConfusionMatrix::report(const std::vector<std::string>& class_names) const {
  const std::vector<std::string> labels = names(class_names);
  size_t width = 8;  // "accuracy", "macro-F1"
  for (const std::string& s : labels) width = std::max(width, s.size());
  const std::vector<double> p = precision(), r = recall(), f = f1();
  std::ostringstream out;
  auto row = [&](const std::string& name, const std::string& a, const std::string& b, const std::string& c,
                 const std::string& d) {
    char line[256];
    std::snprintf(line, sizeof line, "%-*s  %9s  %9s  %9s  %9s\n", static_cast<int>(width), name.c_str(),
                  a.c_str(), b.c_str(), c.c_str(), d.c_str());
    out << line;
  };
  row("class", "precision", "recall", "f1", "support");
  for (int64_t c = 0; c < classes_; ++c) {
    const size_t k = static_cast<size_t>(c);
    row(labels[k], fixed(p[k]), fixed(r[k]), fixed(f[k]), std::to_string(support(c)));
  }
  row("accuracy", "", "", fixed(accuracy()), std::to_string(total()));
  row("macro-F1", "", "", fixed(macro_f1()), std::to_string(total()));
  return out.str();
}

std::string ConfusionMatrix::matrix_table(const std::vector<std::string>& class_names) const {
  const std::vector<std::string> labels = names(class_names);
  size_t label_width = 11;  // "label\\pred."
  size_t cell_width = 1;
  for (const std::string& s : labels) {
    label_width = std::max(label_width, s.size());
    cell_width = std::max(cell_width, s.size());
  }
  for (int64_t v : counts_) cell_width = std::max(cell_width, std::to_string(v).size());
  std::ostringstream out;
  auto pad = [&](const std::string& s, size_t width, bool left) {
    const std::string fill(width > s.size() ? width - s.size() : 0, ' ');
    out << (left ? s + fill : fill + s);
  };
  pad("label\\pred.", label_width, true);
  for (const std::string& s : labels) {
    out << ' ';
    pad(s, cell_width, false);
  }
  out << '\n';
  for (int64_t a = 0; a < classes_; ++a) {
    pad(labels[static_cast<size_t>(a)], label_width, true);
    for (int64_t b = 0; b < classes_; ++b) {
      out << ' ';
      pad(std::to_string(count(a, b)), cell_width, false);
    }
    out << '\n';
  }
  return out.str();
}

}  // namespace effnet
