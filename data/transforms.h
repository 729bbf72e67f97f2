// Image transforms, composed from a config, in the order of the recipe's torchvision pipeline:
//
//   deterministic (cacheable):  resize (bilinear; antialiased when shrinking) -> center crop H x W
//   random, per sample:         rotation by U(-deg, deg) with a fill colour -> horizontal flip
//                               -> colour jitter (brightness, contrast, saturation, hue, each factor drawn
//                                  as torchvision's ColorJitter draws it, applied in a random order)
//                               -> grayscale (probability) -> histogram equalisation (probability)
//   to tensor:                  uint8 HWC -> float CHW, (x / 255 - mean) / std per channel
//
// Every random choice comes from a SampleRandom keyed by (seed, epoch, sample index), so a sample's
// augmentation does not depend on which worker thread made it, or when.
#pragma once

#include <array>
#include <cstdint>

#include "data/image.h"

namespace effnet::data {

// A sample's random stream: Philox4x32-10 (tensor/philox.h) with key = seed ^ kAugmentKey (so that the
// stream differs from the tensor fills of the same seed) and 64-bit counter = epoch << 40 | index << 8 |
// block, each block giving four 32-bit words. Distinct (epoch, index) pairs therefore use disjoint counters
// of one key: independent streams, no hashing, no collisions. Limits: epoch < 2^24, index < 2^32 and 256
// blocks (1,024 words) per sample; beyond them an Error.
class SampleRandom {
 public:
  static constexpr uint64_t kAugmentKey = 0x61756738656e6574ull;  // "aug8enet"

  SampleRandom(uint64_t seed, uint64_t epoch, uint64_t index);
  double uniform();                        // [0, 1)
  double uniform(double low, double high);  // [low, high)
  bool bernoulli(double p);
  uint64_t below(uint64_t n);  // an integer in [0, n)

 private:
  uint64_t key_, stream_, counter_ = 0;
  uint32_t words_[4] = {};
  int used_ = 4;
  uint32_t next_word();
};

struct TransformConfig {
  int64_t resize_h = 0, resize_w = 0;  // 0: no resize
  int64_t crop_h = 0, crop_w = 0;      // 0: no center crop
  double rotation_degrees = 0;         // U(-deg, deg)
  std::array<uint8_t, 3> fill{0, 0, 0};
  double hflip = 0;  // probability
  double brightness = 0, contrast = 0, saturation = 0, hue = 0;  // torchvision ColorJitter arguments
  double grayscale = 0;  // probability
  double equalize = 0;   // probability
  std::array<float, 3> mean{0.485f, 0.456f, 0.406f};  // ImageNet's
  std::array<float, 3> std{0.229f, 0.224f, 0.225f};

  // The output size after the deterministic part (given the source size when neither is set).
  int64_t out_height(int64_t source_height) const;
  int64_t out_width(int64_t source_width) const;
  bool has_random() const;
  // An Error naming the field: negative sizes, degrees, jitter ranges; hue above 0.5; a probability
  // outside [0, 1]; a std of 0.
  void validate() const;
};

Image apply_deterministic(const Image& image, const TransformConfig& config);
// Draws the same nine numbers for every config (data/transforms.cpp lists them), so that switching one
// augmentation on or off leaves the sample's other random choices unchanged.
Image apply_random(const Image& image, const TransformConfig& config, SampleRandom& random);
// Writes 3 x H x W floats (channel-major) to `out`.
void to_normalized_chw(const Image& image, const TransformConfig& config, float* out);

// The single steps (also used by the tests on small known images).
Image resize_bilinear(const Image& image, int64_t height, int64_t width);
Image center_crop(const Image& image, int64_t height, int64_t width);
Image rotate(const Image& image, double degrees, const std::array<uint8_t, 3>& fill);  // counter-clockwise
Image flip_horizontal(const Image& image);
Image to_grayscale(const Image& image);  // ITU-R 601 luma, in all three channels
Image equalize(const Image& image);      // per channel, as PIL's ImageOps.equalize
// torchvision's adjust_* on PIL images (ImageEnhance blends; hue through PIL's 8-bit HSV); factor 1 is the
// identity, hue 0 is not (PIL's 8-bit HSV round trip moves some colours by a few levels; ColorJitter never
// calls it with 0).
Image adjust_brightness(const Image& image, double factor);
Image adjust_contrast(const Image& image, double factor);    // around the mean of the grayscale image
Image adjust_saturation(const Image& image, double factor);  // towards the grayscale image
Image adjust_hue(const Image& image, double hue);            // hue in [-0.5, 0.5]

}  // namespace effnet::data
