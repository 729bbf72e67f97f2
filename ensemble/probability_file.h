// Probability files: what a model said about every image, so that ensembles are recomputed from files,
// without the models (the recipe's wish: "save the test probabilities").
//
//   probabilities  `id,label,p0,...,p{C-1}`, a row per image: id = the image (its path, or the ImageID of
//                  eval/info.csv), label = its class index or -1 when unknown, p_c = the probability of
//                  class c (each in [0, 1], each row summing to 1). val_probs.csv, oof_probs.csv and
//                  test_probs.csv are all of this form.
//   submission     `ImageID,ans`, ans = the most probable class (the first among ties), in the given order
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "tensor/tensor.h"

namespace effnet::ensemble {

struct ProbabilityTable {
  std::string name;                // the file it came from, for messages
  std::vector<std::string> ids;    // N
  std::vector<int64_t> labels;     // N, -1 where unknown
  Tensor probabilities;            // [N, C] float64 on the CPU

  int64_t rows() const { return static_cast<int64_t>(ids.size()); }
  int64_t classes() const { return probabilities.size(1); }
};

// Reads and validates a probability file: the header id,label,p0..p{C-1} (C >= 2), a label -1 <= l < C,
// probabilities finite in [0, 1] whose row sums are within 1e-4 of 1. A violation is an
// Error "FILE:LINE: problem".
ProbabilityTable read_probabilities_csv(const std::string& path);

// Atomic (temporary file, then rename); probabilities with 8 significant digits.
void write_probabilities_csv(const std::string& path, const std::vector<std::string>& ids,
                             const std::vector<int64_t>& labels, const Tensor& probabilities);
void write_probabilities_csv(const std::string& path, const ProbabilityTable& table);
void write_submission_csv(const std::string& path, const std::vector<std::string>& image_ids,
                          const Tensor& probabilities);

// Whether two tables can be ensembled: the same images in the same order and the same classes (and the
// same labels where both know them); an Error naming both files and the first difference otherwise.
void check_same_rows(const ProbabilityTable& reference, const ProbabilityTable& other);

}  // namespace effnet::ensemble
