// The synthetic competition dataset of data/demo_data.h. Each person is a "look" drawn once from the seed
// (gender, age, skin, hair, face shape); each of their seven photos is rendered from it with its own pose,
// background, mask, lighting and noise. Rendering is plain rasterisation on a float canvas: ellipses and
// thick lines with a one-pixel soft edge, blended back to front, then lit, noised and rounded to 8 bits.
//
// What tells the labels apart, each with noise so that no single cue decides:
//   gender  hair length (long for most women, short for most men, overlapping), eyebrow thickness, hair
//           colour (dyed brown more often for women), a slightly narrower face for women
//   age     "oldness" = (age - 18) / 42 plus noise drives grey hair, wrinkle lines (forehead, eye corners,
//           cheeks), a wider lower face and, for men, a receding hairline; 58 and 59 look nearly like 60,
//           as in the competition, where threshold 58 beat 60
//   mask    worn: a mask from the nose bridge to below the chin; incorrect: its top below the nose, or on
//           the chin with the mouth showing; normal: none. Mask colours include skin-like beige
// Every random number comes from Philox (tensor/philox.h) keyed by the seed, on a counter stream per person,
// per photo and per file-layout choice, so a dataset is a pure function of (options, seed).
#include "data/demo_data.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "data/dataset.h"
#include "data/image.h"
#include "tensor/error.h"
#include "tensor/philox.h"

namespace effnet::data {
namespace fs = std::filesystem;

namespace {

constexpr uint64_t kDemoKey = 0x64656d6f64617461ull;  // "demodata"

// Streams: the kind in the counter's top byte, the index below it, 2^24 blocks of four words each.
enum Stream : uint64_t { kTrainLook = 1, kTrainPhoto, kEvalLook, kEvalPhoto, kLayout };

class Random {
 public:
  Random(uint64_t seed, Stream kind, uint64_t index)
      : key_(seed ^ kDemoKey), counter_(kind << 56 | index << 24) {}

  uint32_t word() {
    if (used_ == 4) {
      words_ = philox::generate(key_, counter_++);
      used_ = 0;
    }
    return words_.w[used_++];
  }
  double uniform() { return static_cast<double>(word() >> 8) * (1.0 / 16777216.0); }
  double uniform(double low, double high) { return low + (high - low) * uniform(); }
  double normal(double mean, double std) {
    const double u1 = uniform(), u2 = uniform();
    return mean + std * std::sqrt(-2.0 * std::log(1.0 - u1)) * std::cos(6.283185307179586 * u2);
  }
  bool bernoulli(double p) { return uniform() < p; }
  int64_t below(int64_t n) {
    return std::min(n - 1, static_cast<int64_t>(uniform() * static_cast<double>(n)));
  }

 private:
  uint64_t key_, counter_;
  philox::Words words_{};
  int used_ = 4;
};

struct Rgb {
  double r = 0, g = 0, b = 0;
};

Rgb mix(const Rgb& a, const Rgb& b, double t) {
  return {a.r + (b.r - a.r) * t, a.g + (b.g - a.g) * t, a.b + (b.b - a.b) * t};
}
Rgb scale(const Rgb& c, double f) { return {c.r * f, c.g * f, c.b * f}; }
Rgb random_colour(Random& rng, double low, double high) {
  return {rng.uniform(low, high), rng.uniform(low, high), rng.uniform(low, high)};
}

double clamp01(double x) { return std::clamp(x, 0.0, 1.0); }

class Canvas {
 public:
  Canvas(int64_t height, int64_t width)
      : h_(height), w_(width), px_(static_cast<size_t>(height * width * 3)) {}
  int64_t height() const { return h_; }
  int64_t width() const { return w_; }
  double* at(int64_t y, int64_t x) { return px_.data() + (y * w_ + x) * 3; }

  void blend(int64_t y, int64_t x, const Rgb& c, double alpha) {
    if (alpha <= 0) return;
    double* p = at(y, x);
    p[0] += (c.r - p[0]) * alpha;
    p[1] += (c.g - p[1]) * alpha;
    p[2] += (c.b - p[2]) * alpha;
  }

  // The pixel rows / columns a shape spanning [low, high] touches, clipped to the canvas.
  int64_t first(double low, int64_t size) const {
    return std::clamp<int64_t>(static_cast<int64_t>(std::floor(low)), 0, size);
  }
  int64_t last(double high, int64_t size) const {
    return std::clamp<int64_t>(static_cast<int64_t>(std::ceil(high)), 0, size);
  }

