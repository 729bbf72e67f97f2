// Decoding and writing image files (data/image.cpp): round trips through effnet's own writers, hand-made
// PNGs that stb_image_write cannot produce (16-bit, grey + alpha), JPEG frame headers effnet rejects, every
// kind of bad file as an ImageError naming it, and decoding from many threads at once.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <thread>
#include <vector>

#include "data/image.h"
#include "tests/temp_dir.h"
#include "tests/test_util.h"

namespace effnet::data {
namespace {

// The message of the ImageError that f() throws, or a note saying what happened instead.
template <class F>
std::string image_error_of(F&& f) {
  try {
    f();
  } catch (const ImageError& e) {
    return e.what();
  } catch (const std::exception& e) {
    return std::string("(not an ImageError: ") + e.what() + ")";
  }
  return "(no error)";
}

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

Image decode_bytes(const std::string& bytes, const std::string& name) {
  return decode_image(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), name);
}

// A pattern with every channel distinct: (7y + 3x, 255 - 5x, 11y + x) mod 256.
Image pattern(int64_t height, int64_t width) {
  Image image(height, width);
  for (int64_t y = 0; y < height; ++y) {
    for (int64_t x = 0; x < width; ++x) {
      uint8_t* p = image.at(y, x);
      p[0] = static_cast<uint8_t>(7 * y + 3 * x);
      p[1] = static_cast<uint8_t>(255 - 5 * x);
      p[2] = static_cast<uint8_t>(11 * y + x);
    }
  }
  return image;
}

// ---- a minimal PNG writer for the formats stb_image_write lacks: stored (uncompressed) deflate blocks

std::string big_endian32(uint32_t v) {
  return {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8),
          static_cast<char>(v)};
}

uint32_t crc32(const std::string& bytes) {
  uint32_t crc = 0xFFFFFFFFu;
  for (unsigned char byte : bytes) {
    crc ^= byte;
    for (int bit = 0; bit < 8; ++bit) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
  }
  return ~crc;
}

std::string png_chunk(const std::string& type, const std::string& data) {
  return big_endian32(static_cast<uint32_t>(data.size())) + type + data + big_endian32(crc32(type + data));
}

// `rows`: the raw scanlines, each led by its filter byte (0).
std::string make_png(uint32_t width, uint32_t height, int depth, int color_type, const std::string& rows) {
  std::string zlib = "\x78\x01";
  zlib += '\x01';  // one final stored block
  const auto length = static_cast<uint16_t>(rows.size());
  zlib += {static_cast<char>(length & 0xFF), static_cast<char>(length >> 8)};
  zlib += {static_cast<char>(~length & 0xFF), static_cast<char>((~length >> 8) & 0xFF)};
  zlib += rows;
  uint32_t a = 1, b = 0;
  for (unsigned char byte : rows) {
    a = (a + byte) % 65521;
    b = (b + a) % 65521;
  }
  zlib += big_endian32(b << 16 | a);
  const std::string header = big_endian32(width) + big_endian32(height) +
                             std::string{static_cast<char>(depth), static_cast<char>(color_type), 0, 0, 0};
  return std::string("\x89PNG\r\n\x1A\n", 8) + png_chunk("IHDR", header) + png_chunk("IDAT", zlib) +
         png_chunk("IEND", "");
}

std::string u16(uint16_t v) { return {static_cast<char>(v >> 8), static_cast<char>(v & 0xFF)}; }

// A JPEG that stops after its frame header: SOI, then SOFn with the given precision and components.
std::string jpeg_frame(unsigned char sof, int precision, int components) {
  std::string bytes = "\xFF\xD8";
  bytes += "\xFF\xE0" + u16(16) + std::string("JFIF\0\x01\x01\0\0\x01\0\x01\0\0", 14);  // APP0 (JFIF)
  bytes += {'\xFF', static_cast<char>(sof)};
  bytes += u16(static_cast<uint16_t>(8 + 3 * components)) + static_cast<char>(precision) + u16(16) + u16(16);
  bytes += static_cast<char>(components);
  for (int c = 0; c < components; ++c) bytes += {static_cast<char>(c + 1), '\x11', '\0'};
  return bytes;
}

