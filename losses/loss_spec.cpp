// Parsing "name[:weight]+..." loss specs and evaluating the weighted sum (see loss_spec.h).
#include "losses/loss_spec.h"

#include <charconv>
#include <cmath>
#include <sstream>
#include <string_view>

#include "losses/losses.h"
#include "tensor/ops.h"

namespace effnet {

namespace {

constexpr std::string_view kKnownLosses[] = {"ce", "focal", "f1"};

std::string_view trim(std::string_view text) {
  const size_t first = text.find_first_not_of(" \t");
  if (first == std::string_view::npos) return {};
  return text.substr(first, text.find_last_not_of(" \t") - first + 1);
}

bool is_known(std::string_view name) {
  for (std::string_view known : kKnownLosses)
    if (name == known) return true;
  return false;
}

double parse_weight(const std::string& spec, std::string_view name, std::string_view text) {
  double weight = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), weight);
  EFFNET_CHECK(!text.empty() && error == std::errc() && end == text.data() + text.size(), "loss spec \"",
               spec, "\": the weight \"", text, "\" of ", name, " is not a number");
  EFFNET_CHECK(std::isfinite(weight) && weight > 0, "loss spec \"", spec, "\": the weight of ", name,
               " must be a finite number > 0, got ", text);
  return weight;
}

}  // namespace

std::vector<LossTerm> parse_loss_spec(const std::string& spec) {
  std::vector<LossTerm> terms;
  std::string_view rest = spec;
  while (true) {
    const size_t plus = rest.find('+');
    const std::string_view term = trim(rest.substr(0, plus));
    EFFNET_CHECK(!term.empty(), "loss spec \"", spec,
                 "\": empty term (expected name[:weight]+..., e.g. ce:0.7+f1:0.3)");
    const size_t colon = term.find(':');
    const std::string_view name = trim(term.substr(0, colon));
    if (!is_known(name)) {
      std::ostringstream known;
      for (std::string_view k : kKnownLosses) known << (k == kKnownLosses[0] ? "" : ", ") << k;
      EFFNET_FAIL("loss spec \"", spec, "\": unknown loss \"", name, "\" (known: ", known.str(), ")");
    }
    for (const LossTerm& seen : terms) {
      EFFNET_CHECK(seen.name != name, "loss spec \"", spec, "\": ", name, " appears twice");
    }
    const double weight =
        colon == std::string_view::npos ? 1.0 : parse_weight(spec, name, trim(term.substr(colon + 1)));
    terms.push_back({std::string(name), weight});
    if (plus == std::string_view::npos) break;
    rest = rest.substr(plus + 1);
  }
  return terms;
}

WeightedLoss::WeightedLoss(const std::string& spec, LossOptions options)
    : terms_(parse_loss_spec(spec)), options_(std::move(options)) {}

Tensor WeightedLoss::operator()(const Tensor& logits, const Tensor& targets) const {
  Tensor total;
  for (const LossTerm& term : terms_) {
    Tensor loss;
    if (term.name == "ce") {
      CrossEntropyOptions ce;
      ce.weight = options_.class_weights;
      ce.label_smoothing = options_.label_smoothing;
      loss = cross_entropy(logits, targets, ce);
    } else if (term.name == "focal") {
      FocalLossOptions focal;
      focal.gamma = options_.focal_gamma;
      focal.weight = options_.class_weights;
      loss = focal_loss(logits, targets, focal);
    } else {
      loss = soft_f1_loss(logits, targets, SoftF1Options{options_.f1_epsilon});
    }
    if (term.weight != 1) loss = mul(loss, term.weight);
    total = total.defined() ? add(total, loss) : loss;
  }
  return total;
}

std::string WeightedLoss::str() const {
  std::ostringstream out;
  for (const LossTerm& term : terms_)
    out << (&term == &terms_.front() ? "" : " + ") << term.weight << " " << term.name;
  return out.str();
}

}  // namespace effnet
