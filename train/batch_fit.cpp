#include "train/batch_fit.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <sstream>

#include "tensor/backend.h"
#include "tensor/error.h"
#include "tensor/memory.h"

namespace effnet::train {
namespace {

constexpr int64_t kUnknown = std::numeric_limits<int64_t>::max();
constexpr int64_t kLargestGuess = int64_t{1} << 40;  // keeps every sum below from overflowing

// The grid of batches: every size below `m`, then the multiples of `m`.
int64_t grid_floor(int64_t x, int64_t m) { return x < m ? x : x / m * m; }
int64_t grid_above(int64_t x, int64_t m) { return x + 1 < m ? x + 1 : (x / m + 1) * m; }  // smallest point > x
int64_t grid_below(int64_t x, int64_t m) { return grid_floor(x - 1, m); }                 // largest point < x

// Where the line through the two largest fitting trials reaches `capacity`, if they make a rising line; else
// the line from the smallest fitting trial to the largest (near a full device the allocator's peaks vary by
// more than the few images between the last two trials, whose line can even fall: seen on an H200).
std::optional<double> predicted_batch(const std::vector<BatchTrial>& trials, size_t capacity) {
  if (capacity == 0) return std::nullopt;
  const BatchTrial* largest = nullptr;
  const BatchTrial* second = nullptr;
  const BatchTrial* smallest = nullptr;
  for (const BatchTrial& t : trials) {
    if (!t.peak_bytes) continue;
    if (largest == nullptr || t.batch > largest->batch) {
      second = largest;
      largest = &t;
    } else if (t.batch < largest->batch && (second == nullptr || t.batch > second->batch)) {
      second = &t;
    }
    if (smallest == nullptr || t.batch < smallest->batch) smallest = &t;
  }
  if (second == nullptr) return std::nullopt;
  auto per_image = [&](const BatchTrial* from) {
    return (static_cast<double>(*largest->peak_bytes) - static_cast<double>(*from->peak_bytes)) /
           static_cast<double>(largest->batch - from->batch);
  };
  double bytes_per_image = per_image(second);
  if (!(bytes_per_image > 0)) bytes_per_image = per_image(smallest);
  if (!(bytes_per_image > 0)) return std::nullopt;
  return static_cast<double>(largest->batch) +
         (static_cast<double>(capacity) - static_cast<double>(*largest->peak_bytes)) / bytes_per_image;
}

}  // namespace

std::string BatchFit::describe() const {
  std::ostringstream os;
  for (size_t i = 0; i < trials.size(); ++i) {
    if (i > 0) os << ", ";
    os << trials[i].batch << ": ";
    if (trials[i].peak_bytes) {
      os << (*trials[i].peak_bytes >> 20) << " MiB";
    } else {
      os << "out of memory";
    }
  }
  return os.str();
}

BatchFit find_largest_batch(const BatchFitOptions& options, const TryBatch& try_batch) {
  const int64_t m = options.multiple;
  EFFNET_CHECK(options.start >= 1 && options.start <= kLargestGuess && m >= 1 && m <= kLargestGuess &&
                   options.max_trials >= 1,
               "find_largest_batch: expected start and multiple in [1, 2^40] and max_trials >= 1, got start ",
               options.start, ", multiple ", m, ", max_trials ", options.max_trials);
  BatchFit fit;
  int64_t lo = 0, hi = kUnknown;  // the largest batch that fitted, the smallest that did not
  int64_t guess = options.start;
  int64_t stride = m;     // how far a gallop step goes from the last trial
  bool aimed = false;     // the guesses aim at the boundary (since the line's first guess)
  bool galloped = false;  // the last guess was a gallop step (a stride from the bracket's end)
  for (;;) {
    const std::optional<size_t> peak = try_batch(guess);
    const bool fits = peak.has_value();
    const bool same_way = !fit.trials.empty() && fit.trials.back().peak_bytes.has_value() == fits;
    fit.trials.push_back({guess, peak});
    (fits ? lo : hi) = guess;
    stride = same_way && galloped ? std::min(stride * 2, kLargestGuess) : m;

    const int64_t lowest = grid_above(lo, m);  // the smallest batch not yet known to fit
    if (hi != kUnknown && lowest >= hi) {
      fit.exact = true;
      break;
    }
    if (static_cast<int>(fit.trials.size()) >= options.max_trials || lowest > kLargestGuess) break;

    const std::optional<double> line = fits ? predicted_batch(fit.trials, options.capacity) : std::nullopt;
    const int64_t on_line =
        line ? grid_floor(static_cast<int64_t>(std::min(*line, 16.0 * static_cast<double>(lo))), m) : 0;
    galloped = false;
    if (hi == kUnknown) {  // every trial fitted: grow
      if (line) {
        aimed = true;
        galloped = on_line < lo + stride;
        guess = galloped ? lo + stride : on_line;
      } else if (aimed) {  // no rising line any more: step on from the largest fit rather than double it
        galloped = true;
        guess = lo + stride;
      } else {
        guess = 2 * lo;
      }
      guess = std::max(grid_floor(std::min(guess, kLargestGuess), m), lowest);
    } else {
      const int64_t middle = grid_floor(lo + (hi - lo) / 2, m);
      if (fits && on_line > lo) {
        aimed = true;
        guess = on_line;
      } else if (aimed) {
        galloped = true;
        guess = fits ? std::min(lo + stride, middle) : std::max(hi - stride, middle);
      } else {
        guess = middle;
      }
      guess = std::clamp(grid_floor(guess, m), lowest, grid_below(hi, m));
    }
  }
  fit.batch = lo;
  return fit;
}

std::optional<size_t> peak_memory_of(Device device, const std::function<void()>& steps) {
  empty_cache(device);
  reset_peak_memory_stats(device);
  try {
    steps();
    backend(device, "peak_memory_of").synchronize(device);
  } catch (const OutOfMemoryError&) {
    empty_cache(device);
    return std::nullopt;
  }
  return memory_stats(device).peak_reserved;
}

}  // namespace effnet::train
