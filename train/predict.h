// Class probabilities of a model over a list of samples; ensemble/probability_file.h writes them.
#pragma once

#include <string>
#include <vector>

#include "data/loader.h"
#include "ensemble/probability_file.h"
#include "layers/module.h"

namespace effnet::train {

// Softmax of the model's logits for every sample, in sample order: a CPU float32 tensor [N, C]. Runs in
// eval mode without the tape; the model's mode is restored afterwards. hflip_tta: the mean of the
// probabilities of each image and of its mirror image (a second pass of the loader, flipping every image
// after the deterministic transforms).
Tensor predict_probabilities(Module& model, const std::vector<data::Sample>& samples,
                             const data::TransformConfig& transforms, const data::LoaderOptions& options,
                             bool hflip_tta = false);

}  // namespace effnet::train
