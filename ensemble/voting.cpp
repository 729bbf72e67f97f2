#include "ensemble/voting.h"

#include <cmath>
#include <sstream>

#include "tensor/error.h"
#include "tensor/ops.h"

namespace effnet::ensemble {

Vote parse_vote(const std::string& text, const std::string& option) {
  if (text == "soft") return Vote::Soft;
  if (text == "hard") return Vote::Hard;
  EFFNET_FAIL(option, ": '", text, "' is not a vote (expected soft or hard)");
}

std::vector<double> parse_model_weights(const std::string& text, size_t models, const std::string& option) {
  if (text.empty()) return std::vector<double>(models, 1.0);
  std::vector<double> weights;
  std::stringstream in(text);
  for (std::string field; std::getline(in, field, ',');) {
    size_t used = 0;
    double w = 0;
    try {
      w = std::stod(field, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    EFFNET_CHECK(used > 0 && used == field.size() && std::isfinite(w) && w >= 0, option, ": '", field,
                 "' is not a finite weight >= 0 (expected one comma-separated weight per model, e.g. 1,1,0.5)");
    weights.push_back(w);
  }
  EFFNET_CHECK(weights.size() == models, option, ": ", weights.size(), " weights for ", models, " models");
  double total = 0;
  for (double w : weights) total += w;
  EFFNET_CHECK(total > 0, option, ": the weights are all 0");
  return weights;
}

ProbabilityTable vote(const std::vector<ProbabilityTable>& tables, const std::vector<double>& weights, Vote how) {
  EFFNET_CHECK(!tables.empty(), "vote: no probability tables");
  const std::vector<double> w = weights.empty() ? std::vector<double>(tables.size(), 1.0) : weights;
  EFFNET_CHECK(w.size() == tables.size(), "vote: ", w.size(), " weights for ", tables.size(), " tables");
  const ProbabilityTable& first = tables.front();
  const int64_t n = first.rows(), classes = first.classes();
  ProbabilityTable result;
  result.name = "the ensemble of " + std::to_string(tables.size()) + " models";
  result.ids = first.ids;
  result.labels = first.labels;
  std::vector<double> p(static_cast<size_t>(n * classes), 0.0);
  double total = 0;
  for (size_t m = 0; m < tables.size(); ++m) {
    check_same_rows(first, tables[m]);
    EFFNET_CHECK(std::isfinite(w[m]) && w[m] >= 0, "vote: weight ", w[m], " of ", tables[m].name,
                 " is not finite and >= 0");
    total += w[m];
    for (int64_t i = 0; i < n; ++i) {
      if (result.labels[i] < 0) result.labels[i] = tables[m].labels[i];
    }
    const std::vector<double> pm = tables[m].probabilities.to_vector();
    if (how == Vote::Soft) {
      for (size_t k = 0; k < p.size(); ++k) p[k] += w[m] * pm[k];
      continue;
    }
    const std::vector<double> answer = argmax(tables[m].probabilities, 1).to_vector();
    for (int64_t i = 0; i < n; ++i) p[i * classes + static_cast<int64_t>(answer[i])] += w[m];
  }
  EFFNET_CHECK(total > 0, "vote: the weights are all 0");
  for (double& value : p) value /= total;
  result.probabilities = from_vector(p, {n, classes}, kFloat64);
  return result;
}

}  // namespace effnet::ensemble
