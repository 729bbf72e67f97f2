// libFuzzer target for the safetensors reader: any input must make safetensors::parse return or throw
// effnet::Error. A crash, a sanitizer report, a leak, another exception or a hang is a bug.
//
// Build (clang only; the whole effnet library is then built with ASan and UBSan and coverage
// instrumentation, so use a build folder of its own):
//
//   CC=clang CXX=clang++ cmake -S . -B build-fuzz -G Ninja -DEFFNET_CUDA=OFF -DEFFNET_FUZZ=ON \
//       -DCMAKE_BUILD_TYPE=RelWithDebInfo
//   cmake --build build-fuzz --target fuzz_safetensors
//
// Run, from a copy of the seed corpus (libFuzzer adds the inputs it finds to the first folder):
//
//   mkdir -p /tmp/st-corpus && cp tests/fuzz/corpus/* /tmp/st-corpus/
//   ./build-fuzz/tests/fuzz/fuzz_safetensors /tmp/st-corpus -dict=tests/fuzz/safetensors.dict \
//       -max_total_time=300 -max_len=4096 -rss_limit_mb=2048
//
// A crashing input is written to ./crash-<sha1>; rerun it with ./build-fuzz/tests/fuzz/fuzz_safetensors
// crash-<sha1>. The seeds in corpus/ are small valid files: every dtype, a scalar, zero-size tensors,
// metadata with escapes, and the reference writer's padding.
#include <cstddef>
#include <cstdint>

#include "io/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    effnet::safetensors::parse(data, size, "fuzz input");
  } catch (const effnet::Error&) {
    // A rejected file is the expected outcome for most inputs.
  }
  return 0;
}
