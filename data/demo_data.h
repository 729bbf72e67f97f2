// A small synthetic dataset in the competition layout, so that the whole pipeline runs and is tested
// without the real (private) data. Drawn people: a face with hair and eyes whose shapes and colours tell
// gender and age band apart (with overlap and noise), wearing a mask over nose and mouth, a mask below the
// nose, or none; varied backgrounds, positions, sizes, lighting and noise. JPEG and PNG (and .jpeg) mixed;
// a few "._" macOS files; one corrupt image; an eval/ part with info.csv. Learnable, not trivially.
//
// The tree written (data/demo_data.cpp has how the pictures are drawn):
//   train/train.csv        id,gender,race,age,path; ids 000001.. with one "-1" suffix every 40 people and,
//                          from 20 people on, one id used twice with another age; race is always Asian
//   train/images/<path>/   mask1..5, incorrect_mask, normal: .jpg (80 %), .png, .jpeg, a few in capitals
//   train/relabel.csv      (20 people or more) the fixes for four mislabelled people: two genders swapped,
//                          one age off by 21, one person whose incorrect_mask and normal files hold each
//                          other's picture (field mask-swap) — load_mask_train's relabel_file format
//   eval/info.csv          ImageID,ans (ans 0), 40-hex-character .jpg names, in eval/images/
//   eval/answers.csv       ImageID,ans,age: the true classes (threshold 60) and ages, to score predictions
//   junk                   train/._train.csv, a train/._images/ folder, eval/._info.csv, "._mask1.jpg" in
//                          about one person folder in ten, "._<path>" beside some folders and "._<id>.jpg"
//                          among the eval images
//   corrupt                person people / 3's mask2.jpg is truncated to half its bytes. load_mask_train
//                          lists files without decoding them, so it reports no problem for the demo tree:
//                          the file fails only when the loader decodes it (an ImageError, then replaced)
// Ages are drawn 18-29 (35 %), 30-57 (40 %), 58-59 (10 %) and 60 (15 %), women 60 %; the first six people
// cover the six gender x age-band strata, so every one of the 18 classes is present from six people on.
// ROOT/train and ROOT/eval must not exist yet (an Error otherwise: nothing is overwritten).
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
