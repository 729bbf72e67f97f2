// Model weights in safetensors files, under timm's state-dict names (so timm's exported weights load with
// no renaming). Loading checks every tensor's shape, reports missing and unexpected names, and can skip the
// classifier when its shape differs: that is how ImageNet weights (1000 classes) start an 18-class model.
#pragma once

#include <string>
#include <vector>

#include "io/safetensors.h"
#include "layers/module.h"

namespace effnet {

struct LoadOptions {
  // Names in the model but not in the file, or in the file but not in the model, are errors.
  bool strict = true;
  // Tensors under this prefix whose shape differs are skipped (and reported) instead of an error.
  bool skip_mismatched_classifier = false;
  std::string classifier_prefix = "classifier.";
};

struct LoadReport {
  std::vector<std::string> loaded, missing, unexpected, skipped;
  std::string str() const;  // one line per category that is not empty
};

// Copies the file's tensors into the module's parameters and buffers (any device; dtypes converted).
LoadReport load_state_dict(Module& module, const safetensors::NamedTensors& tensors, const LoadOptions& options = {});
LoadReport load_weights(Module& module, const std::string& path, const LoadOptions& options = {});
void save_weights(const Module& module, const std::string& path,
                  const std::map<std::string, std::string>& metadata = {});

}  // namespace effnet
