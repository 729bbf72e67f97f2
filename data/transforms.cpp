// The image transforms of the training pipeline, on 8-bit HWC images. Each step reproduces what the recipe's
// torchvision pipeline does to a PIL image, down to PIL's integer arithmetic, so that an effnet run sees the
// pixels a PyTorch run would (tools/reference/transform_check.py writes the fixture that pins this):
//
//   resize       PIL's BILINEAR resample: separable triangle filter, support widened by the shrink factor
//                (antialiasing), coefficients normalised and rounded to 22-bit fixed point, horizontal pass
//                first, rounded to 8 bits between the passes; enlarging is bilinear with half-pixel centres.
//                That is Pillow <= 12 exactly; Pillow 13 runs the vertical pass first for some size pairs
//                (e.g. height shrunk, width enlarged), 1 level away on a fraction of the values
//   center crop  torchvision's offsets: round((size - crop) / 2), half to even as Python's round; a crop
//                larger than the image pads with 0, (crop - size) // 2 before
//   rotate       PIL's Image.rotate(angle, NEAREST, fillcolor): exact transposes for 180 (and 90 / 270 on a
//                square), otherwise its 16.16 fixed-point affine walk about (w / 2, h / 2)
//   jitter       ImageEnhance's blends (brightness towards black, contrast towards the grayscale mean,
//                saturation towards grayscale) in float, truncated; hue through PIL's 8-bit HSV
//   grayscale    PIL's convert("L"): (19595 R + 38470 G + 7471 B + 2^15) >> 16
//   equalize     PIL's ImageOps.equalize, per channel
//   normalise    float32 (x / 255 - mean) / std, as ToTensor + Normalize
//
// apply_random draws, for every sample and whatever the config, the same nine numbers in this order: the
// angle, the flip, the jitter order (one of 24), the brightness, contrast, saturation and hue factors, the
// grayscale and the equalize choices. Turning one option on or off therefore changes nothing else about a
// sample. The jitter factors follow ColorJitter: U[max(0, 1 - b), 1 + b] (b = 0: not applied), hue U[-h, h].
//
// Exactness assumes no FMA contraction of the double/float expressions (effnet builds for baseline x86-64;
// a build with -mfma would need -ffp-contract=off here to stay bit-exact with PIL).
#include "data/transforms.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <numbers>
#include <vector>

#include "tensor/philox.h"