TEST(Image, PngRoundTripIsExact) {
  test::TempDir dir("image_png");
  const Image image = pattern(5, 7);
  const std::string path = dir / "pattern.png";
  write_png(path, image);
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));
  const Image decoded = decode_image(path);
  EXPECT_EQ(decoded.height, 5);
  EXPECT_EQ(decoded.width, 7);
  EXPECT_EQ(decoded.pixels, image.pixels);
  write_png(path, pattern(2, 3));  // over an existing file
  EXPECT_EQ(decode_image(path).pixels, pattern(2, 3).pixels);
}

TEST(Image, JpegRoundTripIsClose) {
  test::TempDir dir("image_jpeg");
  Image image(24, 32);
  for (int64_t y = 0; y < 24; ++y) {
    for (int64_t x = 0; x < 32; ++x) {
      uint8_t* p = image.at(y, x);
      p[0] = static_cast<uint8_t>(8 * x);
      p[1] = static_cast<uint8_t>(10 * y);
      p[2] = 128;
    }
  }
  const std::string path = dir / "smooth.jpg";
  write_jpeg(path, image, 95);
  const Image decoded = decode_image(path);
  ASSERT_EQ(decoded.height, 24);
  ASSERT_EQ(decoded.width, 32);
  int worst = 0;
  for (size_t i = 0; i < image.pixels.size(); ++i)
    worst = std::max(worst, std::abs(decoded.pixels[i] - image.pixels[i]));
  EXPECT_LE(worst, 8);
  EXPECT_NE(test::error_of([&] { write_jpeg(path, image, 0); }).find("quality 0"), std::string::npos);
}

TEST(Image, SixteenBitPngRoundsToEightBits) {
  // v -> round(v / 257): 0, 128 -> 0 (0.498), 129 -> 1 (0.502), 25828 -> 100, 25829 -> 101, 65535 -> 255
  const uint16_t values[6] = {0, 128, 129, 25828, 25829, 65535};
  std::string rows;
  rows += '\0';
  for (uint16_t v : values) rows += u16(v);
  const Image image = decode_bytes(make_png(2, 1, 16, 2, rows), "sixteen.png");
  ASSERT_EQ(image.height, 1);
  ASSERT_EQ(image.width, 2);
  EXPECT_EQ(image.pixels, (std::vector<uint8_t>{0, 0, 1, 100, 101, 255}));
}

TEST(Image, GreyAlphaPngBecomesRgbWithoutAlpha) {
  const std::string rows = std::string("\0", 1) + std::string("\x0A\x00\xC8\xFF", 4) + std::string("\0", 1) +
                           std::string("\x4D\x80\x00\x00", 4);
  const Image image = decode_bytes(make_png(2, 2, 8, 4, rows), "grey_alpha.png");
  ASSERT_EQ(image.height, 2);
  ASSERT_EQ(image.width, 2);
  EXPECT_EQ(image.pixels, (std::vector<uint8_t>{10, 10, 10, 200, 200, 200, 77, 77, 77, 0, 0, 0}));
}

