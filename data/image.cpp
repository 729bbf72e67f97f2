// Image files in and out: read a file, recognise JPEG or PNG by its first bytes, decode it with stb_image
// into 8-bit RGB; encode with stb_image_write and write atomically.
//
// Thread safety: any number of threads may decode and write at once. stb_image keeps its failure reason in
// a global that stb 2.24+ declares thread_local in C++ (Debian's libstb-dev ships 2.27), and effnet never
// calls the setters of stb's other globals (vertical flip, iPhone PNG, unpremultiply). The one shared buffer
// left is the "XXXX PNG chunk not known" text, written (never read: stb_impl.cpp sets STBI_FAILURE_USERMSG)
// for a corrupt PNG with an unknown critical chunk.
//
// Before stb sees a JPEG, its segments are walked here: 4 components (stb would decode CMYK/YCCK with its
// own colour conversion), a precision other than 8 bits, or a frame type other than baseline, extended or
// progressive Huffman are each an ImageError saying so, and so are the corruptions that would make stb 2.27
// touch memory it never wrote or write outside its tables (check_jpeg lists them). EXIF orientation is not
// applied (PIL's Image.open does not apply it either). JPEG pixels differ from libjpeg's (PIL's) by a few
// levels (other IDCT and chroma upsampling); PNG pixels are exact.
#include "data/image.h"

#include <stb/stb_image.h>
#include <stb/stb_image_write.h>

#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string_view>

#include "io/atomic_file.h"

