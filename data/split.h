// Train / validation splits by group (person): no person is on both sides. Stratified: each fold gets its
// share of every stratum (competition: gender x age band). Deterministic for a seed.
// A group whose samples disagree takes their most common stratum (ties: the smallest); data/split.cpp has
// how groups are dealt. Errors: k < 2, a fold outside 0 .. k-1, fewer groups than k; a val_ratio outside
// (0, 1), fewer than 2 groups.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "data/dataset.h"

namespace effnet::data {

struct Split {
  std::vector<int64_t> train, val;  // indices into the samples, ascending
};

// Fold `fold` (0 .. k-1) of k as validation, the rest for training.
Split kfold_split(const std::vector<Sample>& samples, int64_t k, int64_t fold, uint64_t seed);
// About `val_ratio` of the groups (stratified) for validation.
Split ratio_split(const std::vector<Sample>& samples, double val_ratio, uint64_t seed);
// CSV `path,group,label,subset` (subset train | val), for auditing a run.
void write_split_csv(const std::string& path, const std::vector<Sample>& samples, const Split& split);

}  // namespace effnet::data
