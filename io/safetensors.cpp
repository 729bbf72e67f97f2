// The safetensors reader and writer declared in io/safetensors.h, written without any library.
//
// Reading treats the file as hostile. The header's JSON is read by a small pull parser driven by the
// header's fixed grammar (an object of tensor objects holding strings and arrays of integers, plus one
// object of strings) rather than by building a general document: it never recurses, so no nesting can grow
// the stack; it keeps only the values the format uses; and it rejects, saying so, the JSON the format has
// no use for (fractions, exponents, negative numbers, true/false/null, unknown or duplicate keys). Every
// number is checked before it is used: the header length against a 100 MiB cap and against the file size
// (before anything is allocated), each shape's element count and byte size for overflow, and each
// tensor's data_offsets against the data area and against dtype x shape.
//
// Decisions where the format leaves room, following its README (github.com/huggingface/safetensors):
//  - "The byte buffer needs to be entirely indexed, and cannot contain holes. This prevents the creation
//    of polyglot files." So the tensors' byte ranges, sorted, must tile the data area exactly: a gap, an
//    overlap, or bytes after the last tensor are errors (the reference reader rejects them as well, "file
//    not fully covered"). A zero-size tensor's empty range must lie on a tensor boundary.
//  - A tensor entry holds exactly "dtype", "shape" and "data_offsets". The reference reader ignores other
//    keys; no writer we know of emits any, and rejecting them keeps the grammar closed.
//  - Strings must be valid UTF-8 (the header is "a JSON utf-8 string"), and \u escapes must pair their
//    surrogates, as serde_json (the reference's JSON parser) requires.
//  - The header length may be at most 100 MiB (the reference's cap is 100 MB, against huge JSON).
//  - A shape's sizes, zeros counted as 1, must multiply to at most 2^63 - 1: then the element count and the
//    strides of even a zero-size tensor fit in int64. A shape has at most 64 dimensions (NumPy's limit), so
//    that a header of "[1,1,1,..." cannot make each byte cost many bytes of memory.
//
// Writing matches the reference writer byte for byte, given the same order of tensors: compact JSON with
// "__metadata__" first (when there is metadata), strings escaped as serde_json escapes them, padded with
// spaces to a multiple of 8 bytes so that the data area starts 8-byte aligned.
#include "io/safetensors.h"

#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <limits>
#include <memory>
#include <set>
#include <string_view>
#include <system_error>

#include "autograd/grad_mode.h"
#include "tensor/half.h"
#include "tensor/ops.h"

