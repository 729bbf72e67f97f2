// Image transforms (data/transforms.cpp): (1) each step on small images whose answer is known by hand;
// (2) bit-exact parity with torchvision on PIL images through tests/fixtures/transform_fixtures.safetensors
// (tools/reference/transform_check.py: resize, center crop, rotation, flip, grayscale, equalize, the four
// jitter adjustments, normalisation, and PIL's decoding of two JPEG files); (3) SampleRandom streams and the
// reproducibility of apply_random.
//
// Agreement with torchvision 0.29 on PIL images, measured on the fixture and on three 512 x 384 images
// (resize to 300x256, 320x240, 600x450, 256x500; crops 384x320, 300x256, 600x400; rotations 10, -10, 3.7,
// 90, -7.25; flip, grayscale, equalize, two factors of each jitter): every transform exact (max |diff| 0)
// against Pillow 12.3; Pillow 13.0 agrees too except resizes it runs vertical pass first (256x500 from
// 512x384: max |diff| 1), which is why the fixture tool stores the horizontal-then-vertical result.
// Normalisation is exact in float32. JPEG decoding (stb against PIL's libjpeg-turbo): within 3 levels for
// 4:2:0 and 4:4:4 (baseline, progressive, restart markers, greyscale), up to 16 at sharp chroma edges for
// 4:2:2 (another horizontal chroma upsampling).
// torchvision's tensor path, which effnet does not follow, is itself up to 1 level from the PIL path for
// resize, contrast, saturation and grayscale, 11 for hue, and moves a few pixels of a nearest rotation.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdlib>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "data/image.h"
#include "data/transforms.h"
#include "io/safetensors.h"
#include "tests/test_util.h"

