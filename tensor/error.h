// Errors: every failure is an effnet::Error whose message names the op, the tensors and what was expected.
//
//   EFFNET_CHECK(a.dim() == 4, "conv2d: expected a 4-D input [N, C, H, W], got ", a.shape());
//
// The message parts are streamed, so shapes, dtypes and devices print themselves.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>

namespace effnet {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Thrown when a device allocation fails even after the allocator released its cache.
class OutOfMemoryError : public Error {
 public:
  using Error::Error;
};

namespace detail {
template <class... Parts>
std::string concat(const Parts&... parts) {
  std::ostringstream os;
  (os << ... << parts);
  return os.str();
}
}  // namespace detail

}  // namespace effnet

#define EFFNET_CHECK(cond, ...)                                               \
  do {                                                                        \
    if (!(cond)) throw ::effnet::Error(::effnet::detail::concat(__VA_ARGS__)); \
  } while (0)

#define EFFNET_FAIL(...) throw ::effnet::Error(::effnet::detail::concat(__VA_ARGS__))
