// A model summary: per stage, the output shape, the parameters and the multiply-adds of one image, and
// the totals. Multiply-adds count convolutions (C / groups x R x S per output value, squeeze-excite's
// included) and the classifier (in x out), the convention of the published EfficientNet figures
// (B0 0.39 G at 224, B4 4.4 G at 380); batch norm, activations and pooling are not counted.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "models/efficientnet.h"

namespace effnet {

struct SummaryRow {
  std::string name;     // "stem", "stage 0" ... "stage 6", "head", "classifier"
  int64_t blocks = 0;   // blocks in the stage (0 for stem, head, classifier)
  Shape output;         // [C, H, W] or [classes]
  int64_t parameters = 0;
  int64_t multiply_adds = 0;
};

struct ModelSummary {
  std::string model;
  int64_t height = 0, width = 0;
  std::vector<SummaryRow> rows;
  int64_t parameters = 0;
  int64_t multiply_adds = 0;

  std::string table() const;  // the rows and the totals, aligned for a terminal
};

ModelSummary summarize(const EfficientNet& model, const std::string& name, int64_t height, int64_t width);

}  // namespace effnet
