// Class probabilities of a model over a list of samples, and the CSV files made of them:
//   probabilities  `id,label,p0,...,p{C-1}` (label -1 when unknown): val_probs.csv (out-of-fold) and
//                  test_probs.csv, so that ensembles are recomputed from files, without the models
//   submission     `ImageID,ans` in the order of eval/info.csv, ans = the most probable class
#pragma once

#include <string>
#include <vector>

#include "data/loader.h"
#include "layers/module.h"

namespace effnet::train {

// Softmax of the model's logits for every sample, in sample order: a CPU float32 tensor [N, C]. Runs in
// eval mode without the tape; the model's mode is restored afterwards.
Tensor predict_probabilities(Module& model, const std::vector<data::Sample>& samples,
                             const data::TransformConfig& transforms, const data::LoaderOptions& options);

void write_probabilities_csv(const std::string& path, const std::vector<std::string>& ids,
                             const std::vector<int64_t>& labels, const Tensor& probabilities);
void write_submission_csv(const std::string& path, const std::vector<std::string>& image_ids,
                          const Tensor& probabilities);

// Writes `text` to `path` atomically (temporary file, then rename).
void write_text_file(const std::string& path, const std::string& text);

}  // namespace effnet::train