namespace effnet::data {
namespace {

inline uint8_t clip8(int64_t v) { return static_cast<uint8_t>(v < 0 ? 0 : v > 255 ? 255 : v); }

// PIL's 8-bit luma (ITU-R 601-2).
inline uint8_t luma(const uint8_t* p) {
  return static_cast<uint8_t>((p[0] * 19595 + p[1] * 38470 + p[2] * 7471 + 0x8000) >> 16);
}

void check_image(const char* op, const Image& image) {
  EFFNET_CHECK(image.height >= 0 && image.width >= 0 &&
                   image.pixels.size() == static_cast<size_t>(image.height * image.width * 3),
               op, ": a ", image.height, "x", image.width, " image needs ", image.height * image.width * 3,
               " bytes, it has ", image.pixels.size());
}

// Applies one 256-entry table per channel value.
Image map_values(const Image& image, const uint8_t (&table)[256]) {
  Image out(image.height, image.width);
  for (size_t i = 0; i < image.pixels.size(); ++i) out.pixels[i] = table[image.pixels[i]];
  return out;
}

// ---- resize

constexpr int kPrecision = 22;  // PIL's PRECISION_BITS (32 - 8 - 2)

// Per output pixel: the first input pixel, the number of taps and their fixed-point weights.
struct Taps {
  int64_t stride = 0;  // weights per output pixel
  std::vector<int64_t> first, count;
  std::vector<int32_t> weights;
};

Taps bilinear_taps(int64_t in_size, int64_t out_size) {
  const double scale = static_cast<double>(in_size) / static_cast<double>(out_size);
  const double filter_scale = std::max(scale, 1.0);
  const double support = filter_scale;  // the triangle's half-width 1, widened when shrinking
  const double inverse = 1.0 / filter_scale;
  Taps taps;
  taps.stride = static_cast<int64_t>(std::ceil(support)) * 2 + 1;
  taps.first.resize(out_size);
  taps.count.resize(out_size);
  taps.weights.assign(static_cast<size_t>(out_size * taps.stride), 0);
  std::vector<double> w(taps.stride);
  for (int64_t o = 0; o < out_size; ++o) {
    const double center = (static_cast<double>(o) + 0.5) * scale;
    const int64_t lo = std::max<int64_t>(0, static_cast<int64_t>(center - support + 0.5));
    const int64_t hi = std::min<int64_t>(in_size, static_cast<int64_t>(center + support + 0.5));
    double total = 0;
    for (int64_t i = 0; i < hi - lo; ++i) {
      const double x = std::abs((static_cast<double>(i + lo) - center + 0.5) * inverse);
      w[i] = x < 1.0 ? 1.0 - x : 0.0;
      total += w[i];
    }
    int32_t* fixed = &taps.weights[static_cast<size_t>(o * taps.stride)];
    for (int64_t i = 0; i < hi - lo; ++i) {
      const double normalised = total != 0.0 ? w[i] / total : w[i];
      fixed[i] = static_cast<int32_t>(0.5 + normalised * (1 << kPrecision));
    }
    taps.first[o] = lo;
    taps.count[o] = hi - lo;
  }
  return taps;
}

Image resample_horizontal(const Image& image, int64_t width) {
  const Taps taps = bilinear_taps(image.width, width);
  Image out(image.height, width);
  for (int64_t y = 0; y < image.height; ++y) {
    const uint8_t* row = image.at(y, 0);
    uint8_t* o = out.at(y, 0);
    for (int64_t x = 0; x < width; ++x, o += 3) {
      const int32_t* k = &taps.weights[static_cast<size_t>(x * taps.stride)];
      const uint8_t* p = row + taps.first[x] * 3;
      int32_t s0 = 1 << (kPrecision - 1), s1 = s0, s2 = s0;
      for (int64_t i = 0; i < taps.count[x]; ++i, p += 3) {
        s0 += p[0] * k[i];
        s1 += p[1] * k[i];
        s2 += p[2] * k[i];
      }
      o[0] = clip8(s0 >> kPrecision);
      o[1] = clip8(s1 >> kPrecision);
      o[2] = clip8(s2 >> kPrecision);
    }
  }
  return out;
}

// Row by row: each output row sums whole input rows, so the inner loop runs along memory.
Image resample_vertical(const Image& image, int64_t height) {
  const Taps taps = bilinear_taps(image.height, height);
  const size_t row_bytes = static_cast<size_t>(image.width * 3);
  Image out(height, image.width);
  std::vector<int32_t> sum(row_bytes);
  for (int64_t y = 0; y < height; ++y) {
    std::fill(sum.begin(), sum.end(), 1 << (kPrecision - 1));
    const int32_t* k = &taps.weights[static_cast<size_t>(y * taps.stride)];
    for (int64_t i = 0; i < taps.count[y]; ++i) {
      const uint8_t* row = image.at(taps.first[y] + i, 0);
      const int32_t weight = k[i];
      for (size_t j = 0; j < row_bytes; ++j) sum[j] += row[j] * weight;
    }
    uint8_t* o = out.at(y, 0);
    for (size_t j = 0; j < row_bytes; ++j) o[j] = clip8(sum[j] >> kPrecision);
  }
  return out;
}

// ---- crop, rotation

// torchvision's center_crop offset along one axis (negative: padding before the image).
int64_t crop_offset(int64_t size, int64_t crop) {
  if (crop > size) return -((crop - size) / 2);
  const int64_t excess = size - crop, half = excess / 2;
  return excess % 2 == 1 && half % 2 == 1 ? half + 1 : half;  // round(half + 0.5) to even
}

// Python's round(v, 15), as PIL applies it to the rotation matrix: correctly rounded through decimal text.
double round15(double v) {
  char text[64];
  std::snprintf(text, sizeof text, "%.15f", v);
  return std::strtod(text, nullptr);
}

Image rotate_180(const Image& image) {
  Image out(image.height, image.width);
  const size_t n = image.pixels.size();
  for (size_t i = 0; i < n; i += 3) std::memcpy(&out.pixels[n - 3 - i], &image.pixels[i], 3);
  return out;
}

// A square image turned by 90 degrees (counter-clockwise) or 270.
Image rotate_quarter(const Image& image, bool counter_clockwise) {
  const int64_t n = image.height;
  Image out(n, n);
  for (int64_t y = 0; y < n; ++y) {
    for (int64_t x = 0; x < n; ++x) {
      const uint8_t* p = counter_clockwise ? image.at(x, n - 1 - y) : image.at(n - 1 - x, y);
      std::memcpy(out.at(y, x), p, 3);
    }
  }
  return out;
}

// ---- colour

// PIL's Image.blend(degenerate, image, alpha): degenerate + alpha (value - degenerate) in float, clipped to
// [0, 255] and truncated.
inline uint8_t blend(int degenerate, int value, float alpha) {
  const float v = static_cast<float>(degenerate) + alpha * static_cast<float>(value - degenerate);
  return v <= 0.0f ? 0 : v >= 255.0f ? 255 : static_cast<uint8_t>(v);
}

Image blend_towards(const Image& image, int degenerate, double factor) {
  uint8_t table[256];
  for (int v = 0; v < 256; ++v) table[v] = blend(degenerate, v, static_cast<float>(factor));
  return map_values(image, table);
}

// C's round() of a value in [0, 255], clipped: without the libm calls, which dominate adjust_hue.
inline uint8_t round_half_up(double x) {
  const int i = static_cast<int>(x);
  return clip8(x - i >= 0.5 ? i + 1 : i);
}

// PIL's RGB -> HSV -> RGB conversions (libImaging/Convert.c, "following colorsys.py"), with the hue byte
// moved by `shift` (mod 256) in between; the float / double mix is PIL's.
void shift_hue(const uint8_t* in, uint8_t* out, uint8_t shift) {
  const int r = in[0], g = in[1], b = in[2];
  const int maxc = std::max(r, std::max(g, b)), minc = std::min(r, std::min(g, b));
  if (maxc == minc) {  // saturation 0: HSV -> RGB gives (v, v, v) whatever the hue
    std::memcpy(out, in, 3);
    return;
  }
  const float range = static_cast<float>(maxc - minc);
  const float s = range / static_cast<float>(maxc);
  const auto distance = [&](int c) { return static_cast<float>(maxc - c) / range; };  // rc, gc, bc
  float h;
  if (r == maxc) h = distance(b) - distance(g);
  else if (g == maxc) h = static_cast<float>(2.0 + distance(r) - distance(b));
  else h = static_cast<float>(4.0 + distance(g) - distance(r));
  const double turns = h / 6.0 + 1.0;  // in [5/6, 11/6): fmod(turns, 1) is one exact subtraction
  h = static_cast<float>(turns >= 1.0 ? turns - 1.0 : turns);
  const uint8_t hue = static_cast<uint8_t>(clip8(static_cast<int>(h * 255.0)) + shift);
  const uint8_t sat = clip8(static_cast<int>(s * 255.0));
  const uint8_t v = static_cast<uint8_t>(maxc);
  if (sat == 0) {
    out[0] = out[1] = out[2] = v;
    return;
  }
  const double h6 = static_cast<float>(hue) * 6.0 / 255.0;
  const int i = static_cast<int>(h6);  // floor: h6 >= 0
  const float f = static_cast<float>(h6 - static_cast<float>(i));
  const float fs = static_cast<float>(static_cast<float>(sat) / 255.0);
  const uint8_t p = round_half_up(static_cast<float>(v) * (1.0 - fs));
  const uint8_t q = round_half_up(static_cast<float>(v) * (1.0 - fs * f));
  const uint8_t t = round_half_up(static_cast<float>(v) * (1.0 - fs * (1.0 - f)));
  const uint8_t rgb[6][3] = {{v, t, p}, {q, v, p}, {p, v, t}, {p, q, v}, {t, p, v}, {v, p, q}};
  std::memcpy(out, rgb[i % 6], 3);
}

}  // namespace

// ---- SampleRandom

SampleRandom::SampleRandom(uint64_t seed, uint64_t epoch, uint64_t index)
    : key_(seed ^ kAugmentKey), stream_(epoch << 40 | index << 8) {
  EFFNET_CHECK(epoch < (uint64_t{1} << 24), "SampleRandom: epoch ", epoch, " is not below 2^24");
  EFFNET_CHECK(index < (uint64_t{1} << 32), "SampleRandom: sample index ", index, " is not below 2^32");
}

uint32_t SampleRandom::next_word() {
  if (used_ == 4) {
    EFFNET_CHECK(counter_ < 256, "SampleRandom: more than 1024 random words drawn for one sample");
    const philox::Words block = philox::generate(key_, stream_ | counter_++);
    std::copy(block.w, block.w + 4, words_);
    used_ = 0;
  }
  return words_[used_++];
}

double SampleRandom::uniform() {
  const uint32_t w0 = next_word();
  const uint32_t w1 = next_word();
  return philox::uniform_double(w0, w1);
}

double SampleRandom::uniform(double low, double high) {
  const double u = uniform();  // drawn even for an empty range, so later draws keep their place
  if (!(low < high)) return low;
  const double v = low + (high - low) * u;
  return v < high ? v : std::nextafter(high, low);
}

bool SampleRandom::bernoulli(double p) { return uniform() < p; }

uint64_t SampleRandom::below(uint64_t n) {
  EFFNET_CHECK(n > 0, "SampleRandom::below: n must be positive");
  const uint64_t limit = UINT64_MAX - UINT64_MAX % n;  // a multiple of n: r % n is exactly uniform below it
  while (true) {
    const uint64_t high = next_word();
    const uint64_t r = high << 32 | next_word();
    if (r < limit) return r % n;
  }
}

// ---- config

int64_t TransformConfig::out_height(int64_t source_height) const {
  return crop_h > 0 ? crop_h : resize_h > 0 ? resize_h : source_height;
}

int64_t TransformConfig::out_width(int64_t source_width) const {
  return crop_w > 0 ? crop_w : resize_w > 0 ? resize_w : source_width;
}

bool TransformConfig::has_random() const {
  return rotation_degrees > 0 || hflip > 0 || brightness > 0 || contrast > 0 || saturation > 0 || hue > 0 ||
         grayscale > 0 || equalize > 0;
}

void TransformConfig::validate() const {
  const auto non_negative = [](const char* name, double v) {
    EFFNET_CHECK(v >= 0 && std::isfinite(v), "transforms: ", name, " must be >= 0, got ", v);
  };
  const auto probability = [](const char* name, double p) {
    EFFNET_CHECK(p >= 0 && p <= 1, "transforms: ", name, " is a probability, got ", p);
  };
  non_negative("resize_h", static_cast<double>(resize_h));
  non_negative("resize_w", static_cast<double>(resize_w));
  non_negative("crop_h", static_cast<double>(crop_h));
  non_negative("crop_w", static_cast<double>(crop_w));
  non_negative("rotation_degrees", rotation_degrees);
  non_negative("brightness", brightness);
  non_negative("contrast", contrast);
  non_negative("saturation", saturation);
  EFFNET_CHECK(hue >= 0 && hue <= 0.5, "transforms: hue must be in [0, 0.5], got ", hue);
  probability("hflip", hflip);
  probability("grayscale", grayscale);
  probability("equalize", equalize);
  for (int c = 0; c < 3; ++c) {
    EFFNET_CHECK(std[c] != 0 && std::isfinite(std[c]) && std::isfinite(mean[c]), "transforms: channel ", c,
                 " needs a finite mean and a non-zero std, got ", mean[c], " and ", std[c]);
  }
}

// ---- pipelines

Image apply_deterministic(const Image& image, const TransformConfig& config) {
  config.validate();
  const int64_t resize_h = config.resize_h > 0 ? config.resize_h : image.height;
  const int64_t resize_w = config.resize_w > 0 ? config.resize_w : image.width;
  Image out = resize_bilinear(image, resize_h, resize_w);
  const int64_t crop_h = config.crop_h > 0 ? config.crop_h : out.height;
  const int64_t crop_w = config.crop_w > 0 ? config.crop_w : out.width;
  if (crop_h != out.height || crop_w != out.width) out = center_crop(out, crop_h, crop_w);
  return out;
}

Image apply_random(const Image& image, const TransformConfig& config, SampleRandom& random) {
  config.validate();
  const double angle = random.uniform(-config.rotation_degrees, config.rotation_degrees);
  const bool flip = random.bernoulli(config.hflip);
  uint64_t order = random.below(24);
  double draws[4];  // brightness, contrast, saturation, hue
  for (double& u : draws) u = random.uniform();
  const bool gray = random.bernoulli(config.grayscale);
  const bool equal = random.bernoulli(config.equalize);

  Image out = config.rotation_degrees > 0 ? rotate(image, angle, config.fill) : image;
  if (flip) out = flip_horizontal(out);
  // The permutation numbered `order` (a Lehmer code), like torchvision's randperm(4).
  int remaining[4] = {0, 1, 2, 3};
  for (int left = 4; left > 0; --left) {
    const int pick = static_cast<int>(order % left);
    order /= left;
    const int step = remaining[pick];
    std::copy(remaining + pick + 1, remaining + left, remaining + pick);
    const double range[4] = {config.brightness, config.contrast, config.saturation, config.hue};
    const double r = range[step];
    if (r <= 0) continue;
    const double lo = step == 3 ? -r : std::max(0.0, 1.0 - r), hi = step == 3 ? r : 1.0 + r;
    const double factor = lo + (hi - lo) * draws[step];
    switch (step) {
      case 0: out = adjust_brightness(out, factor); break;
      case 1: out = adjust_contrast(out, factor); break;
      case 2: out = adjust_saturation(out, factor); break;
      default: out = adjust_hue(out, factor); break;
    }
  }
  if (gray) out = to_grayscale(out);
  if (equal) out = equalize(out);
  return out;
}

void to_normalized_chw(const Image& image, const TransformConfig& config, float* out) {
  check_image("to_normalized_chw", image);
  float table[3][256];
  for (int c = 0; c < 3; ++c) {
    for (int v = 0; v < 256; ++v)
      table[c][v] = (static_cast<float>(v) / 255.0f - config.mean[c]) / config.std[c];
  }
  const size_t plane = static_cast<size_t>(image.height * image.width);
  float* r = out;
  float* g = out + plane;
  float* b = out + 2 * plane;
  const uint8_t* p = image.pixels.data();
  for (size_t i = 0; i < plane; ++i, p += 3) {
    r[i] = table[0][p[0]];
    g[i] = table[1][p[1]];
    b[i] = table[2][p[2]];
  }
}

// ---- single steps

Image resize_bilinear(const Image& image, int64_t height, int64_t width) {
  check_image("resize_bilinear", image);
  EFFNET_CHECK(height > 0 && width > 0, "resize_bilinear: the size must be positive, got ", height, "x",
               width);
  EFFNET_CHECK(image.height > 0 && image.width > 0, "resize_bilinear: cannot resize an empty image");
  if (width == image.width) return height == image.height ? image : resample_vertical(image, height);
  Image horizontal = resample_horizontal(image, width);
  return height == image.height ? horizontal : resample_vertical(horizontal, height);
}

Image center_crop(const Image& image, int64_t height, int64_t width) {
  check_image("center_crop", image);
  EFFNET_CHECK(height > 0 && width > 0, "center_crop: the size must be positive, got ", height, "x", width);
  const int64_t top = crop_offset(image.height, height), left = crop_offset(image.width, width);
  Image out(height, width);  // zeros where a larger crop pads
  const int64_t x0 = std::max<int64_t>(0, -left), x1 = std::min(width, image.width - left);
  for (int64_t y = 0; y < height; ++y) {
    const int64_t source_y = y + top;
    if (source_y < 0 || source_y >= image.height || x1 <= x0) continue;
    std::memcpy(out.at(y, x0), image.at(source_y, x0 + left), static_cast<size_t>((x1 - x0) * 3));
  }
  return out;
}

Image rotate(const Image& image, double degrees, const std::array<uint8_t, 3>& fill) {
  check_image("rotate", image);
  EFFNET_CHECK(std::isfinite(degrees), "rotate: the angle must be finite, got ", degrees);
  double angle = std::fmod(degrees, 360.0);
  if (angle < 0) angle += 360.0;  // Python's %: the divisor's sign
  if (angle == 0) return image;
  if (angle == 180) return rotate_180(image);
  if ((angle == 90 || angle == 270) && image.height == image.width) return rotate_quarter(image, angle == 90);

  // PIL's inverse matrix (output -> input) about the centre, then its 16.16 fixed-point walk. PIL's int32
  // walk is exact below 32768 pixels; int64 here keeps larger images from overflowing.
  const double radians = -(angle * (std::numbers::pi / 180.0));
  const double a = round15(std::cos(radians)), b = round15(std::sin(radians)),
               d = round15(-std::sin(radians));
  const double e = a;
  const double cx = static_cast<double>(image.width) / 2, cy = static_cast<double>(image.height) / 2;
  const double c = a * -cx + b * -cy + cx, f = d * -cx + e * -cy + cy;
  const auto fix = [](double v) { return static_cast<int64_t>(std::floor(v * 65536.0 + 0.5)); };
  const int64_t a0 = fix(a), a1 = fix(b), a3 = fix(d), a4 = fix(e);
  const int64_t a2 = fix(c + a * 0.5 + b * 0.5), a5 = fix(f + d * 0.5 + e * 0.5);

  Image out(image.height, image.width);
  uint8_t* o = out.pixels.data();
  for (int64_t y = 0; y < image.height; ++y) {
    int64_t xx = a2 + y * a1, yy = a5 + y * a4;
    for (int64_t x = 0; x < image.width; ++x, xx += a0, yy += a3, o += 3) {
      const int64_t sx = xx >> 16, sy = yy >> 16;
      const bool inside = sx >= 0 && sx < image.width && sy >= 0 && sy < image.height;
      std::memcpy(o, inside ? image.at(sy, sx) : fill.data(), 3);
    }
  }
  return out;
}

Image flip_horizontal(const Image& image) {
  check_image("flip_horizontal", image);
  Image out(image.height, image.width);
  for (int64_t y = 0; y < image.height; ++y) {
    const uint8_t* in = image.at(y, 0);
    uint8_t* o = out.at(y, image.width - 1);
    for (int64_t x = 0; x < image.width; ++x, in += 3, o -= 3) std::memcpy(o, in, 3);
  }
  return out;
}

Image to_grayscale(const Image& image) {
  check_image("to_grayscale", image);
  Image out(image.height, image.width);
  for (size_t i = 0; i < image.pixels.size(); i += 3) {
    const uint8_t l = luma(&image.pixels[i]);
    out.pixels[i] = out.pixels[i + 1] = out.pixels[i + 2] = l;
  }
  return out;
}

// Per channel: with h the histogram and L the count of its highest non-empty level, step = (N - L) // 255,
// level i maps to (step // 2 + h[0] + ... + h[i - 1]) // step; a channel with one level, or step 0, is kept.
Image equalize(const Image& image) {
  check_image("equalize", image);
  int64_t histogram[3][256] = {};
  for (size_t i = 0; i < image.pixels.size(); i += 3) {
    ++histogram[0][image.pixels[i]];
    ++histogram[1][image.pixels[i + 1]];
    ++histogram[2][image.pixels[i + 2]];
  }
  uint8_t table[3][256];
  for (int c = 0; c < 3; ++c) {
    const int64_t* h = histogram[c];
    int64_t total = 0, levels = 0, last = 0;
    for (int v = 0; v < 256; ++v) {
      total += h[v];
      if (h[v] > 0) {
        ++levels;
        last = h[v];
      }
    }
    const int64_t step = (total - last) / 255;
    int64_t n = step / 2;
    for (int v = 0; v < 256; ++v) {
      table[c][v] = levels <= 1 || step == 0 ? static_cast<uint8_t>(v) : clip8(n / step);
      n += h[v];
    }
  }
  Image out(image.height, image.width);
  for (size_t i = 0; i < image.pixels.size(); i += 3) {
    out.pixels[i] = table[0][image.pixels[i]];
    out.pixels[i + 1] = table[1][image.pixels[i + 1]];
    out.pixels[i + 2] = table[2][image.pixels[i + 2]];
  }
  return out;
}

Image adjust_brightness(const Image& image, double factor) {
  check_image("adjust_brightness", image);
  EFFNET_CHECK(factor >= 0, "adjust_brightness: the factor must be >= 0, got ", factor);
  return blend_towards(image, 0, factor);
}

Image adjust_contrast(const Image& image, double factor) {
  check_image("adjust_contrast", image);
  EFFNET_CHECK(factor >= 0, "adjust_contrast: the factor must be >= 0, got ", factor);
  int64_t sum = 0;
  for (size_t i = 0; i < image.pixels.size(); i += 3) sum += luma(&image.pixels[i]);
  const int64_t count = image.height * image.width;
  const double mean = count > 0 ? static_cast<double>(sum) / static_cast<double>(count) : 0.0;
  return blend_towards(image, static_cast<int>(mean + 0.5), factor);
}

Image adjust_saturation(const Image& image, double factor) {
  check_image("adjust_saturation", image);
  EFFNET_CHECK(factor >= 0, "adjust_saturation: the factor must be >= 0, got ", factor);
  const float alpha = static_cast<float>(factor);
  Image out(image.height, image.width);
  for (size_t i = 0; i < image.pixels.size(); i += 3) {
    const int l = luma(&image.pixels[i]);
    for (size_t c = 0; c < 3; ++c) out.pixels[i + c] = blend(l, image.pixels[i + c], alpha);
  }
  return out;
}

Image adjust_hue(const Image& image, double hue) {
  check_image("adjust_hue", image);
  EFFNET_CHECK(hue >= -0.5 && hue <= 0.5, "adjust_hue: hue must be in [-0.5, 0.5], got ", hue);
  // torchvision: np.int32(hue * 255).astype(np.uint8), added to PIL's hue byte with wrap-around.
  const uint8_t shift = static_cast<uint8_t>(static_cast<int32_t>(hue * 255));
  Image out(image.height, image.width);
  for (size_t i = 0; i < image.pixels.size(); i += 3) shift_hue(&image.pixels[i], &out.pixels[i], shift);
  return out;
}

}  // namespace effnet::data
