// Writing a file so that readers see the old contents or the new, never half of either: the bytes go to
// PATH.tmp, which is then renamed over PATH (rename is atomic within a file system). On any failure the
// temporary file is removed and an Error names PATH and the system's reason.
#pragma once

#include <string>
#include <string_view>

namespace effnet::io {

void write_file_atomically(const std::string& path, std::string_view bytes);

}  // namespace effnet::io