namespace effnet::data {
namespace {

using test::error_of;

// Pixel (y, x) holds (y mod 256, x mod 256, 16 (y / 256) + x / 256): every pixel of a 4096 x 4096 image
// distinct, and its coordinates readable.
Image numbered(int64_t height, int64_t width) {
  Image image(height, width);
  for (int64_t y = 0; y < height; ++y) {
    for (int64_t x = 0; x < width; ++x) {
      uint8_t* p = image.at(y, x);
      p[0] = static_cast<uint8_t>(y % 256);
      p[1] = static_cast<uint8_t>(x % 256);
      p[2] = static_cast<uint8_t>(16 * (y / 256) + x / 256);
    }
  }
  return image;
}

std::vector<uint8_t> pixel(const Image& image, int64_t y, int64_t x) {
  return {image.at(y, x)[0], image.at(y, x)[1], image.at(y, x)[2]};
}

// A random image, fixed by the seed.
Image random_image(int64_t height, int64_t width, uint64_t seed) {
  SampleRandom random(seed, 0, 0);
  Image image(height, width);
  for (size_t i = 0; i < image.pixels.size(); i += 4) {
    const uint64_t word = random.below(uint64_t{1} << 32);
    for (size_t b = 0; b < 4 && i + b < image.pixels.size(); ++b)
      image.pixels[i + b] = static_cast<uint8_t>(word >> (8 * b));
  }
  return image;
}

// ---- single steps

TEST(Transforms, FlipMirrorsEachRow) {
  const Image image = numbered(3, 4);
  const Image flipped = flip_horizontal(image);
  for (int64_t y = 0; y < 3; ++y) {
    for (int64_t x = 0; x < 4; ++x) EXPECT_EQ(pixel(flipped, y, x), pixel(image, y, 3 - x));
  }
  EXPECT_EQ(flip_horizontal(flipped).pixels, image.pixels);
}

TEST(Transforms, CenterCropTakesTorchvisionsRows) {
  // The recipe: 384 x 320 out of 512 x 384 keeps rows 64..447 and columns 32..351.
  const Image image = numbered(512, 384);
  const Image crop = center_crop(image, 384, 320);
  ASSERT_EQ(crop.height, 384);
  ASSERT_EQ(crop.width, 320);
  EXPECT_EQ(pixel(crop, 0, 0), pixel(image, 64, 32));
  EXPECT_EQ(pixel(crop, 383, 319), pixel(image, 447, 351));
  EXPECT_EQ(pixel(crop, 100, 200), pixel(image, 164, 232));
  // Odd excess: round((size - crop) / 2) half to even: 1 -> 0, 3 -> 2, 5 -> 2, 7 -> 4.
  const Image small = numbered(12, 12);
  EXPECT_EQ(pixel(center_crop(small, 11, 9), 0, 0), pixel(small, 0, 2));
  EXPECT_EQ(pixel(center_crop(small, 7, 5), 0, 0), pixel(small, 2, 4));
  // Larger than the image: zero padding, (crop - size) // 2 before.
  const Image padded = center_crop(numbered(2, 3), 5, 4);
  EXPECT_EQ(pixel(padded, 0, 0), (std::vector<uint8_t>{0, 0, 0}));
  EXPECT_EQ(pixel(padded, 1, 0), pixel(numbered(2, 3), 0, 0));
  EXPECT_EQ(pixel(padded, 2, 2), pixel(numbered(2, 3), 1, 2));
  EXPECT_EQ(pixel(padded, 3, 3), (std::vector<uint8_t>{0, 0, 0}));
  EXPECT_EQ(pixel(padded, 4, 1), (std::vector<uint8_t>{0, 0, 0}));
}

TEST(Transforms, RotationByQuarterTurnsIsExact) {
  const std::array<uint8_t, 3> fill{1, 2, 3};
  const Image square = numbered(5, 5);
  const Image left = rotate(square, 90, fill);  // counter-clockwise: the right column becomes the top row
  for (int64_t y = 0; y < 5; ++y) {
    for (int64_t x = 0; x < 5; ++x) EXPECT_EQ(pixel(left, y, x), pixel(square, x, 4 - y));
  }
  EXPECT_EQ(rotate(square, -90, fill).pixels, rotate(square, 270, fill).pixels);
  EXPECT_EQ(rotate(rotate(square, 90, fill), -90, fill).pixels, square.pixels);
  const Image wide = numbered(4, 7);
  const Image half = rotate(wide, 180, fill);
  for (int64_t y = 0; y < 4; ++y) {
    for (int64_t x = 0; x < 7; ++x) EXPECT_EQ(pixel(half, y, x), pixel(wide, 3 - y, 6 - x));
  }
  EXPECT_EQ(rotate(wide, 360, fill).pixels, wide.pixels);
  EXPECT_EQ(rotate(wide, -540, fill).pixels, half.pixels);
  // 90 degrees of a non-square image keeps its size: the centre square turns, the rest is fill.
  const Image tall = numbered(6, 4);
  const Image turned = rotate(tall, 90, fill);
  ASSERT_EQ(turned.height, 6);
  EXPECT_EQ(pixel(turned, 0, 0), (std::vector<uint8_t>{1, 2, 3}));
  EXPECT_EQ(pixel(turned, 1, 0), pixel(tall, 1, 3));
  EXPECT_EQ(pixel(turned, 4, 3), pixel(tall, 4, 0));
}

TEST(Transforms, SmallRotationFillsOnlyTheCorners) {
  const std::array<uint8_t, 3> fill{255, 0, 255};
  const Image image(64, 64, 100);
  for (double degrees : {10.0, -10.0}) {
    const Image rotated = rotate(image, degrees, fill);
    int64_t filled = 0;
    for (int64_t y = 0; y < 64; ++y) {
      for (int64_t x = 0; x < 64; ++x) {
        const bool is_fill = pixel(rotated, y, x) == std::vector<uint8_t>{255, 0, 255};
        if (!is_fill) {
          EXPECT_EQ(pixel(rotated, y, x), (std::vector<uint8_t>{100, 100, 100}));
          continue;
        }
        ++filled;
        const double dy = static_cast<double>(y) + 0.5 - 32, dx = static_cast<double>(x) + 0.5 - 32;
        EXPECT_GT(std::hypot(dx, dy), 31.0) << "fill inside the inscribed circle at " << y << ", " << x;
      }
    }
    EXPECT_GT(filled, 0);
    for (auto [y, x] : {std::pair{0, 0}, {0, 63}, {63, 0}, {63, 63}}) {
      EXPECT_EQ(pixel(rotated, y, x), (std::vector<uint8_t>{255, 0, 255}))
          << degrees << " at " << y << ", " << x;
    }
  }
}

TEST(Transforms, ResizeKeepsConstantsAndAveragesWhenShrinking) {
  const Image grey(37, 23, 77);
  for (auto [h, w] : {std::pair<int64_t, int64_t>{10, 7}, {37, 50}, {91, 12}, {1, 1}}) {
    const Image resized = resize_bilinear(grey, h, w);
    ASSERT_EQ(resized.height, h);
    ASSERT_EQ(resized.width, w);
    for (uint8_t v : resized.pixels) ASSERT_EQ(v, 77) << h << "x" << w;
  }
  // A one-pixel checkerboard shrunk (antialiased) averages to grey: 2 x 2 -> 1 x 1 is (0 + 255) / 2 rounded,
  // 128; 8 x 8 -> 2 x 2 or 4 x 4 is near it (the triangle's tails weigh the two levels a little unequally).
  const auto checkerboard = [](int64_t n) {
    Image board(n, n);
    for (int64_t y = 0; y < n; ++y) {
      for (int64_t x = 0; x < n; ++x)
        std::fill_n(board.at(y, x), 3, static_cast<uint8_t>((x + y) % 2 ? 255 : 0));
    }
    return board;
  };
  EXPECT_EQ(resize_bilinear(checkerboard(2), 1, 1).pixels, std::vector<uint8_t>(3, 128));
  EXPECT_EQ(resize_bilinear(checkerboard(8), 1, 1).pixels, std::vector<uint8_t>(3, 128));
  for (int64_t size : {2, 4}) {
    for (uint8_t v : resize_bilinear(checkerboard(8), size, size).pixels) EXPECT_NEAR(v, 128, 3) << size;
  }
  // Enlarging keeps the corner pixels (half-pixel centres: the outer output pixels see one input pixel).
  const Image corners = numbered(2, 3);
  const Image big = resize_bilinear(corners, 8, 12);
  EXPECT_EQ(pixel(big, 0, 0), pixel(corners, 0, 0));
  EXPECT_EQ(pixel(big, 0, 11), pixel(corners, 0, 2));
  EXPECT_EQ(pixel(big, 7, 0), pixel(corners, 1, 0));
  EXPECT_EQ(pixel(big, 7, 11), pixel(corners, 1, 2));
  EXPECT_EQ(resize_bilinear(corners, 2, 3).pixels, corners.pixels);
  EXPECT_NE(error_of([&] { resize_bilinear(corners, 0, 3); }).find("positive"), std::string::npos);
}

TEST(Transforms, GrayscaleUsesPilLuma) {
  Image image(1, 4);
  const uint8_t values[12] = {255, 0, 0, 0, 255, 0, 0, 0, 255, 10, 20, 30};
  std::copy(values, values + 12, image.pixels.begin());
  // round(0.299 R + 0.587 G + 0.114 B) in PIL's fixed point: 76, 150, 29, 18.
  EXPECT_EQ(to_grayscale(image).pixels,
            (std::vector<uint8_t>{76, 76, 76, 150, 150, 150, 29, 29, 29, 18, 18, 18}));
}

TEST(Transforms, NormalizationIsChannelMajor) {
  Image image(1, 2);
  const uint8_t values[6] = {0, 255, 51, 255, 0, 102};
  std::copy(values, values + 6, image.pixels.begin());
  TransformConfig config;
  float out[6];
  to_normalized_chw(image, config, out);
  // R of both pixels, then G, then B.
  const float expected[6] = {(0 - 0.485f) / 0.229f, (1 - 0.485f) / 0.229f,    (1 - 0.456f) / 0.224f,
                             (0 - 0.456f) / 0.224f, (0.2f - 0.406f) / 0.225f, (0.4f - 0.406f) / 0.225f};
  for (int i = 0; i < 6; ++i) EXPECT_NEAR(out[i], expected[i], 1e-6) << i;
  EXPECT_NEAR(out[0], -2.1179039, 1e-6);
  EXPECT_NEAR(out[1], 2.2489083, 1e-6);
}

TEST(Transforms, EqualizeSpreadsTwoLevels) {
  // 512 pixels of 50 and 512 of 200: step = (1024 - 512) // 255 = 2, so 50 -> (1 // 2) = 0 and
  // 200 -> (1 + 512) // 2 = 256, clipped to 255.
  Image image(32, 32, 50);
  std::fill(image.pixels.begin() + 512 * 3, image.pixels.end(), 200);
  const Image equalized = equalize(image);
  EXPECT_EQ(pixel(equalized, 0, 0), (std::vector<uint8_t>{0, 0, 0}));
  EXPECT_EQ(pixel(equalized, 31, 31), (std::vector<uint8_t>{255, 255, 255}));
  const Image flat(8, 8, 90);  // one level: unchanged
  EXPECT_EQ(equalize(flat).pixels, flat.pixels);
}

TEST(Transforms, JitterAdjustmentsByHand) {
  Image image(1, 2);
  const uint8_t values[6] = {100, 50, 200, 10, 20, 30};
  std::copy(values, values + 6, image.pixels.begin());
  EXPECT_EQ(adjust_brightness(image, 1.0).pixels, image.pixels);
  EXPECT_EQ(adjust_contrast(image, 1.0).pixels, image.pixels);
  EXPECT_EQ(adjust_saturation(image, 1.0).pixels, image.pixels);
  // Brightness 1.5 (truncated, clipped): 150, 75, 255 | 15, 30, 45.
  EXPECT_EQ(adjust_brightness(image, 1.5).pixels, (std::vector<uint8_t>{150, 75, 255, 15, 30, 45}));
  // Contrast 0: the rounded mean of the lumas 81 and 18, i.e. 50 (49.5 rounds up).
  EXPECT_EQ(adjust_contrast(image, 0.0).pixels, std::vector<uint8_t>(6, 50));
  // Saturation 0: grayscale.
  EXPECT_EQ(adjust_saturation(image, 0.0).pixels, to_grayscale(image).pixels);
  // Hue: half a turn takes a pure red to about cyan (PIL's 8-bit hue moves by int(0.5 * 255) = 127 of 256,
  // so (0, 255, 252) and, backwards, (0, 246, 255)); a third of a turn takes it to green; grey has no hue.
  Image red(1, 2);
  const uint8_t reds[6] = {255, 0, 0, 128, 128, 128};
  std::copy(reds, reds + 6, red.pixels.begin());
  EXPECT_EQ(adjust_hue(red, 0.5).pixels, (std::vector<uint8_t>{0, 255, 252, 128, 128, 128}));
  EXPECT_EQ(adjust_hue(red, -0.5).pixels, (std::vector<uint8_t>{0, 246, 255, 128, 128, 128}));
  EXPECT_EQ(adjust_hue(red, 1.0 / 3).pixels, (std::vector<uint8_t>{0, 255, 0, 128, 128, 128}));
  EXPECT_NE(error_of([&] { adjust_hue(red, 0.6); }).find("[-0.5, 0.5]"), std::string::npos);
}

// ---- parity with torchvision

const safetensors::File& fixtures() {
  static const safetensors::File file =
      safetensors::load(std::string(EFFNET_SOURCE_DIR) + "/tests/fixtures/transform_fixtures.safetensors");
  return file;
}

Image fixture_image(const Tensor& t) {
  EFFNET_CHECK(t.dim() == 3 && t.shape()[2] == 3, "expected an H x W x 3 image, got ", t.str());
  Image image(t.shape()[0], t.shape()[1]);
  const float* v = t.data<float>();
  for (size_t i = 0; i < image.pixels.size(); ++i) image.pixels[i] = static_cast<uint8_t>(v[i]);
  return image;
}

// "m7p5" -> -7.5
double parameter(std::string text) {
  for (char& c : text) c = c == 'm' ? '-' : c == 'p' ? '.' : c;
  return std::stod(text);
}

// What effnet computes for the fixture case `op_args` (e.g. "resize_17x13") of `source`.
Image effnet_result(const Image& source, const std::string& op_args) {
  const size_t cut = op_args.rfind('_');
  const std::string op = cut == std::string::npos ? op_args : op_args.substr(0, cut);
  const std::string args = cut == std::string::npos ? "" : op_args.substr(cut + 1);
  const auto size = [&] {
    const size_t x = args.find('x');
    return std::pair{std::stoll(args.substr(0, x)), std::stoll(args.substr(x + 1))};
  };
  if (op == "resize") return resize_bilinear(source, size().first, size().second);
  if (op == "center_crop") return center_crop(source, size().first, size().second);
  if (op == "rotate") return rotate(source, parameter(args), {255, 128, 0});
  if (op_args == "hflip") return flip_horizontal(source);
  if (op_args == "grayscale") return to_grayscale(source);
  if (op_args == "equalize") return equalize(source);
  if (op == "brightness") return adjust_brightness(source, parameter(args));
  if (op == "contrast") return adjust_contrast(source, parameter(args));
  if (op == "saturation") return adjust_saturation(source, parameter(args));
  if (op == "hue") return adjust_hue(source, parameter(args));
  EFFNET_FAIL("no effnet transform for the fixture case ", op_args);
}

TEST(Transforms, MatchTorchvisionOnPilImages) {
  int64_t compared = 0;
  for (const auto& [name, tensor] : fixtures().tensors) {
    const size_t dot = name.find('.');
    if (dot == std::string::npos) continue;
    const std::string image_name = name.substr(0, dot), op_args = name.substr(dot + 1);
    if (op_args == "normalized" || op_args.starts_with("jpeg")) continue;
    const Image source = fixture_image(fixtures().find(image_name));
    const Image want = fixture_image(tensor), got = effnet_result(source, op_args);
    ASSERT_EQ(got.height, want.height) << name;
    ASSERT_EQ(got.width, want.width) << name;
    int64_t differing = 0;
    for (size_t i = 0; i < got.pixels.size(); ++i) differing += got.pixels[i] != want.pixels[i];
    EXPECT_EQ(differing, 0) << name << ": " << differing << " of " << got.pixels.size() << " values differ";
    ++compared;
  }
  EXPECT_EQ(compared, 45);
}

TEST(Transforms, NormalizationMatchesTorchvision) {
  const Image photo = fixture_image(fixtures().find("photo"));
  const Tensor want = fixtures().find("photo.normalized");
  ASSERT_EQ(want.numel(), static_cast<int64_t>(photo.pixels.size()));
  std::vector<float> got(photo.pixels.size());
  to_normalized_chw(photo, TransformConfig{}, got.data());
  const float* w = want.data<float>();
  for (size_t i = 0; i < got.size(); ++i) ASSERT_EQ(got[i], w[i]) << i;
}

TEST(Transforms, JpegDecodingIsCloseToPil) {
  for (const std::string suffix : {"", "_progressive"}) {
    const Image got =
        decode_image(std::string(EFFNET_SOURCE_DIR) + "/tests/fixtures/transform_photo" + suffix + ".jpg");
    const Image want = fixture_image(fixtures().find("photo.jpeg" + suffix));
    ASSERT_EQ(got.height, want.height);
    ASSERT_EQ(got.width, want.width);
    int worst = 0;
    for (size_t i = 0; i < got.pixels.size(); ++i)
      worst = std::max(worst, std::abs(got.pixels[i] - want.pixels[i]));
    EXPECT_LE(worst, 3) << suffix;
  }
}

// ---- randomness and the pipelines

TEST(Transforms, SampleRandomStreamsAreDistinctAndReproducible) {
  std::set<std::vector<uint64_t>> streams;
  for (uint64_t seed : {0, 1}) {
    for (uint64_t epoch : {0, 1, 7}) {
      for (uint64_t index : {0, 1, 2, 255, 256, 18899}) {
        SampleRandom random(seed, epoch, index), again(seed, epoch, index);
        std::vector<uint64_t> draws;
        for (int i = 0; i < 6; ++i) {
          draws.push_back(random.below(uint64_t{1} << 62));
          EXPECT_EQ(again.below(uint64_t{1} << 62), draws.back());
        }
        EXPECT_TRUE(streams.insert(draws).second) << seed << " " << epoch << " " << index;
      }
    }
  }
  double total = 0;
  int hits = 0;
  for (uint64_t i = 0; i < 4000; ++i) {
    SampleRandom random(3, 4, i);
    const double u = random.uniform();
    ASSERT_GE(u, 0.0);
    ASSERT_LT(u, 1.0);
    total += u;
    const double v = random.uniform(-2.0, 3.0);
    ASSERT_GE(v, -2.0);
    ASSERT_LT(v, 3.0);
    hits += random.bernoulli(0.25);
    ASSERT_LT(random.below(6), 6u);
  }
  EXPECT_NEAR(total / 4000, 0.5, 0.02);
  EXPECT_NEAR(hits / 4000.0, 0.25, 0.03);
  EXPECT_EQ(SampleRandom(1, 2, 3).uniform(5.0, 5.0), 5.0);
  EXPECT_NE(error_of([] { SampleRandom(0, uint64_t{1} << 24, 0); }).find("epoch"), std::string::npos);
  EXPECT_NE(error_of([] { SampleRandom(0, 0, uint64_t{1} << 32); }).find("index"), std::string::npos);
  EXPECT_NE(error_of([] {
              SampleRandom r(0, 0, 0);
              for (int i = 0; i < 600; ++i) r.uniform();
            }).find("1024"),
            std::string::npos);
}

TEST(Transforms, ZeroRangesAreTheIdentity) {
  const Image image = random_image(20, 30, 1);
  TransformConfig config;
  EXPECT_FALSE(config.has_random());
  SampleRandom random(1, 2, 3);
  EXPECT_EQ(apply_random(image, config, random).pixels, image.pixels);
  EXPECT_EQ(apply_deterministic(image, config).pixels, image.pixels);
}

TEST(Transforms, RandomAugmentationIsAFunctionOfSeedEpochAndIndex) {
  const Image image = random_image(24, 20, 2);
  TransformConfig config;
  config.rotation_degrees = 10;
  config.hflip = 0.5;
  config.brightness = config.contrast = config.saturation = 0.3;
  config.hue = 0.1;
  config.equalize = 0.3;
  config.grayscale = 0.2;
  EXPECT_TRUE(config.has_random());
  const auto augment = [&](const TransformConfig& c, uint64_t seed, uint64_t epoch, uint64_t index) {
    SampleRandom random(seed, epoch, index);
    return apply_random(image, c, random).pixels;
  };
  EXPECT_EQ(augment(config, 5, 1, 42), augment(config, 5, 1, 42));
  EXPECT_NE(augment(config, 5, 1, 42), augment(config, 5, 1, 43));
  EXPECT_NE(augment(config, 5, 1, 42), augment(config, 5, 2, 42));
  EXPECT_NE(augment(config, 5, 1, 42), augment(config, 6, 1, 42));
  // Fixed draws: switching grayscale to always changes nothing but the grayscale step.
  TransformConfig gray = config;
  gray.grayscale = 1;
  gray.equalize = 0;
  TransformConfig colour = config;
  colour.grayscale = 0;
  colour.equalize = 0;
  for (uint64_t index = 0; index < 20; ++index) {
    Image coloured(24, 20);
    coloured.pixels = augment(colour, 5, 1, index);
    EXPECT_EQ(augment(gray, 5, 1, index), to_grayscale(coloured).pixels) << index;
  }
}

TEST(Transforms, DeterministicPartResizesThenCrops) {
  const Image image = numbered(64, 48);
  TransformConfig config;
  config.resize_h = 32;
  config.resize_w = 24;
  config.crop_h = 20;
  config.crop_w = 16;
  EXPECT_EQ(config.out_height(64), 20);
  EXPECT_EQ(config.out_width(48), 16);
  EXPECT_EQ(apply_deterministic(image, config).pixels,
            center_crop(resize_bilinear(image, 32, 24), 20, 16).pixels);
  config.crop_h = config.crop_w = 0;
  EXPECT_EQ(config.out_height(64), 32);
  EXPECT_EQ(config.out_width(48), 24);
  config.resize_h = config.resize_w = 0;
  EXPECT_EQ(config.out_height(64), 64);
  config.crop_h = 40;  // one axis only
  EXPECT_EQ(apply_deterministic(image, config).pixels, center_crop(image, 40, 48).pixels);
}

TEST(Transforms, ConfigErrorsNameTheField) {
  const Image image(4, 4);
  const auto problem = [&](auto change) {
    TransformConfig config;
    change(config);
    return error_of([&] { apply_deterministic(image, config); });
  };
  EXPECT_NE(problem([](TransformConfig& c) { c.crop_h = -1; }).find("crop_h"), std::string::npos);
  EXPECT_NE(problem([](TransformConfig& c) { c.hflip = 1.5; }).find("hflip"), std::string::npos);
  EXPECT_NE(problem([](TransformConfig& c) { c.hue = 0.7; }).find("hue"), std::string::npos);
  EXPECT_NE(problem([](TransformConfig& c) { c.brightness = -0.1; }).find("brightness"), std::string::npos);
  EXPECT_NE(problem([](TransformConfig& c) { c.std[1] = 0; }).find("std"), std::string::npos);
  EXPECT_NE(problem([](TransformConfig& c) { c.rotation_degrees = NAN; }).find("rotation_degrees"),
            std::string::npos);
}

}  // namespace
}  // namespace effnet::data
