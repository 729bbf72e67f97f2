// Shortest round-trip formatting and strict parsing of the numbers in saved state (std::to_chars and
// std::from_chars: locale-independent and exact).
#include "optim/serialize.h"

#include <charconv>

#include "tensor/error.h"

namespace effnet {

std::string format_number(double value) {
  char buffer[64];
  const auto result = std::to_chars(buffer, buffer + sizeof(buffer), value);
  return std::string(buffer, result.ptr);
}

double parse_number(const std::string& text, const std::string& what) {
  double value = 0;
  const auto result = std::from_chars(text.data(), text.data() + text.size(), value);
  EFFNET_CHECK(result.ec == std::errc() && result.ptr == text.data() + text.size(), what,
               ": expected a number, got '", text, "'");
  return value;
}

int64_t parse_integer(const std::string& text, const std::string& what) {
  int64_t value = 0;
  const auto result = std::from_chars(text.data(), text.data() + text.size(), value);
  EFFNET_CHECK(result.ec == std::errc() && result.ptr == text.data() + text.size(), what,
               ": expected an integer, got '", text, "'");
  return value;
}

const std::string& metadata_value(const std::map<std::string, std::string>& metadata, const std::string& key,
                                  const std::string& context) {
  const auto found = metadata.find(key);
  EFFNET_CHECK(found != metadata.end(), context, ": the state has no '", key, "' entry");
  return found->second;
}

}  // namespace effnet