  // An ellipse, optionally cut by the horizontal lines y = top and y = bottom (a mask's straight edge).
  void ellipse(double cx, double cy, double rx, double ry, const Rgb& c, double alpha = 1, double top = -1e9,
               double bottom = 1e9) {
    const int64_t y0 = first(std::max(cy - ry, top) - 1, h_), y1 = last(std::min(cy + ry, bottom) + 1, h_);
    const int64_t x0 = first(cx - rx - 1, w_), x1 = last(cx + rx + 1, w_);
    for (int64_t y = y0; y < y1; ++y) {
      const double py = static_cast<double>(y) + 0.5, dy = py - cy;
      const double cut = clamp01(py - top + 0.5) * clamp01(bottom - py + 0.5);
      if (cut <= 0) continue;
      for (int64_t x = x0; x < x1; ++x) {
        const double dx = static_cast<double>(x) + 0.5 - cx;
        const double d = std::sqrt(dx * dx / (rx * rx) + dy * dy / (ry * ry));
        // Distance to the edge in pixels: (1 - d) over the gradient of d.
        const double gx = dx / (rx * rx), gy = dy / (ry * ry);
        const double gradient = std::sqrt(gx * gx + gy * gy) / std::max(d, 1e-9);
        blend(y, x, c, alpha * cut * clamp01((1 - d) / std::max(gradient, 1e-9) + 0.5));
      }
    }
  }

  // A segment `width` pixels thick.
  void line(double xa, double ya, double xb, double yb, double width, const Rgb& c, double alpha = 1) {
    const double half = width / 2;
    const int64_t y0 = first(std::min(ya, yb) - half - 1, h_), y1 = last(std::max(ya, yb) + half + 1, h_);
    const int64_t x0 = first(std::min(xa, xb) - half - 1, w_), x1 = last(std::max(xa, xb) + half + 1, w_);
    const double vx = xb - xa, vy = yb - ya, length2 = std::max(vx * vx + vy * vy, 1e-9);
    for (int64_t y = y0; y < y1; ++y) {
      for (int64_t x = x0; x < x1; ++x) {
        const double px = static_cast<double>(x) + 0.5 - xa, py = static_cast<double>(y) + 0.5 - ya;
        const double t = std::clamp((px * vx + py * vy) / length2, 0.0, 1.0);
        const double ex = px - t * vx, ey = py - t * vy;
        blend(y, x, c, alpha * clamp01(half - std::sqrt(ex * ex + ey * ey) + 0.5));
      }
    }
  }

  void rect(double xa, double ya, double xb, double yb, const Rgb& c, double alpha = 1) {
    for (int64_t y = first(ya, h_); y < last(yb, h_); ++y) {
      for (int64_t x = first(xa, w_); x < last(xb, w_); ++x) blend(y, x, c, alpha);
    }
  }

