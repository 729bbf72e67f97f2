// The three-head factorisation of the 18 mask classes: joint log-probabilities and the weighted loss
// (see multi_head.h).
#include "losses/multi_head.h"

#include <charconv>
#include <cmath>
#include <sstream>

#include "data/dataset.h"
#include "tensor/ops.h"

namespace effnet {

namespace {

constexpr int64_t kGenders = 2, kAgeBands = 3;

int64_t checked_label(double value, size_t position) {
  EFFNET_CHECK(value >= 0 && value < static_cast<double>(data::kMaskClasses), "multi-head loss: target ", position,
               " is ", value, "; the three heads need the 18 mask classes, [0, ", data::kMaskClasses, ")");
  return static_cast<int64_t>(value);
}

}  // namespace

Tensor mask_joint_log_probs(const MaskHeadLogits& heads) {
  for (int64_t h = 0; h < kMaskHeadCount; ++h) {
    const Tensor& z = heads[h];
    EFFNET_CHECK(z.defined() && z.dim() == 2 && z.size(1) == kMaskHeadClasses[h] && z.size(0) == heads.mask.size(0),
                 "mask_joint_log_probs: the ", kMaskHeadNames[h], " head must be [N, ", kMaskHeadClasses[h],
                 "] (N of the mask head), got ", z.defined() ? z.str() : "an undefined tensor");
  }
  const int64_t n = heads.mask.size(0);
  // [N, 3, 1, 1] + [N, 1, 2, 1] + [N, 1, 1, 3] -> [N, 3, 2, 3], whose row-major index is m * 6 + g * 3 + a.
  const Tensor joint = add(add(log_softmax(heads.mask, 1).view({n, kMaskHeadClasses[0], 1, 1}),
                               log_softmax(heads.gender, 1).view({n, 1, kGenders, 1})),
                           log_softmax(heads.age, 1).view({n, 1, 1, kAgeBands}));
  return joint.view({n, data::kMaskClasses});
}

std::array<std::vector<int64_t>, kMaskHeadCount> mask_head_labels(const std::vector<int64_t>& labels) {
  std::array<std::vector<int64_t>, kMaskHeadCount> heads;
  for (size_t i = 0; i < labels.size(); ++i) {
    const int64_t t = checked_label(static_cast<double>(labels[i]), i);
    heads[0].push_back(t / (kGenders * kAgeBands));
    heads[1].push_back(t / kAgeBands % kGenders);
    heads[2].push_back(t % kAgeBands);
  }
  return heads;
}

std::array<Tensor, kMaskHeadCount> mask_head_targets(const Tensor& targets) {
  EFFNET_CHECK(targets.defined() && targets.dtype() == kInt64 && targets.dim() == 1,
               "multi-head loss: expected int64 targets [N], got ",
               targets.defined() ? targets.str() : "an undefined tensor");
  // int64 arithmetic on tensors is minimal (ARCHITECTURE.md), and the losses read targets on the host anyway.
  std::vector<int64_t> labels;
  for (double v : targets.to_vector()) labels.push_back(checked_label(v, labels.size()));
  const std::array<std::vector<int64_t>, kMaskHeadCount> heads = mask_head_labels(labels);
  std::array<Tensor, kMaskHeadCount> out;
  for (int64_t h = 0; h < kMaskHeadCount; ++h) {
    out[h] = from_vector(std::vector<double>(heads[h].begin(), heads[h].end()), {targets.size(0)},
                         TensorOptions(kInt64, targets.device()));
  }
  return out;
}

MultiHeadLoss::MultiHeadLoss(const std::string& spec, std::array<double, kMaskHeadCount> weights,
                             std::array<LossOptions, kMaskHeadCount> options)
    : weights_(weights),
      losses_{WeightedLoss(spec, std::move(options[0])), WeightedLoss(spec, std::move(options[1])),
              WeightedLoss(spec, std::move(options[2]))} {
  bool any = false;
  for (double w : weights_) {
    EFFNET_CHECK(std::isfinite(w) && w >= 0, "multi-head loss: head weights must be finite and >= 0, got ", w);
    any = any || w > 0;
  }
  EFFNET_CHECK(any, "multi-head loss: at least one head weight must be > 0");
}

Tensor MultiHeadLoss::operator()(const MaskHeadLogits& heads, const Tensor& targets) const {
  const std::array<Tensor, kMaskHeadCount> head_targets = mask_head_targets(targets);
  Tensor total;
  for (int64_t h = 0; h < kMaskHeadCount; ++h) {
    if (weights_[h] == 0) continue;  // that head gets no gradient
    Tensor loss = losses_[h](heads[h], head_targets[h]);
    if (weights_[h] != 1) loss = mul(loss, weights_[h]);
    total = total.defined() ? add(total, loss) : loss;
  }
  return total;
}

std::array<double, kMaskHeadCount> parse_head_weights(const std::string& text, const char* option) {
  std::array<double, kMaskHeadCount> weights{};
  std::stringstream items(text);
  int64_t count = 0;
  bool any = false;
  for (std::string item; std::getline(items, item, ',');) {
    const size_t first = item.find_first_not_of(' '), last = item.find_last_not_of(' ');
    const std::string number = first == std::string::npos ? "" : item.substr(first, last - first + 1);
    double w = 0;
    const auto [end, error] = std::from_chars(number.data(), number.data() + number.size(), w);
    EFFNET_CHECK(!number.empty() && error == std::errc() && end == number.data() + number.size() &&
                     std::isfinite(w) && w >= 0 && count < kMaskHeadCount,
                 option, " is '", text, "'; expected three numbers >= 0 for the mask, gender and age heads, e.g. 1,1,1");
    weights[count++] = w;
    any = any || w > 0;
  }
  EFFNET_CHECK(count == kMaskHeadCount && any, option, " is '", text,
               "'; expected three numbers >= 0 (mask, gender, age), not all 0, e.g. 1,1,1");
  return weights;
}

}  // namespace effnet
