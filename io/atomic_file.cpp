#include "io/atomic_file.h"

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "tensor/error.h"

namespace effnet::io {

void write_file_atomically(const std::string& path, std::string_view bytes) {
  const std::string temporary = path + ".tmp";
  std::FILE* file = std::fopen(temporary.c_str(), "wb");
  EFFNET_CHECK(file != nullptr, "cannot write '", path, "': cannot open '", temporary, "': ", std::strerror(errno));
  const bool written = std::fwrite(bytes.data(), 1, bytes.size(), file) == bytes.size();
  const int write_error = errno;
  if (std::fclose(file) != 0 || !written) {
    const int error = written ? errno : write_error;
    std::remove(temporary.c_str());
    EFFNET_FAIL("cannot write '", path, "': ", std::strerror(error));
  }
  if (std::rename(temporary.c_str(), path.c_str()) != 0) {
    const int error = errno;
    std::remove(temporary.c_str());
    EFFNET_FAIL("cannot write '", path, "': cannot rename '", temporary, "' over it: ", std::strerror(error));
  }
}

}  // namespace effnet::io
