// Person-wise stratified splits (data/split.h). Samples are gathered into groups (people); each group takes
// the most common stratum of its samples (ties: the smallest) — in the competition a person has one gender
// and age, so all seven agree. Within each stratum the groups are shuffled by a Philox stream keyed by the
// seed and the stratum (so one stratum's shuffle does not depend on the others) and dealt:
//   k-fold   round-robin over the folds, the dealing position carried from one stratum to the next, so
//            every fold holds floor or ceil of each stratum's groups / k, and of all groups / k
//   ratio    the first floor(ratio * n) groups of each stratum, plus one more in the strata with the
//            largest remainders until round(ratio * groups) are taken (at least 1, at most groups - 1)
#include "data/split.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>

#include "tensor/error.h"
#include "tensor/philox.h"

namespace effnet::data {
namespace {

struct Group {
  std::vector<int64_t> samples;
  int64_t stratum = 0;
};

// Groups in order of first appearance.
std::vector<Group> make_groups(const std::vector<Sample>& samples) {
  std::vector<Group> groups;
  std::map<std::string, size_t> index;
  for (size_t i = 0; i < samples.size(); ++i) {
    const auto [it, inserted] = index.emplace(samples[i].group, groups.size());
    if (inserted) groups.emplace_back();
    groups[it->second].samples.push_back(static_cast<int64_t>(i));
  }
  for (Group& g : groups) {
    std::map<int64_t, int64_t> counts;
    for (int64_t i : g.samples) ++counts[samples[static_cast<size_t>(i)].stratum];
    int64_t best = 0;
    for (const auto& [stratum, count] : counts) {
      if (count > best) best = count, g.stratum = stratum;
    }
  }
  return groups;
}

// Per stratum (ascending), its groups' indices, shuffled (Fisher-Yates). The 64-bit draw modulo n has a
// bias below n / 2^64: nothing at these sizes.
std::vector<std::vector<size_t>> shuffled_strata(const std::vector<Group>& groups, uint64_t seed) {
  std::map<int64_t, std::vector<size_t>> strata;
  for (size_t g = 0; g < groups.size(); ++g) strata[groups[g].stratum].push_back(g);
  std::vector<std::vector<size_t>> out;
  for (auto& [stratum, members] : strata) {
    const uint64_t stream = static_cast<uint64_t>(stratum) << 32;
    for (size_t j = members.size(); j > 1; --j) {
      const philox::Words r = philox::generate(seed, stream + j);
      const uint64_t draw = (static_cast<uint64_t>(r.w[0]) << 32) | r.w[1];
      std::swap(members[j - 1], members[draw % j]);
    }
    out.push_back(std::move(members));
  }
  return out;
}

Split assemble(const std::vector<Sample>& samples, const std::vector<Group>& groups,
               const std::vector<bool>& val) {
  std::vector<bool> sample_val(samples.size(), false);
  for (size_t g = 0; g < groups.size(); ++g) {
    for (int64_t i : groups[g].samples) sample_val[static_cast<size_t>(i)] = val[g];
  }
  Split split;
  for (size_t i = 0; i < samples.size(); ++i) {
    (sample_val[i] ? split.val : split.train).push_back(static_cast<int64_t>(i));
  }
  return split;
}

}  // namespace

Split kfold_split(const std::vector<Sample>& samples, int64_t k, int64_t fold, uint64_t seed) {
  EFFNET_CHECK(k >= 2, "kfold_split: k must be at least 2, got ", k);
  EFFNET_CHECK(fold >= 0 && fold < k, "kfold_split: fold ", fold, " is out of range for k = ", k, " (0 .. ",
               k - 1, ")");
  const std::vector<Group> groups = make_groups(samples);
  EFFNET_CHECK(static_cast<int64_t>(groups.size()) >= k, "kfold_split: ", groups.size(),
               " groups (people) cannot fill k = ", k, " folds");
  std::vector<bool> val(groups.size(), false);
  int64_t position = 0;
  for (const std::vector<size_t>& stratum : shuffled_strata(groups, seed)) {
    for (size_t g : stratum) val[g] = position++ % k == fold;
  }
  return assemble(samples, groups, val);
}

Split ratio_split(const std::vector<Sample>& samples, double val_ratio, uint64_t seed) {
  EFFNET_CHECK(val_ratio > 0 && val_ratio < 1, "ratio_split: val_ratio must lie in (0, 1), got ", val_ratio);
  const std::vector<Group> groups = make_groups(samples);
  EFFNET_CHECK(groups.size() >= 2, "ratio_split: ", groups.size(),
               " groups (people); a split needs at least 2");
  const std::vector<std::vector<size_t>> strata = shuffled_strata(groups, seed);
  const int64_t total = static_cast<int64_t>(groups.size());
  const int64_t target =
      std::clamp<int64_t>(std::llround(val_ratio * static_cast<double>(total)), 1, total - 1);
  std::vector<int64_t> quota(strata.size());
  std::vector<double> remainder(strata.size());
  int64_t taken = 0;
  for (size_t s = 0; s < strata.size(); ++s) {
    const double exact = val_ratio * static_cast<double>(strata[s].size());
    quota[s] = static_cast<int64_t>(std::floor(exact));
    remainder[s] = exact - static_cast<double>(quota[s]);
    taken += quota[s];
  }
  std::vector<size_t> order(strata.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return remainder[a] > remainder[b]; });
  for (size_t s : order) {
    if (taken == target) break;
    ++quota[s];
    ++taken;
  }
  std::vector<bool> val(groups.size(), false);
  for (size_t s = 0; s < strata.size(); ++s) {
    for (int64_t j = 0; j < quota[s]; ++j) val[strata[s][static_cast<size_t>(j)]] = true;
  }
  return assemble(samples, groups, val);
}

void write_split_csv(const std::string& path, const std::vector<Sample>& samples, const Split& split) {
  std::vector<const char*> subset(samples.size(), nullptr);
  for (const auto& [indices, name] : {std::pair{&split.train, "train"}, std::pair{&split.val, "val"}}) {
    for (int64_t i : *indices) {
      EFFNET_CHECK(i >= 0 && i < static_cast<int64_t>(samples.size()), path, ": write_split_csv: index ", i,
                   " is out of range for ", samples.size(), " samples");
      EFFNET_CHECK(subset[static_cast<size_t>(i)] == nullptr, path, ": write_split_csv: sample ", i,
                   " is listed twice");
      subset[static_cast<size_t>(i)] = name;
    }
  }
  std::vector<std::vector<std::string>> rows;
  for (size_t i = 0; i < samples.size(); ++i) {
    if (subset[i] != nullptr) {
      rows.push_back({samples[i].path, samples[i].group, std::to_string(samples[i].label), subset[i]});
    }
  }
  write_csv(path, {"path", "group", "label", "subset"}, rows);
}

}  // namespace effnet::data
