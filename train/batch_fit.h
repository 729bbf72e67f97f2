// The largest batch whose training step fits in a device's memory, in few trials: a trial is costly (steps
// at a new shape, and on CUDA a cuDNN algorithm search for each of the model's convolutions).
//
// Peak memory grows about linearly with the batch (the activations) over a fixed part (weights, gradients,
// optimizer state, workspaces). Two fitting trials give that line (the two largest, or, when the
// allocator's noise near a full device makes theirs fall, the smallest and the largest), and the batch
// where it meets the device's capacity is the next guess. From each trial the search gallops away from it (1, 2, 4, ...
// multiples) while that stays inside the bracket [largest fit, smallest failure], at most to the bracket's
// middle, so it ends in about log2 of the prediction's error, and at worst bisects. Without a capacity it
// doubles from the start until a batch fails.
//
// Batches are multiples of `multiple` (below `multiple`, any size), except the start.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "tensor/device.h"

namespace effnet::train {

struct BatchTrial {
  int64_t batch = 0;
  std::optional<size_t> peak_bytes;  // empty: out of memory
};

struct BatchFit {
  int64_t batch = 0;   // the largest batch that fitted; 0 when none did
  bool exact = false;  // the next batch on the grid failed (false: max_trials ran out first)
  std::vector<BatchTrial> trials;
  std::string describe() const;  // "32 fits (1.2 GiB), 64 fits (2.3 GiB), 424 out of memory, ..."
};

struct BatchFitOptions {
  int64_t start = 32;
  int64_t multiple = 8;
  size_t capacity = 0;  // bytes the device could hold (tensor/memory.h's memory_capacity); 0: unknown
  int max_trials = 24;
};

// `try_batch(batch)` runs the steps to test and returns their peak memory, or nothing when they ran out of
// memory; it must leave the device as it found it either way. Fitting must be monotone in the batch.
using TryBatch = std::function<std::optional<size_t>(int64_t batch)>;

BatchFit find_largest_batch(const BatchFitOptions& options, const TryBatch& try_batch);

// A TryBatch's measurement: runs `steps` from an emptied cache and returns the peak bytes that `device`'s
// allocator held in segments (what a limit or a full device refuses), or nothing when an allocation threw
// OutOfMemoryError. The error's tensors and autograd graph are gone by then (the exception unwound them);
// gradients accumulated before it are not, so zero them before the next call (before, so that the emptied
// cache includes their memory).
std::optional<size_t> peak_memory_of(Device device, const std::function<void()>& steps);

}  // namespace effnet::train
