// The CUDA profiler's names for convolutions (EFFNET_PROFILE=1): host logic, so it runs wherever CUDA is
// compiled in, GPU or not. EfficientNet's convolutions by kind: its stem, depthwise, pointwise and
// squeeze-excite ones.
#include <gtest/gtest.h>

#if defined(EFFNET_WITH_CUDA)
#include "tensor/cuda/profiler.h"

namespace effnet {
namespace {

TEST(Profiler, NamesEachKindOfConvolution) {
  Conv2dGeometry g;
  EXPECT_EQ(cuda::conv_kind(g, {32, 3, 380, 380}, {48, 3, 3, 3}), "3x3");                  // the stem
  EXPECT_EQ(cuda::conv_kind(g, {32, 144, 95, 95}, {24, 144, 1, 1}), "1x1");                // pointwise
  EXPECT_EQ(cuda::conv_kind(g, {32, 144, 1, 1}, {6, 144, 1, 1}), "1x1 squeeze-excite");    // SE reduce
  g.groups = 144;
  EXPECT_EQ(cuda::conv_kind(g, {32, 144, 95, 95}, {144, 1, 5, 5}), "depthwise 5x5");
  g.groups = 2;
  EXPECT_EQ(cuda::conv_kind(g, {32, 8, 9, 9}, {4, 4, 3, 3}), "grouped 3x3");
}

}  // namespace
}  // namespace effnet
#endif  // EFFNET_WITH_CUDA: the profiler is the CUDA row's
