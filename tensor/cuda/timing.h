// Device-side timing for benchmarks: the GPU time of the work a function queues on effnet's stream.
#pragma once

#include <functional>

namespace effnet::cuda {

// Records an event on the device's stream, runs `work` (which queues kernels there), records a second
// event, waits for it and returns the milliseconds between the two events.
double device_milliseconds(int device, const std::function<void()>& work);

}  // namespace effnet::cuda
