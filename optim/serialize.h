// Numbers in saved optimizer and schedule state: metadata values are strings, so doubles are written as
// their shortest round-trip decimal (reading one back gives the same bits) and read back strictly.
#pragma once

#include <cstdint>
#include <map>
#include <string>

namespace effnet {

std::string format_number(double value);
// Throw naming `what` unless `text` is a whole number of that kind.
double parse_number(const std::string& text, const std::string& what);
int64_t parse_integer(const std::string& text, const std::string& what);
// metadata[key], or an error naming `context` and the missing key.
const std::string& metadata_value(const std::map<std::string, std::string>& metadata, const std::string& key,
                                  const std::string& context);

}  // namespace effnet