 private:
  int64_t h_, w_;
  std::vector<double> px_;
};

// What stays the same across a person's photos.
struct Look {
  int64_t gender = 0, age = 18;
  Rgb skin, hair, lips;
  double hair_length = 0;  // 0 (cropped) .. 1.3 (below the shoulders)
  double hairline = 0;     // 0 .. 1: how far the hair has receded
  double brow = 0;         // eyebrow thickness, in face half-widths
  double wrinkles = 0;     // 0 .. 1
  double jowl = 0;         // widening of the lower face
  double aspect = 1.3;     // face height / width
  double size = 1;
};

// An age drawn like the competition's: many young people, a bulge at 58-59, a fat band at exactly 60.
int64_t draw_age(Random& rng) {
  const double u = rng.uniform();
  if (u < 0.35) return 18 + rng.below(12);
  if (u < 0.75) return 30 + rng.below(28);
  if (u < 0.85) return 58 + rng.below(2);
  return 60;
}

// band < 0: any age; else an age of that band (threshold 60).
Look draw_look(Random& rng, int64_t gender, int64_t band) {
  Look k;
  k.gender = gender;
  const int64_t ages[3][2] = {{18, 12}, {30, 30}, {60, 1}};
  k.age = band < 0 ? draw_age(rng) : ages[band][0] + rng.below(ages[band][1]);
  const bool female = gender == 1;
  const double oldness = clamp01(static_cast<double>(k.age - 18) / 42.0 + rng.normal(0, 0.08));
  k.skin = mix({236, 204, 178}, {140, 98, 72}, std::pow(rng.uniform(), 1.6));
  const Rgb natural = mix({22, 18, 16}, {90, 60, 38}, rng.uniform() * rng.uniform());
  k.hair = rng.bernoulli(female ? 0.3 : 0.08) ? mix(natural, {150, 105, 62}, rng.uniform(0.4, 1.0)) : natural;
  k.hair = mix(k.hair, {196, 196, 192}, clamp01((oldness - 0.5) / 0.45 + rng.normal(0, 0.15)));
  k.lips = mix(k.skin, {175, 70, 72}, rng.uniform(0.35, female ? 0.75 : 0.5));
  k.hair_length = std::clamp(female ? rng.normal(0.85, 0.35) : rng.normal(0.12, 0.18), 0.0, 1.3);
  k.hairline = female ? 0 : clamp01((oldness - 0.55) * 1.6 + rng.normal(0, 0.2));
  k.brow = std::max(0.02, (female ? 0.045 : 0.075) + rng.normal(0, 0.012));
  k.wrinkles = clamp01((oldness - 0.3) / 0.6 + rng.normal(0, 0.12));
  k.jowl = clamp01(oldness + rng.normal(0, 0.15)) * 0.14;
  k.aspect = rng.uniform(1.22, 1.4) - (female ? 0 : 0.04);
  k.size = rng.uniform(0.93, 1.05) * (female ? 0.96 : 1.0);
  return k;
}

// mask: 0 worn, 1 worn incorrectly, 2 not worn.
Image render(const Look& k, int64_t mask, Random& rng, int64_t height, int64_t width) {
  Canvas c(height, width);
  const double W = static_cast<double>(width), H = static_cast<double>(height);

  // Background: a vertical gradient and a few flat objects (walls, doors, furniture).
  const Rgb top = random_colour(rng, 40, 235),
            bottom = mix(top, random_colour(rng, 20, 235), rng.uniform(0.2, 0.9));
  for (int64_t y = 0; y < height; ++y) {
    const Rgb row = mix(top, bottom, static_cast<double>(y) / H);
    for (int64_t x = 0; x < width; ++x) c.blend(y, x, row, 1);
  }
  for (int64_t n = rng.below(3); n > 0; --n) {
    const double x0 = rng.uniform(-0.2, 0.9) * W, y0 = rng.uniform(-0.2, 0.8) * H;
    c.rect(x0, y0, x0 + rng.uniform(0.1, 0.5) * W, y0 + rng.uniform(0.2, 0.8) * H,
           random_colour(rng, 30, 230), rng.uniform(0.5, 1));
  }

  // Pose: where the face is and how large.
  const double rx = 0.27 * W * k.size * rng.uniform(0.86, 1.14), ry = rx * k.aspect;
  const double cx = W * (0.5 + rng.uniform(-0.08, 0.08)), cy = H * (0.45 + rng.uniform(-0.05, 0.05));
  const Rgb shadow = scale(k.skin, 0.8);

  c.ellipse(cx, cy + 2.05 * ry, 1.95 * rx, 1.15 * ry, random_colour(rng, 20, 230));  // shoulders
  if (k.hair_length > 0.25) {  // hair falling behind the neck, to the shoulders and below
    const double L = k.hair_length;
    c.ellipse(cx, cy + 0.55 * L * ry, rx * (1.18 + 0.12 * L), ry * (0.95 + 0.7 * L), k.hair, 1, -1e9,
              cy + (0.25 + 1.1 * L) * ry);
  }
  c.ellipse(cx, cy + 0.95 * ry, 0.48 * rx, 0.5 * ry, shadow);       // neck
  c.ellipse(cx - rx, cy - 0.02 * ry, 0.16 * rx, 0.2 * ry, shadow);  // ears
  c.ellipse(cx + rx, cy - 0.02 * ry, 0.16 * rx, 0.2 * ry, shadow);
  c.ellipse(cx, cy, rx, ry, k.skin);                                             // face
  c.ellipse(cx, cy + 0.4 * ry, rx * (0.86 + k.jowl), 0.56 * ry, k.skin, 1, cy);  // lower face, jowls
  const double hairline = cy - (0.42 + 0.4 * k.hairline) * ry;
  c.ellipse(cx, cy - 0.22 * ry, 1.08 * rx, 0.92 * ry, k.hair, 1, -1e9, hairline);  // hair on top
  if (k.hair_length > 0.6) {  // locks beside the face
    for (double side : {-1.0, 1.0}) {
      c.ellipse(cx + side * 0.98 * rx, cy + 0.1 * ry, 0.2 * rx, 0.75 * ry * std::min(k.hair_length, 1.0),
                k.hair);
    }
  }

  const double ey = cy - 0.12 * ry, gaze = rng.uniform(-0.03, 0.03) * rx;
  const double line_width = std::max(0.7, 0.035 * rx);
  for (double side : {-1.0, 1.0}) {
    const double ex = cx + side * 0.38 * rx;
    c.ellipse(ex, ey, 0.16 * rx, 0.075 * ry, {238, 236, 232});
    c.ellipse(ex + gaze, ey, 0.075 * rx, 0.075 * rx, {45, 30, 22});
    c.line(ex - side * 0.16 * rx, ey - 0.13 * ry, ex + side * 0.16 * rx, ey - 0.16 * ry, k.brow * rx, k.hair);
    if (k.wrinkles > 0.2) {  // crow's feet, cheek folds
      const double a = 0.6 * k.wrinkles;
      c.line(ex + side * 0.2 * rx, ey - 0.02 * ry, ex + side * 0.3 * rx, ey - 0.06 * ry, line_width, shadow,
             a);
      c.line(ex + side * 0.2 * rx, ey + 0.03 * ry, ex + side * 0.3 * rx, ey + 0.07 * ry, line_width, shadow,
             a);
      c.line(cx + side * 0.16 * rx, cy + 0.2 * ry, cx + side * 0.34 * rx, cy + 0.5 * ry, line_width, shadow,
             a);
    }
  }
  for (int64_t j = 0; j < static_cast<int64_t>(k.wrinkles * 3.2); ++j) {  // forehead lines
    const double y = cy - (0.3 + 0.07 * static_cast<double>(j)) * ry;
    if (y > hairline + 0.03 * ry) {
      c.line(cx - 0.4 * rx, y, cx + 0.4 * rx, y, line_width, shadow, 0.55 * k.wrinkles);
    }
  }
  c.line(cx, cy - 0.02 * ry, cx + 0.03 * rx, cy + 0.16 * ry, std::max(0.8, 0.06 * rx), shadow, 0.7);  // nose
  c.ellipse(cx, cy + 0.19 * ry, 0.13 * rx, 0.04 * ry, scale(k.skin, 0.7), 0.7);
  c.ellipse(cx, cy + 0.43 * ry, 0.27 * rx, 0.055 * ry, k.lips);  // mouth

  if (mask != 2) {
    static const Rgb kMasks[] = {{238, 238, 240}, {168, 200, 232}, {34, 34, 40},  {120, 124, 130},
                                 {236, 176, 190}, {40, 52, 96},   {222, 200, 170}};
    const Rgb colour = rng.bernoulli(0.25) ? random_colour(rng, 20, 240) : kMasks[rng.below(7)];
    const double mrx = rx * rng.uniform(0.95, 1.08), mry = ry * rng.uniform(0.58, 0.66);
    // The mask's straight top edge: over the nose bridge, below the nose, or on the chin.
    const double edge = mask == 0            ? cy + rng.uniform(-0.1, 0.0) * ry
                        : rng.bernoulli(0.7) ? cy + rng.uniform(0.22, 0.3) * ry
                                             : cy + rng.uniform(0.5, 0.58) * ry;
    const double mcy = std::max(cy + 0.42 * ry, edge + 0.3 * mry);
    const Rgb strap = rng.bernoulli(0.5) ? colour : Rgb{235, 235, 235};
    for (double side : {-1.0, 1.0}) {
      c.line(cx + side * 0.9 * mrx, edge + 0.12 * mry, cx + side * 1.02 * rx, cy - 0.05 * ry, line_width,
             strap);
    }
    c.ellipse(cx, mcy, mrx, mry, colour, 1, edge);
    for (int64_t j = 1; j <= 3; ++j) {  // pleats
      const double y = edge + 0.22 * mry * static_cast<double>(j);
      c.line(cx - 0.75 * mrx, y, cx + 0.75 * mrx, y, line_width, scale(colour, 0.82), 0.6);
    }
  }

  // Lighting (gain, a sideways gradient, a colour cast), sensor noise, rounding.
  const double gain = rng.uniform(0.72, 1.2), slope = rng.uniform(-0.5, 0.5), noise = rng.uniform(2, 10);
  const double cast[3] = {rng.normal(1, 0.04), rng.normal(1, 0.04), rng.normal(1, 0.04)};
  Image image(height, width);
  uint32_t bits = 0;
  for (int64_t y = 0; y < height; ++y) {
    for (int64_t x = 0; x < width; ++x) {
      const double light = gain * (1 + slope * (static_cast<double>(x) / W - 0.5));
      for (int ch = 0; ch < 3; ++ch) {
        if ((x * 3 + ch) % 4 == 0) bits = rng.word();
        const double n = (static_cast<double>(bits & 0xFF) - 127.5) / 127.5 * noise;
        bits >>= 8;
        const double v = c.at(y, x)[ch] * light * cast[ch] + n;
        image.at(y, x)[ch] = static_cast<uint8_t>(std::clamp(std::lround(v), 0l, 255l));
      }
    }
  }
  return image;
}

// Writes `image` as JPEG or PNG by the extension's letters.
void write_photo(const std::string& path, const Image& image, Random& layout) {
  const std::string ext = path.substr(path.rfind('.') + 1);
  if (ext == "png" || ext == "PNG") {
    write_png(path, image);
  } else {
    write_jpeg(path, image, static_cast<int>(72 + layout.below(24)));
  }
}

// An extension as the competition mixes them: mostly .jpg, some .png and .jpeg, a few in capitals.
std::string draw_extension(Random& layout) {
  const double u = layout.uniform();
  std::string ext = u < 0.8 ? "jpg" : u < 0.9 ? "png" : "jpeg";
  if (layout.bernoulli(0.03)) {
    std::transform(ext.begin(), ext.end(), ext.begin(), [](char ch) { return ch - 'a' + 'A'; });
  }
  return ext;
}

// The metadata file macOS leaves beside a copied file ("AppleDouble").
void write_apple_double(const fs::path& path) {
  std::string bytes("\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X        ", 24);
  bytes.resize(82, '\0');
  std::ofstream out(path, std::ios::binary);
  out << bytes;
  EFFNET_CHECK(out.good(), path.string(), ": cannot write");
}

std::string hex_name(Random& layout) {
  std::string name;
  for (int k = 0; k < 5; ++k) {
    char part[9];
    std::snprintf(part, sizeof part, "%08x", layout.word());
    name += part;
  }
  return name + ".jpg";
}

const std::string kStems[7] = {"mask1", "mask2", "mask3", "mask4", "mask5", "incorrect_mask", "normal"};

std::string six_digits(int64_t number) {
  const std::string digits = std::to_string(number);
  return std::string(digits.size() < 6 ? 6 - digits.size() : 0, '0') + digits;
}

// train/: train.csv, the person folders, relabel.csv.
void write_train(const fs::path& train, const DemoOptions& options) {
  // The labels as written (csv_*) differ from the truth for the mislabelled people, which relabel.csv fixes.
  const int64_t n = options.people;
  const bool quirks = n >= 20;  // the repeated id and the mislabelled people
  const int64_t repeat = n / 4 + 1, gender_a = n * 2 / 5, gender_b = n * 3 / 5 + 1, age_wrong = n / 2 + 2,
                swapped = n * 4 / 5, corrupt = n / 3;
  std::vector<std::vector<std::string>> rows, relabel;
  std::vector<std::string> ids;
  int64_t number = 0;
  for (int64_t p = 0; p < n; ++p) {
    Random look_rng(options.seed, kTrainLook, static_cast<uint64_t>(p)),
        layout(options.seed, kLayout, static_cast<uint64_t>(p));
    const bool cover = p < 6;  // the first six people cover every gender x age band
    const int64_t gender = cover ? p / 3 : (look_rng.bernoulli(0.6) ? 1 : 0);
    const Look look = draw_look(look_rng, gender, cover ? p % 3 : -1);
    int64_t csv_gender = look.gender, csv_age = look.age;
    std::string id;
    if (quirks && p == repeat) {  // one id twice, with another age
      id = ids.back();
      const int64_t previous_age = std::stoll(rows.back()[3]);
      if (csv_age == previous_age) csv_age += csv_age < 60 ? 1 : -1;
    } else if (p % 40 == 25) {  // an id with a suffix
      id = six_digits(number) + "-1";
    } else {
      id = six_digits(++number);
    }
    if (quirks && (p == gender_a || p == gender_b)) csv_gender = 1 - csv_gender;
    if (quirks && p == age_wrong) csv_age = look.age < 40 ? look.age + 21 : look.age - 21;
    const std::string gender_name = csv_gender == 1 ? "female" : "male";
    const std::string path = id + "_" + gender_name + "_Asian_" + std::to_string(csv_age);
    ids.push_back(id);
    rows.push_back({id, gender_name, "Asian", std::to_string(csv_age), path});
    if (quirks && csv_gender != look.gender) {
      relabel.push_back({path, "gender", look.gender == 1 ? "female" : "male"});
    }
    if (quirks && p == age_wrong) relabel.push_back({path, "age", std::to_string(look.age)});
    if (quirks && p == swapped) relabel.push_back({path, "mask-swap", ""});

    const fs::path folder = train / "images" / path;
    fs::create_directories(folder);
    for (int64_t k = 0; k < 7; ++k) {
      Random photo_rng(options.seed, kTrainPhoto, static_cast<uint64_t>(p * 8 + k));
      int64_t mask = k < 5 ? 0 : k - 4;
      if (quirks && p == swapped && mask != 0) mask = 3 - mask;  // the files carry each other's picture
      const Image image = render(look, mask, photo_rng, options.height, options.width);
      const bool broken = p == corrupt && k == 1;
      const fs::path file = folder / (kStems[k] + "." + (broken ? "jpg" : draw_extension(layout)));
      write_photo(file.string(), image, layout);
      if (broken) fs::resize_file(file, fs::file_size(file) / 2);  // a truncated JPEG
    }
    if (layout.bernoulli(0.1)) write_apple_double(folder / "._mask1.jpg");
    if (layout.bernoulli(0.05)) write_apple_double(train / "images" / ("._" + path));
  }
  write_csv((train / "train.csv").string(), {"id", "gender", "race", "age", "path"}, rows);
  if (quirks) write_csv((train / "relabel.csv").string(), {"path", "field", "value"}, relabel);
}

// eval/: info.csv, the images, answers.csv.
void write_eval(const fs::path& eval, const DemoOptions& options) {
  std::vector<std::vector<std::string>> info, answers;
  for (int64_t i = 0; i < options.eval_images; ++i) {
    Random look_rng(options.seed, kEvalLook, static_cast<uint64_t>(i)),
        photo_rng(options.seed, kEvalPhoto, static_cast<uint64_t>(i));
    Random layout(options.seed, kLayout, static_cast<uint64_t>(options.people + i));
    const Look look = draw_look(look_rng, look_rng.bernoulli(0.6) ? 1 : 0, -1);
    const double u = look_rng.uniform();
    const int64_t mask = u < 5.0 / 7 ? 0 : u < 6.0 / 7 ? 1 : 2;
    const std::string name = hex_name(layout);
    write_jpeg((eval / "images" / name).string(),
               render(look, mask, photo_rng, options.height, options.width),
               static_cast<int>(72 + layout.below(24)));
    if (i % 50 == 7) write_apple_double(eval / "images" / ("._" + name));
    info.push_back({name, "0"});
    answers.push_back({name, std::to_string(mask_class(mask, look.gender, age_band(look.age, 60))),
                       std::to_string(look.age)});
  }
  write_csv((eval / "info.csv").string(), {"ImageID", "ans"}, info);
  write_csv((eval / "answers.csv").string(), {"ImageID", "ans", "age"}, answers);
}

}  // namespace

int64_t write_demo_dataset(const std::string& root, const DemoOptions& options) {
  EFFNET_CHECK(options.people >= 1, "write_demo_dataset: people must be at least 1, got ", options.people);
  EFFNET_CHECK(options.height >= 32 && options.height <= 4096 && options.width >= 32 && options.width <= 4096,
               "write_demo_dataset: the size must lie in 32 .. 4096 on each side, got ", options.height, "x",
               options.width);
  EFFNET_CHECK(options.eval_images >= 0, "write_demo_dataset: eval_images must not be negative, got ",
               options.eval_images);
  const fs::path train = fs::path(root) / "train", eval = fs::path(root) / "eval";
  try {
    for (const fs::path& part : {train, eval}) {
      EFFNET_CHECK(!fs::exists(part), part.string(), ": already exists (write the demo data to a new root)");
    }
    fs::create_directories(train / "images");
    fs::create_directories(train / "._images");
    fs::create_directories(eval / "images");
    write_apple_double(train / "._train.csv");
    write_apple_double(train / "._images" / "._mask1.jpg");
    write_apple_double(eval / "._info.csv");
    write_train(train, options);
    write_eval(eval, options);
  } catch (const fs::filesystem_error& e) {
    EFFNET_FAIL("write_demo_dataset: ", e.what());
  }
  return options.people * 7 + options.eval_images;
}

}  // namespace effnet::data