namespace effnet::data {
namespace {

template <class... Parts>
[[noreturn]] void fail(const std::string& name, const Parts&... parts) {
  throw ImageError(detail::concat("image '", name, "': ", parts...));
}

bool starts_with(const uint8_t* data, size_t size, const char* magic, size_t length) {
  return size >= length && std::memcmp(data, magic, length) == 0;
}

bool is_jpeg(const uint8_t* data, size_t size) { return starts_with(data, size, "\xFF\xD8\xFF", 3); }
bool is_png(const uint8_t* data, size_t size) { return starts_with(data, size, "\x89PNG\r\n\x1A\n", 8); }

// A name for the formats a stray file is most likely to be, for the error message.
std::string describe_format(const uint8_t* data, size_t size) {
  if (starts_with(data, size, "GIF8", 4)) return "GIF";
  if (starts_with(data, size, "BM", 2)) return "BMP";
  if (starts_with(data, size, "II*\0", 4) || starts_with(data, size, "MM\0*", 4)) return "TIFF";
  if (size >= 12 && starts_with(data, size, "RIFF", 4) && std::memcmp(data + 8, "WEBP", 4) == 0)
    return "WebP";
  if (size >= 12 && std::memcmp(data + 4, "ftyp", 4) == 0) return "HEIF/AVIF";
  return "unknown";
}

// Walks the JPEG's segments the way stb will read them, before stb does, and rejects (1) from the first
// frame header, what effnet does not decode; (2) corruptions that stb 2.27 does not check and that libjpeg
// does: a Huffman table declaring more than 256 codes (stb writes it past its arrays), a scan using a
// Huffman or quantisation table that no DHT / DQT segment defined, and a component left without image data
// (no scan, or a progressive refinement before its first DC scan) at EOI. stb would read those through
// uninitialised memory: a crash, or pixels that change from run to run. Bytes outside segments
// (entropy-coded data, junk) are skipped to the next marker, as stb skips them; the walk stops at EOI, or at
// the end of the data (truncation is stb's to report).
void check_jpeg(const uint8_t* data, size_t size, const std::string& name) {
  const auto byte = [&](size_t at) -> unsigned {
    return at < size ? data[at] : 0u;
  };  // stb reads 0 past the end
  const auto corrupt = [&](const char* what) { fail(name, "corrupt JPEG: ", what); };
  bool progressive = false;
  unsigned huffman[2] = {0, 0}, quantisation = 0;  // bit t: DC (0) / AC (1) / quantisation table t defined
  size_t components = 0;                           // of the frame; 0 before it
  unsigned ids[3] = {}, tables[3] = {};            // each frame component's id and quantisation table
  bool initialised[3] = {false, false, false};     // a scan has set its coefficients
  size_t pos = 2;                                  // after SOI
  while (pos + 1 < size) {
    if (data[pos] != 0xFF) {
      const void* next = std::memchr(data + pos, 0xFF, size - pos);
      if (next == nullptr) return;
      pos = static_cast<size_t>(static_cast<const uint8_t*>(next) - data);
      continue;
    }
    const unsigned marker = data[pos + 1];
    if (marker == 0xFF) {  // fill byte
      ++pos;
      continue;
    }
    if (marker == 0x00 || marker == 0x01 || (marker >= 0xD0 && marker <= 0xD7)) {  // stuffing, TEM, RSTn
      pos += 2;
      continue;
    }
    if (marker == 0xD9) {  // EOI
      for (size_t f = 0; f < components; ++f) {
        if (!initialised[f]) corrupt("a component has no image data");
      }
      return;
    }
    const size_t length = (byte(pos + 2) << 8) | byte(pos + 3), end = pos + 2 + length;
    if (marker == 0xC4) {  // DHT: tables of 1 + 16 + codes bytes, while one starts inside the segment
      for (size_t table = pos + 4; table < end;) {
        size_t codes = 0;
        for (size_t k = 1; k <= 16; ++k) codes += byte(table + k);
        if (codes > 256) corrupt("a Huffman table declares more than 256 codes");
        if ((byte(table) >> 4) <= 1 && (byte(table) & 15) <= 3)
          huffman[byte(table) >> 4] |= 1u << (byte(table) & 15);
        table += 17 + codes;
      }
    } else if (marker == 0xDB) {  // DQT: tables of 1 + 64 (8-bit) or 1 + 128 (16-bit) bytes
      for (size_t table = pos + 4; table < end; table += (byte(table) >> 4) == 0 ? 65 : 129) {
        if ((byte(table) & 15) <= 3) quantisation |= 1u << (byte(table) & 15);
      }
    } else if (marker >= 0xC0 && marker <= 0xCF && marker != 0xC8 && marker != 0xCC && components == 0) {
      if (marker == 0xC3 || marker == 0xC7 || marker == 0xCB || marker == 0xCF) {
        fail(name, "lossless JPEG is not supported");
      }
      if (marker >= 0xC9) fail(name, "arithmetic-coded JPEG is not supported");
      if (marker >= 0xC5) fail(name, "hierarchical JPEG is not supported");
      if (pos + 10 > size) return;
      if (byte(pos + 4) != 8) fail(name, byte(pos + 4), "-bit JPEG is not supported (8-bit only)");
      if (byte(pos + 9) == 4) fail(name, "CMYK/YCCK JPEG (4 components) is not supported");
      progressive = marker == 0xC2;
      components = std::min<size_t>(byte(pos + 9), 3);  // stb rejects counts other than 1 and 3 itself
      for (size_t f = 0; f < components; ++f) {
        ids[f] = byte(pos + 10 + 3 * f);
        tables[f] = byte(pos + 12 + 3 * f);
      }
    } else if (marker == 0xDA) {  // SOS: the tables and coefficients the scan decodes
      const size_t count = byte(pos + 4), spectral = pos + 5 + 2 * count;
      const bool first_dc = byte(spectral) == 0 && (byte(spectral + 2) >> 4) == 0;
      const bool uses_dc = !progressive || first_dc, uses_ac = !progressive || byte(spectral) > 0;
      for (size_t c = 0; c < count; ++c) {
        const unsigned dc = byte(pos + 6 + 2 * c) >> 4, ac = byte(pos + 6 + 2 * c) & 15;
        if ((uses_dc && dc <= 3 && !(huffman[0] >> dc & 1u)) ||
            (uses_ac && ac <= 3 && !(huffman[1] >> ac & 1u))) {
          corrupt("a scan uses a Huffman table that no DHT segment defined");
        }
        for (size_t f = 0; f < components; ++f) {
          if (ids[f] != byte(pos + 5 + 2 * c)) continue;
          if (tables[f] <= 3 && !(quantisation >> tables[f] & 1u)) {
            corrupt("a scan uses a quantisation table that no DQT segment defined");
          }
          if (progressive && !first_dc && !initialised[f]) corrupt("a progressive scan refines nothing");
          initialised[f] = initialised[f] || !progressive || first_dc;
        }
      }
    }
    pos = end;
  }
}

// stb's reason for the last failure on this thread. stb sniffs the PNG signature before trying JPEG, and a
// few JPEG decoding paths (truncated entropy-coded data) fail without a reason of their own: the PNG
// sniffer's "Not a PNG" left over from that same call is then replaced by a useful one.
const char* failure_reason() {
  const char* reason = stbi_failure_reason();
  if (reason == nullptr || std::strcmp(reason, "Not a PNG") == 0) return "corrupt or truncated data";
  return reason;
}

struct StbFree {
  void operator()(void* pixels) const { stbi_image_free(pixels); }
};

Image decode_8bit(const uint8_t* data, int size, const std::string& name, const char* format) {
  int width = 0, height = 0, channels = 0;
  std::unique_ptr<uint8_t, StbFree> pixels(stbi_load_from_memory(data, size, &width, &height, &channels, 3));
  if (!pixels) fail(name, "cannot decode ", format, ": ", failure_reason());
  Image image;
  image.height = height;
  image.width = width;
  image.pixels.assign(pixels.get(), pixels.get() + size_t(height) * size_t(width) * 3);
  return image;
}

// 16-bit PNG: round v / 257 to the nearest 8-bit level (stb alone would drop the low byte).
Image decode_16bit_png(const uint8_t* data, int size, const std::string& name) {
  int width = 0, height = 0, channels = 0;
  std::unique_ptr<uint16_t, StbFree> pixels(
      stbi_load_16_from_memory(data, size, &width, &height, &channels, 3));
  if (!pixels) fail(name, "cannot decode PNG: ", failure_reason());
  Image image(height, width);
  const uint16_t* in = pixels.get();
  for (uint8_t& out : image.pixels) out = static_cast<uint8_t>((*in++ + 128u) / 257u);
  return image;
}

void append_bytes(void* context, void* data, int size) {
  auto* bytes = static_cast<std::vector<uint8_t>*>(context);
  const auto* begin = static_cast<const uint8_t*>(data);
  bytes->insert(bytes->end(), begin, begin + size);
}

void check_writable(const std::string& path, const Image& image) {
  EFFNET_CHECK(!image.empty() && image.height > 0 && image.width > 0, "cannot write '", path,
               "': the image is empty");
  EFFNET_CHECK(image.height <= INT_MAX / 3 && image.width <= INT_MAX / 3 &&
                   image.pixels.size() == size_t(image.height * image.width * 3),
               "cannot write '", path, "': ", image.height, "x", image.width, " image with ",
               image.pixels.size(), " bytes");
}

}  // namespace

Image decode_image(const std::string& path) {
  std::FILE* file = std::fopen(path.c_str(), "rb");
  if (file == nullptr) fail(path, "cannot open: ", std::strerror(errno));
  const std::unique_ptr<std::FILE, int (*)(std::FILE*)> closer(file, std::fclose);
  // Sized by the file system, grown if the file grows meanwhile.
  std::error_code unknown_size;
  const uintmax_t expected = std::filesystem::file_size(path, unknown_size);
  std::vector<uint8_t> bytes(unknown_size ? size_t{1} << 16 : size_t(expected) + 1);  // + 1: EOF in one read
  size_t size = 0;
  while (true) {
    if (size == bytes.size()) bytes.resize(2 * size);
    const size_t got = std::fread(bytes.data() + size, 1, bytes.size() - size, file);
    if (got == 0) break;
    size += got;
  }
  if (std::ferror(file)) fail(path, "cannot read: ", std::strerror(errno));  // a folder: EISDIR
  return decode_image(bytes.data(), size, path);
}

Image decode_image(const uint8_t* data, size_t size, const std::string& name) {
  if (size == 0) fail(name, "the file is empty");
  if (size > size_t(INT_MAX)) fail(name, "the file is larger than 2 GiB");
  const int length = static_cast<int>(size);
  if (is_jpeg(data, size)) {
    check_jpeg(data, size, name);
    return decode_8bit(data, length, name, "JPEG");
  }
  if (is_png(data, size)) {
    if (stbi_is_16_bit_from_memory(data, length)) return decode_16bit_png(data, length, name);
    return decode_8bit(data, length, name, "PNG");
  }
  fail(name, "not a JPEG or PNG file (format: ", describe_format(data, size), ")");
}

void write_png(const std::string& path, const Image& image) {
  check_writable(path, image);
  std::vector<uint8_t> bytes;
  const int width = static_cast<int>(image.width), height = static_cast<int>(image.height);
  if (!stbi_write_png_to_func(append_bytes, &bytes, width, height, 3, image.pixels.data(), width * 3)) {
    EFFNET_FAIL("cannot write '", path, "': PNG encoding failed");
  }
  io::write_file_atomically(path, std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
}

void write_jpeg(const std::string& path, const Image& image, int quality) {
  check_writable(path, image);
  EFFNET_CHECK(quality >= 1 && quality <= 100, "cannot write '", path, "': JPEG quality ", quality,
               " is outside 1..100");
  std::vector<uint8_t> bytes;
  const int width = static_cast<int>(image.width), height = static_cast<int>(image.height);
  if (!stbi_write_jpg_to_func(append_bytes, &bytes, width, height, 3, image.pixels.data(), quality)) {
    EFFNET_FAIL("cannot write '", path, "': JPEG encoding failed");
  }
  io::write_file_atomically(path, std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
}

}  // namespace effnet::data