TEST(Image, BadFilesAreImageErrorsNamingTheFile) {
  test::TempDir dir("image_bad");
  const auto expect_error = [](const std::string& message, const std::string& name,
                               const std::string& reason) {
    EXPECT_NE(message.find("'" + name + "'"), std::string::npos) << message;
    EXPECT_NE(message.find(reason), std::string::npos) << message << " (expected: " << reason << ")";
  };
  const std::string missing = dir / "missing.jpg";
  expect_error(image_error_of([&] { decode_image(missing); }), missing, "No such file");
  const std::string empty = dir.write("empty.png", "");
  expect_error(image_error_of([&] { decode_image(empty); }), empty, "empty");
  expect_error(image_error_of([&] { decode_image(dir.path()); }), dir.path(), "cannot read");

  write_jpeg(dir / "whole.jpg", pattern(16, 16));
  const std::string jpeg = read_bytes(dir / "whole.jpg");
  const std::string truncated = dir.write("truncated.jpg", jpeg.substr(0, jpeg.size() / 2));
  expect_error(image_error_of([&] { decode_image(truncated); }), truncated, "cannot decode JPEG: corrupt");
  const std::string headerless = dir.write("cut.jpg", jpeg.substr(0, 40));
  expect_error(image_error_of([&] { decode_image(headerless); }), headerless,
               "cannot decode JPEG: Corrupt JPEG");
  write_png(dir / "whole.png", pattern(16, 16));
  const std::string png = read_bytes(dir / "whole.png");
  const std::string cut_png = dir.write("truncated.png", png.substr(0, png.size() - 20));
  expect_error(image_error_of([&] { decode_image(cut_png); }), cut_png, "PNG");

  const std::string gif = dir.write("animation.gif", std::string("GIF89a\x01\x00\x01\x00\x00\x00\x00", 13));
  expect_error(image_error_of([&] { decode_image(gif); }), gif, "not a JPEG or PNG file (format: GIF)");
  expect_error(image_error_of([&] { decode_bytes("BM\x3A\x00\x00\x00", "x.bmp"); }), "x.bmp", "format: BMP");
  expect_error(image_error_of([&] { decode_bytes("hello", "notes.jpg"); }), "notes.jpg", "format: unknown");

  expect_error(image_error_of([&] { decode_bytes(jpeg_frame(0xC0, 8, 4), "cmyk.jpg"); }), "cmyk.jpg", "CMYK");
  expect_error(image_error_of([&] { decode_bytes(jpeg_frame(0xC1, 12, 3), "deep.jpg"); }), "deep.jpg",
               "12-bit JPEG is not supported");
  expect_error(image_error_of([&] { decode_bytes(jpeg_frame(0xC9, 8, 3), "arith.jpg"); }), "arith.jpg",
               "arithmetic-coded");
  expect_error(image_error_of([&] { decode_bytes(jpeg_frame(0xC3, 8, 3), "lossless.jpg"); }), "lossless.jpg",
               "lossless");
  // A Huffman table of 16 x 255 codes, after the frame header: stb 2.27 would write it past its arrays.
  const std::string huge_table =
      jpeg_frame(0xC0, 8, 3) + "\xFF\xC4" + u16(19) + '\0' + std::string(16, '\xFF');
  expect_error(image_error_of([&] { decode_bytes(huge_table, "dht.jpg"); }), "dht.jpg",
               "corrupt JPEG: a Huffman table declares more than 256 codes");
  // A scan whose tables no DHT defined: stb 2.27 would decode with uninitialised tables.
  const std::string undefined_tables = jpeg_frame(0xC0, 8, 1) + "\xFF\xDA" + u16(8) + '\x01' +
                                       std::string("\x01\x00\x00\x3F\x00", 5) + std::string(64, '\x55');
  expect_error(image_error_of([&] { decode_bytes(undefined_tables, "tables.jpg"); }), "tables.jpg",
               "a scan uses a Huffman table that no DHT segment defined");
  // A valid frame header with no scan: stb's verdict.
  expect_error(image_error_of([&] { decode_bytes(jpeg_frame(0xC0, 8, 3), "headless.jpg"); }), "headless.jpg",
               "JPEG");
}

TEST(Image, WriteErrorsNameThePath) {
  const std::string path = "/nonexistent-effnet-folder/out.png";
  const std::string message = test::error_of([&] { write_png(path, pattern(2, 2)); });
  EXPECT_NE(message.find(path), std::string::npos) << message;
  EXPECT_NE(test::error_of([&] { write_jpeg("/tmp/empty.jpg", Image()); }).find("empty"), std::string::npos);
}

// stb keeps its failure reason per thread: each thread gets its own file's message.
TEST(Image, DecodesFromManyThreads) {
  test::TempDir dir("image_threads");
  write_png(dir / "good.png", pattern(40, 30));
  write_jpeg(dir / "good.jpg", pattern(40, 30));
  const std::string jpeg = read_bytes(dir / "good.jpg");
  dir.write("bad.jpg", jpeg.substr(0, jpeg.size() / 3));
  dir.write("bad.png", read_bytes(dir / "good.png").substr(0, 60));
  const std::vector<uint8_t> expected = pattern(40, 30).pixels;
  std::vector<int> failures(8, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 40; ++i) {
        if (decode_image(dir / "good.png").pixels != expected) ++failures[t];
        if (decode_image(dir / "good.jpg").height != 40) ++failures[t];
        const std::string jpeg_error = image_error_of([&] { decode_image(dir / "bad.jpg"); });
        if (jpeg_error.find("bad.jpg': cannot decode JPEG: ") == std::string::npos) ++failures[t];
        if (jpeg_error.find("PNG") != std::string::npos) ++failures[t];  // another thread's reason
        const std::string png_error = image_error_of([&] { decode_image(dir / "bad.png"); });
        if (png_error.find("bad.png': cannot decode PNG: Corrupt PNG") == std::string::npos) ++failures[t];
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  for (int t = 0; t < 8; ++t) EXPECT_EQ(failures[t], 0) << "thread " << t;
}

}  // namespace
}  // namespace effnet::data
