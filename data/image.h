// Images as decoded files: 8-bit RGB, row-major, three bytes per pixel (height x width x 3, "HWC").
// Decoding is stb_image's (Debian's libstb-dev): baseline and progressive JPEG, PNG of 8 or 16 bits;
// grey, grey + alpha and RGBA become RGB (alpha is dropped, not blended). Not handled, each a per-file
// ImageError: EXIF orientation (pixels are taken as stored), CMYK and 12-bit JPEG, arithmetic-coded JPEG,
// and anything that is neither JPEG nor PNG. Decoding and writing are thread-safe (data/image.cpp says why).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "tensor/error.h"

namespace effnet::data {

// A problem with one image file (missing, unreadable, empty, truncated, corrupt, unsupported). The loader
// reports it once and replaces the sample; anything else is a bug or a configuration error.
class ImageError : public Error {
 public:
  using Error::Error;
};

struct Image {
  int64_t height = 0, width = 0;
  std::vector<uint8_t> pixels;  // height * width * 3

  Image() = default;
  Image(int64_t h, int64_t w, uint8_t fill = 0) : height(h), width(w), pixels(static_cast<size_t>(h * w * 3), fill) {}
  bool empty() const { return pixels.empty(); }
  uint8_t* at(int64_t y, int64_t x) { return pixels.data() + (y * width + x) * 3; }
  const uint8_t* at(int64_t y, int64_t x) const { return pixels.data() + (y * width + x) * 3; }
};

// Throws ImageError naming the file and the reason.
Image decode_image(const std::string& path);
Image decode_image(const uint8_t* data, size_t size, const std::string& name);

// Atomic writes (temporary file, then rename); throw Error naming the path.
void write_png(const std::string& path, const Image& image);
void write_jpeg(const std::string& path, const Image& image, int quality = 90);

}  // namespace effnet::data