namespace effnet::safetensors {

// Tensor data moves between the file and memory as raw bytes: the host must share the file's byte order.
static_assert(std::endian::native == std::endian::little, "safetensors I/O needs a little-endian host");

namespace {

constexpr uint64_t kMaxHeaderBytes = uint64_t{100} << 20;
constexpr std::string_view kMetadataKey = "__metadata__";
constexpr uint64_t kMaxInt64 = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
constexpr size_t kMaxDims = 64;  // NumPy's limit: every array NumPy can write is readable

template <class... Parts>
[[noreturn]] void fail(const std::string& source, const Parts&... parts) {
  throw Error(detail::concat("safetensors: ", source, ": ", parts...));
}

// A name as error messages show it: quoted, and cut short (a hostile name may be megabytes long).
std::string quote_name(std::string_view name) {
  constexpr size_t kShownBytes = 100;
  std::string shown = "'";
  shown.append(name.substr(0, kShownBytes));
  shown.append(name.size() > kShownBytes ? "...'" : "'");
  return shown;
}

// ---- dtypes

// A dtype as the file names it, and the dtype of its elements there.
struct FileDType {
  std::string_view name;
  DType stored;
};

constexpr FileDType kFileDTypes[] = {
    {"F32", DType::Float32}, {"F64", DType::Float64}, {"I64", DType::Int64},
    {"F16", DType::Float16}, {"BF16", DType::BFloat16},
};

const FileDType* find_file_dtype(std::string_view name) {
  for (const FileDType& dtype : kFileDTypes) {
    if (dtype.name == name) return &dtype;
  }
  return nullptr;
}

// ---- UTF-8

// The length (1 to 4) of the well-formed UTF-8 sequence that starts `text`, or 0 when there is none:
// overlong forms, surrogates, code points above U+10FFFF and cut sequences are not well-formed.
size_t utf8_sequence_length(std::string_view text) {
  const auto byte = [&](size_t k) { return static_cast<uint8_t>(text[k]); };
  const uint8_t lead = byte(0);
  if (lead < 0x80) return 1;
  size_t length = 0;
  uint8_t second_low = 0x80, second_high = 0xBF;
  if (lead >= 0xC2 && lead <= 0xDF) {
    length = 2;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    length = 3;
    if (lead == 0xE0) second_low = 0xA0;   // overlong below U+0800
    if (lead == 0xED) second_high = 0x9F;  // surrogates U+D800..U+DFFF
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    length = 4;
    if (lead == 0xF0) second_low = 0x90;   // overlong below U+10000
    if (lead == 0xF4) second_high = 0x8F;  // above U+10FFFF
  } else {
    return 0;
  }
  if (text.size() < length || byte(1) < second_low || byte(1) > second_high) return 0;
  for (size_t k = 2; k < length; ++k) {
    if (byte(k) < 0x80 || byte(k) > 0xBF) return 0;
  }
  return length;
}

bool is_valid_utf8(std::string_view text) {
  for (size_t pos = 0; pos < text.size();) {
    const size_t length = utf8_sequence_length(text.substr(pos));
    if (length == 0) return false;
    pos += length;
  }
  return true;
}

void append_utf8(std::string& out, uint32_t code_point) {
  if (code_point < 0x80) {
    out += static_cast<char>(code_point);
  } else if (code_point < 0x800) {
    out += static_cast<char>(0xC0 | (code_point >> 6));
    out += static_cast<char>(0x80 | (code_point & 0x3F));
  } else if (code_point < 0x10000) {
    out += static_cast<char>(0xE0 | (code_point >> 12));
    out += static_cast<char>(0x80 | ((code_point >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (code_point & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (code_point >> 18));
    out += static_cast<char>(0x80 | ((code_point >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((code_point >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (code_point & 0x3F));
  }
}

// ---- the header's JSON

// Reads JSON values one at a time, as the caller's grammar asks for them. Errors name the source, the
// byte's offset in the file, what was being read (the context) and what was expected and found.
class JsonReader {
 public:
  // `text` is the header, which starts at byte `file_offset` of the file.
  JsonReader(std::string_view text, size_t file_offset, const std::string& source)
      : text_(text), file_offset_(file_offset), source_(source) {}

  // What is being read, for error messages ("tensor 'w', key 'shape'").
  void set_context(std::string context) { context_ = std::move(context); }

  template <class... Parts>
  [[noreturn]] void fail(const Parts&... parts) const {
    safetensors::fail(source_, "header", context_.empty() ? "" : ", ", context_, ", at byte ",
                      file_offset_ + pos_, ": ", parts...);
  }

  // Reads an object, calling read_member(key) with the reader at each member's value, which read_member
  // must consume. The context is restored after each member.
  template <class ReadMember>
  void read_object(ReadMember&& read_member) {
    expect_value('{', "an object");
    if (consume('}')) return;
    const std::string context = context_;
    while (true) {
      skip_whitespace();
      if (peek() != '"') fail_expecting("a string (a key)");
      const std::string key = read_string_body();
      if (!consume(':')) fail_expecting("':'");
      read_member(key);
      context_ = context;
      if (consume(',')) continue;
      if (consume('}')) return;
      fail_expecting("',' or '}'");
    }
  }

  // Reads an array, calling read_item() with the reader at each item.
  template <class ReadItem>
  void read_array(ReadItem&& read_item) {
    expect_value('[', "an array");
    if (consume(']')) return;
    while (true) {
      read_item();
      if (consume(',')) continue;
      if (consume(']')) return;
      fail_expecting("',' or ']'");
    }
  }

  std::string read_string() {
    skip_whitespace();
    if (peek() != '"') fail_expecting("a string");
    return read_string_body();
  }

  uint64_t read_unsigned() {
    skip_whitespace();
    if (!is_digit(peek())) fail_expecting("a non-negative integer");
    const size_t start = pos_;
    uint64_t value = 0;
    for (; pos_ < text_.size() && is_digit(text_[pos_]); ++pos_) {
      const uint64_t digit = static_cast<uint64_t>(text_[pos_] - '0');
      if (value > (std::numeric_limits<uint64_t>::max() - digit) / 10) fail("an integer above 2^64 - 1");
      value = value * 10 + digit;
    }
    if (pos_ - start > 1 && text_[start] == '0') {
      pos_ = start;
      fail("a number with a leading zero, which JSON does not allow");
    }
    if (pos_ < text_.size() && (text_[pos_] == '.' || text_[pos_] == 'e' || text_[pos_] == 'E')) {
      fail("expected a non-negative integer, found a fraction or an exponent (safetensors shapes and "
           "offsets are integers)");
    }
    return value;
  }

  // Only whitespace may follow the top-level object (the reference writer pads with spaces).
  void expect_end() {
    skip_whitespace();
    if (pos_ != text_.size()) fail_expecting("the end of the header after the top-level object");
  }

 private:
  static bool is_digit(int c) { return c >= '0' && c <= '9'; }

  // The next byte, or -1 at the end of the header.
  int peek() const { return pos_ < text_.size() ? static_cast<uint8_t>(text_[pos_]) : -1; }

  void skip_whitespace() {
    while (pos_ < text_.size() &&
           (text_[pos_] == ' ' || text_[pos_] == '\t' || text_[pos_] == '\n' || text_[pos_] == '\r')) {
      ++pos_;
    }
  }

  // Skips whitespace; consumes `c` and returns true when it comes next.
  bool consume(char c) {
    skip_whitespace();
    if (peek() != static_cast<uint8_t>(c)) return false;
    ++pos_;
    return true;
  }

  void expect_value(char opening, const char* what) {
    if (!consume(opening)) fail_expecting(what);
  }

  [[noreturn]] void fail_expecting(const char* what) const { fail("expected ", what, ", found ", found()); }

  // What the reader stands at, in words.
  std::string found() const {
    const int c = peek();
    if (c < 0) return "the end of the header";
    if (c == '"') return "a string";
    if (c == '{') return "an object";
    if (c == '[') return "an array";
    if (c == '-') return "a negative number";
    if (is_digit(c)) return "a number";
    if (c == 't' || c == 'f' || c == 'n') return "a literal (true, false and null have no place in a header)";
    if (c > 0x20 && c < 0x7F) return detail::concat("'", static_cast<char>(c), "'");
    static constexpr char kHex[] = "0123456789abcdef";
    return detail::concat("the byte 0x", kHex[c >> 4], kHex[c & 15]);
  }

  // Reads a string whose opening quote is the next byte.
  std::string read_string_body() {
    ++pos_;
    std::string out;
    while (true) {
      const int c = peek();
      if (c < 0) fail("a string runs to the end of the header");
      if (c == '"') {
        ++pos_;
        return out;
      }
      if (c == '\\') {
        read_escape(out);
      } else if (c < 0x20) {
        fail("a control character inside a string, where JSON requires an escape");
      } else {
        const size_t length = utf8_sequence_length(text_.substr(pos_));
        if (length == 0) fail("bytes that are not UTF-8 inside a string");
        out.append(text_.substr(pos_, length));
        pos_ += length;
      }
    }
  }

  // Reads the escape at the reader (a backslash and what follows) and appends what it stands for.
  void read_escape(std::string& out) {
    ++pos_;
    const int c = peek();
    if (c < 0) fail("a string runs to the end of the header");
    ++pos_;
    switch (c) {
      case '"': out += '"'; return;
      case '\\': out += '\\'; return;
      case '/': out += '/'; return;
      case 'b': out += '\b'; return;
      case 'f': out += '\f'; return;
      case 'n': out += '\n'; return;
      case 'r': out += '\r'; return;
      case 't': out += '\t'; return;
      case 'u': break;
      default: pos_ -= 2; fail("an invalid escape in a string");
    }
    uint32_t code_point = read_hex4();
    if (code_point >= 0xDC00 && code_point <= 0xDFFF) fail("a \\u escape of a lone low surrogate");
    if (code_point >= 0xD800 && code_point <= 0xDBFF) {
      constexpr const char* kUnpaired = "a \\u escape of a high surrogate that no low surrogate follows";
      if (peek() != '\\' || pos_ + 1 >= text_.size() || text_[pos_ + 1] != 'u') fail(kUnpaired);
      pos_ += 2;
      const uint32_t low = read_hex4();
      if (low < 0xDC00 || low > 0xDFFF) fail(kUnpaired);
      code_point = 0x10000 + ((code_point - 0xD800) << 10) + (low - 0xDC00);
    }
    append_utf8(out, code_point);
  }

  uint32_t read_hex4() {
    uint32_t value = 0;
    for (int k = 0; k < 4; ++k) {
      const int c = peek();
      uint32_t digit = 0;
      if (is_digit(c)) {
        digit = static_cast<uint32_t>(c - '0');
      } else if (c >= 'a' && c <= 'f') {
        digit = static_cast<uint32_t>(c - 'a' + 10);
      } else if (c >= 'A' && c <= 'F') {
        digit = static_cast<uint32_t>(c - 'A' + 10);
      } else {
        fail("a \\u escape without four hex digits");
      }
      value = value * 16 + digit;
      ++pos_;
    }
    return value;
  }

  std::string_view text_;
  size_t file_offset_;
  const std::string& source_;
  std::string context_;
  size_t pos_ = 0;
};

// One tensor as the header describes it.
struct Entry {
  std::string name;
  const FileDType* dtype = nullptr;
  Shape shape;
  uint64_t begin = 0;  // data_offsets, relative to the data area
  uint64_t end = 0;
};

struct Header {
  std::vector<Entry> entries;  // in header order
  std::map<std::string, std::string> metadata;
};

Entry read_entry(JsonReader& json, const std::string& name) {
  Entry entry;
  entry.name = name;
  const std::string context = "tensor " + quote_name(name);
  json.set_context(context);
  bool has_dtype = false, has_shape = false, has_offsets = false;
  json.read_object([&](const std::string& key) {
    json.set_context(context + ", key " + quote_name(key));
    const auto mark_seen = [&](bool& seen) {
      if (seen) json.fail("a duplicate key");
      seen = true;
    };
    if (key == "dtype") {
      mark_seen(has_dtype);
      const std::string dtype = json.read_string();
      entry.dtype = find_file_dtype(dtype);
      if (entry.dtype == nullptr) {
        json.fail("dtype ", quote_name(dtype), " is not one that effnet reads (F32, F64, I64, F16, BF16)");
      }
    } else if (key == "shape") {
      mark_seen(has_shape);
      json.read_array([&] {
        if (entry.shape.size() == kMaxDims) json.fail("more than ", kMaxDims, " dimensions");
        const uint64_t size = json.read_unsigned();
        if (size > kMaxInt64) json.fail("a size above 2^63 - 1");
        entry.shape.push_back(static_cast<int64_t>(size));
      });
    } else if (key == "data_offsets") {
      mark_seen(has_offsets);
      size_t count = 0;
      json.read_array([&] {
        const uint64_t offset = json.read_unsigned();
        if (count == 2) json.fail("more than two data_offsets (expected [begin, end])");
        if (count == 0) {
          entry.begin = offset;
        } else {
          entry.end = offset;
        }
        ++count;
      });
      if (count != 2) json.fail(count, " data_offsets (expected two, [begin, end])");
    } else {
      json.fail("an unknown key (a tensor holds only 'dtype', 'shape' and 'data_offsets')");
    }
  });
  json.set_context(context);
  if (!has_dtype) json.fail("no 'dtype'");
  if (!has_shape) json.fail("no 'shape'");
  if (!has_offsets) json.fail("no 'data_offsets'");
  return entry;
}

Header read_header(std::string_view text, size_t file_offset, const std::string& source) {
  JsonReader json(text, file_offset, source);
  Header header;
  std::set<std::string> names;
  bool has_metadata = false;
  json.read_object([&](const std::string& key) {
    if (key == kMetadataKey) {
      json.set_context(quote_name(kMetadataKey));
      if (has_metadata) json.fail("a second '__metadata__'");
      has_metadata = true;
      json.read_object([&](const std::string& metadata_key) {
        json.set_context(quote_name(kMetadataKey) + ", key " + quote_name(metadata_key));
        std::string value = json.read_string();
        if (!header.metadata.emplace(metadata_key, std::move(value)).second) json.fail("a duplicate key");
      });
      return;
    }
    if (!names.insert(key).second) json.fail("a duplicate tensor name ", quote_name(key));
    header.entries.push_back(read_entry(json, key));
  });
  json.expect_end();
  return header;
}

// The byte size of `entry`'s data, after checking that its element count and byte size are representable.
uint64_t checked_byte_size(const Entry& entry, const std::string& source) {
  uint64_t span = 1;  // the product of the sizes, zeros counted as 1: bounds every partial product
  uint64_t elements = 1;
  for (int64_t size : entry.shape) {
    const uint64_t factor = size > 1 ? static_cast<uint64_t>(size) : 1;
    if (span > kMaxInt64 / factor) {
      fail(source, "tensor ", quote_name(entry.name), ": shape ", shape_str(entry.shape),
           " has more elements than an int64 can count");
    }
    span *= factor;
    elements *= static_cast<uint64_t>(size);
  }
  const uint64_t element_bytes = element_size(entry.dtype->stored);
  if (elements > std::numeric_limits<uint64_t>::max() / element_bytes) {
    fail(source, "tensor ", quote_name(entry.name), ": ", entry.dtype->name, " ", shape_str(entry.shape),
         " has more bytes than a uint64 can count");
  }
  return elements * element_bytes;
}

// Checks each entry's data_offsets against its dtype x shape and the data area (`data_bytes` long), and
// that the entries' byte ranges tile the data area exactly. Returns the entries in the order of their data.
std::vector<Entry> check_layout(std::vector<Entry> entries, uint64_t data_bytes, const std::string& source) {
  const auto describe = [](const Entry& entry) {
    return detail::concat("tensor ", quote_name(entry.name), " (", entry.dtype->name, " ",
                          shape_str(entry.shape), ", data_offsets [", entry.begin, ", ", entry.end, "])");
  };
  for (const Entry& entry : entries) {
    const uint64_t bytes = checked_byte_size(entry, source);
    if (entry.begin > entry.end) fail(source, describe(entry), ": the range ends before it begins");
    if (entry.end > data_bytes) {
      fail(source, describe(entry), ": the range ends past the data area, which holds ", data_bytes,
           " bytes");
    }
    if (entry.end - entry.begin != bytes) {
      fail(source, describe(entry), ": the range holds ", entry.end - entry.begin,
           " bytes, but dtype x shape needs ", bytes);
    }
  }
  std::stable_sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  uint64_t covered = 0;
  const Entry* previous = nullptr;
  for (const Entry& entry : entries) {
    if (entry.begin < covered) fail(source, describe(entry), " overlaps ", describe(*previous));
    if (entry.begin > covered) {
      fail(source, "bytes [", covered, ", ", entry.begin, ") of the data area, before ", describe(entry),
           ", belong to no tensor (the data area must be covered exactly, without holes)");
    }
    covered = entry.end;
    previous = &entry;
  }
  if (covered != data_bytes) {
    fail(source, "the last ", data_bytes - covered, " bytes of the data area belong to no tensor (the data "
         "area must be covered exactly, without trailing bytes)");
  }
  return entries;
}

// A CPU tensor holding `entry`'s data, which starts at `bytes` (no alignment assumed).
Tensor read_tensor(const Entry& entry, const uint8_t* bytes) {
  const DType stored = entry.dtype->stored;
  const bool widen = is_16bit(stored);
  Tensor tensor = empty(entry.shape, widen ? kFloat32 : stored);
  const size_t elements = static_cast<size_t>(tensor.numel());
  if (elements == 0) return tensor;
  if (!widen) {
    std::memcpy(tensor.data_ptr(), bytes, elements * element_size(stored));
    return tensor;
  }
  auto* out = static_cast<uint8_t*>(tensor.data_ptr());
  for (size_t k = 0; k < elements; ++k) {
    uint16_t half = 0;
    std::memcpy(&half, bytes + 2 * k, sizeof half);
    // Exact: every float16 and bfloat16 is a float32 (tensor/half.h).
    const uint32_t bits = float_bits(stored == DType::Float16 ? float16_bits_to_float(half) : bfloat16_bits_to_float(half));
    std::memcpy(out + 4 * k, &bits, sizeof bits);
  }
  return tensor;
}

// ---- writing

// Appends `text` as a JSON string, escaped as serde_json (the reference writer) escapes it.
void append_json_string(std::string& out, std::string_view text) {
  static constexpr char kHex[] = "0123456789abcdef";
  out += '"';
  for (char c : text) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (static_cast<uint8_t>(c) < 0x20) {
          out += "\\u00";
          out += kHex[static_cast<uint8_t>(c) >> 4];
          out += kHex[static_cast<uint8_t>(c) & 15];
        } else {
          out += c;
        }
    }
  }
  out += '"';
}

const char* writable_dtype_name(DType dtype) {
  switch (dtype) {
    case DType::Float32: return "F32";
    case DType::Float64: return "F64";
    case DType::Int64: return "I64";
    default: return nullptr;
  }
}

// The header of a file holding `tensors` and `metadata`, padded to a multiple of 8 bytes; checks that the
// file can be written and read back (writable dtypes, unique UTF-8 names, UTF-8 metadata).
std::string build_header(const std::string& path, const NamedTensors& tensors,
                         const std::map<std::string, std::string>& metadata) {
  std::string header = "{";
  if (!metadata.empty()) {
    append_json_string(header, kMetadataKey);
    header += ":{";
    for (const auto& [key, value] : metadata) {
      if (!is_valid_utf8(key) || !is_valid_utf8(value)) {
        fail(path, "metadata key ", quote_name(key), ": keys and values must be UTF-8");
      }
      if (header.back() != '{') header += ',';
      append_json_string(header, key);
      header += ':';
      append_json_string(header, value);
    }
    header += '}';
  }
  std::set<std::string_view> names;
  uint64_t offset = 0;
  for (const auto& [name, tensor] : tensors) {
    if (!tensor.defined()) fail(path, "tensor ", quote_name(name), " is undefined");
    const char* dtype = writable_dtype_name(tensor.dtype());
    if (dtype == nullptr) {
      fail(path, "tensor ", quote_name(name), " is ", tensor.dtype(),
           "; safetensors::save writes float32, float64 and int64 only (cast it first)");
    }
    if (name == kMetadataKey) fail(path, "a tensor cannot be called ", quote_name(kMetadataKey));
    if (!is_valid_utf8(name)) fail(path, "tensor ", quote_name(name), ": names must be UTF-8");
    if (!names.insert(name).second) fail(path, "two tensors are called ", quote_name(name));
    const uint64_t bytes = static_cast<uint64_t>(tensor.numel()) * element_size(tensor.dtype());
    if (header.size() > 1) header += ',';
    append_json_string(header, name);
    header += detail::concat(":{\"dtype\":\"", dtype, "\",\"shape\":[");
    for (size_t d = 0; d < tensor.shape().size(); ++d) {
      header += detail::concat(d ? "," : "", tensor.shape()[d]);
    }
    header += detail::concat("],\"data_offsets\":[", offset, ",", offset + bytes, "]}");
    offset += bytes;
  }
  header += '}';
  header.append((8 - header.size() % 8) % 8, ' ');
  return header;
}

// A file being written. Every failure throws naming the path; an abandoned file is closed.
class OutputFile {
 public:
  explicit OutputFile(std::string path) : path_(std::move(path)), file_(std::fopen(path_.c_str(), "wb")) {
    if (file_ == nullptr) fail(path_, "cannot open for writing: ", std::strerror(errno));
  }
  ~OutputFile() {
    if (file_ != nullptr) std::fclose(file_);
  }
  OutputFile(const OutputFile&) = delete;
  OutputFile& operator=(const OutputFile&) = delete;

  void write(const void* bytes, size_t size) {
    if (size != 0 && std::fwrite(bytes, 1, size, file_) != size) {
      fail(path_, "cannot write: ", std::strerror(errno));
    }
  }

  // Flushes the data to the disk, so that renaming the file afterwards never exposes a partial one, and
  // closes it.
  void close() {
    const bool synced = std::fflush(file_) == 0 && ::fsync(::fileno(file_)) == 0;
    const int sync_error = errno;
    const bool closed = std::fclose(file_) == 0;
    file_ = nullptr;
    if (!synced || !closed) fail(path_, "cannot write: ", std::strerror(synced ? errno : sync_error));
  }

 private:
  std::string path_;
  std::FILE* file_;
};

}  // namespace

Tensor File::find(const std::string& name) const {
  for (const auto& [tensor_name, tensor] : tensors) {
    if (tensor_name == name) return tensor;
  }
  return Tensor();
}

File parse(const uint8_t* data, size_t size, const std::string& source) {
  constexpr size_t kLengthBytes = sizeof(uint64_t);
  if (size < kLengthBytes) {
    fail(source, "the file holds ", size, " bytes, fewer than the 8 of the header length");
  }
  uint64_t header_bytes = 0;
  std::memcpy(&header_bytes, data, kLengthBytes);
  if (header_bytes > kMaxHeaderBytes) {
    fail(source, "the header length ", header_bytes, " is above the limit of 100 MiB (", kMaxHeaderBytes,
         " bytes)");
  }
  if (header_bytes > size - kLengthBytes) {
    fail(source, "the header length ", header_bytes, " runs past the end of the file (", size - kLengthBytes,
         " bytes follow the length)");
  }
  const std::string_view header_text(reinterpret_cast<const char*>(data + kLengthBytes), header_bytes);
  Header header = read_header(header_text, kLengthBytes, source);
  const uint8_t* data_area = data + kLengthBytes + header_bytes;
  const uint64_t data_bytes = size - kLengthBytes - header_bytes;
  std::vector<Entry> entries = check_layout(std::move(header.entries), data_bytes, source);

  File file;
  file.metadata = std::move(header.metadata);
  file.tensors.reserve(entries.size());
  for (Entry& entry : entries) {
    Tensor tensor = read_tensor(entry, data_area + entry.begin);
    file.tensors.emplace_back(std::move(entry.name), std::move(tensor));
  }
  return file;
}

File load(const std::string& path) {
  std::error_code error;
  const uintmax_t size = std::filesystem::file_size(path, error);
  if (error) fail(path, "cannot read the file: ", error.message());
  const auto close_file = [](std::FILE* file) { std::fclose(file); };
  const std::unique_ptr<std::FILE, decltype(close_file)> file(std::fopen(path.c_str(), "rb"), close_file);
  if (file == nullptr) fail(path, "cannot open the file: ", std::strerror(errno));
  std::vector<uint8_t> bytes(size);
  if (std::fread(bytes.data(), 1, bytes.size(), file.get()) != bytes.size()) {
    fail(path, "cannot read the file: ", std::ferror(file.get()) ? std::strerror(errno) : "it shrank");
  }
  return parse(bytes.data(), bytes.size(), path);
}

void save(const std::string& path, const NamedTensors& tensors,
          const std::map<std::string, std::string>& metadata) {
  const std::string header = build_header(path, tensors, metadata);
  const std::string temporary = path + ".tmp";
  try {
    OutputFile out(temporary);
    const uint64_t header_bytes = header.size();
    out.write(&header_bytes, sizeof header_bytes);
    out.write(header.data(), header.size());
    autograd::NoGradGuard no_grad;
    for (const auto& named : tensors) {
      // One tensor at a time on the host, so that saving from the GPU needs one tensor's host memory.
      const Tensor host = named.second.cpu().contiguous();
      out.write(host.data_ptr(), static_cast<size_t>(host.numel()) * element_size(host.dtype()));
    }
    out.close();
  } catch (...) {
    std::remove(temporary.c_str());
    throw;
  }
  if (std::rename(temporary.c_str(), path.c_str()) != 0) {
    const int rename_error = errno;
    std::remove(temporary.c_str());
    fail(path, "cannot rename ", quote_name(temporary), " over it: ", std::strerror(rename_error));
  }
}

}  // namespace effnet::safetensors
