// A per-kernel GPU-time profile of the CUDA row of the dispatch table, for finding where a training step's
// time goes (docs/performance.md; effnet_bench turns it on for its timed steps when EFFNET_PROFILE=1). While
// on, backend() hands out a copy of the CUDA row whose every kernel entry records a CUDA event before and
// after the real entry on its device's stream; profile_report() waits for the device and sums the times
// per entry (unary and binary ops by their op, so "silu" and "mul" are apart; convolutions by kind,
// conv_kind). The events cost a little
// host time per call, so time steps without it; the profile's share of each entry is what it is for.
#pragma once

#include <string>

#include "tensor/backend.h"

namespace effnet::cuda {

void set_profiling(bool on);
bool profiling();
const Backend& profiled_backend();
// A table of the entries by total GPU time: calls, milliseconds in total and per `steps`, share of the sum;
// then clears the records.
std::string profile_report(int steps);

// How a profile names a convolution of weight [K, C / groups, R, S] on an input [N, C, H, W]: "depthwise
// RxS", "grouped RxS", "1x1 squeeze-excite" (a 1x1 convolution of a 1x1 input: squeeze-excite's), "1x1", or
// "RxS".
std::string conv_kind(const Conv2dGeometry& g, const Shape& input, const Shape& weight);

}  // namespace effnet::cuda
