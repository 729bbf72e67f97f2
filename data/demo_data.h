// A small synthetic dataset in the competition layout, so that the whole pipeline runs and is tested
// without the real (private) data. Drawn people: a face with hair and eyes whose shapes and colours tell
// gender and age band apart (with overlap and noise), wearing a mask over nose and mouth, a mask below the
// nose, or none; varied backgrounds, positions, sizes, lighting and noise. JPEG and PNG (and .jpeg) mixed;
// a few "._" macOS files; one corrupt image; an eval/ part with info.csv. Learnable, not trivially.
#pragma once

#include <cstdint>
#include <string>

namespace effnet::data {

struct DemoOptions {
  int64_t people = 300;
  int64_t height = 128, width = 96;  // the photos are portrait, like the competition's 512 x 384
  int64_t eval_images = 120;
  uint64_t seed = 0;
};

// Writes ROOT/train and ROOT/eval; returns the number of images written.
int64_t write_demo_dataset(const std::string& root, const DemoOptions& options = {});

}  // namespace effnet::data
