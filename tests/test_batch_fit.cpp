// The largest-batch search (train/batch_fit.h): against memory models whose answer is known, then against a
// real training step on the CPU under a memory limit, where running out of memory mid-step must leave
// nothing behind.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <optional>
#include <set>
#include <string>

#include "losses/losses.h"
#include "models/efficientnet.h"
#include "model_step.h"
#include "optim/adam.h"
#include "optim/loss_scaler.h"
#include "optim/param_groups.h"
#include "tensor/error.h"
#include "tensor/memory.h"
#include "tensor/ops.h"
#include "tensor/random.h"
#include "train/batch_fit.h"

namespace effnet::train {
namespace {

constexpr size_t MiB = size_t{1} << 20;

// A device whose steps need fixed + per_image * batch bytes (+ `jump` above `jump_from` images: a
// workspace that grows with the batch), and which records every batch it was asked to try.
struct ModelDevice {
  size_t fixed = 300 * MiB, per_image = 37 * MiB, capacity = 10000 * MiB;
  size_t jump = 0;
  int64_t jump_from = 0;
  std::vector<int64_t> tried;

  size_t peak(int64_t batch) const {
    return fixed + per_image * static_cast<size_t>(batch) + (batch > jump_from ? jump : 0);
  }
  TryBatch try_batch() {
    return [this](int64_t batch) -> std::optional<size_t> {
      tried.push_back(batch);
      const size_t p = peak(batch);
      if (p > capacity) return std::nullopt;
      return p;
    };
  }
  // The answer by brute force over the grid (sizes below `multiple`, then its multiples).
  int64_t largest(int64_t multiple) const {
    int64_t best = 0;
    for (int64_t b = 1; b < 100000; b = b < multiple ? b + 1 : b + multiple) {
      if (peak(b) <= capacity) best = b;
    }
    return best;
  }
};

void expect_never_retried(const std::vector<int64_t>& tried) {
  EXPECT_EQ(std::set<int64_t>(tried.begin(), tried.end()).size(), tried.size()) << "a batch was tried twice";
}

TEST(BatchFit, LinearMemoryTakesTheLineThenOneStepEachWay) {
  ModelDevice device;
  const BatchFit fit = find_largest_batch({.start = 32, .multiple = 8, .capacity = device.capacity},
                                          device.try_batch());
  EXPECT_EQ(fit.batch, 256);  // (10000 - 300) / 37 = 262.2 images
  EXPECT_EQ(device.largest(8), 256);
  EXPECT_TRUE(fit.exact);
  // 32 and 64 draw the line; it says 262, so 256 fits and 264 does not.
  EXPECT_EQ(device.tried, (std::vector<int64_t>{32, 64, 256, 264})) << fit.describe();
  EXPECT_EQ(fit.describe(), "32: 1484 MiB, 64: 2668 MiB, 256: 9772 MiB, 264: out of memory");
}

TEST(BatchFit, WithoutACapacityDoublesThenNarrows) {
  ModelDevice device;
  const BatchFit fit = find_largest_batch({.start = 32, .multiple = 8}, device.try_batch());
  EXPECT_EQ(fit.batch, 256);
  EXPECT_TRUE(fit.exact);
  EXPECT_EQ(std::vector<int64_t>(device.tried.begin(), device.tried.begin() + 5),
            (std::vector<int64_t>{32, 64, 128, 256, 512}));
  EXPECT_LE(fit.trials.size(), 12u) << fit.describe();
  expect_never_retried(device.tried);
}

TEST(BatchFit, AWorkspaceJumpPastTheLineIsFoundByGallopingBack) {
  ModelDevice device;
  device.jump = 1500 * MiB;  // above 100 images the line from 32 and 64 promises 40 images too many
  device.jump_from = 100;
  const BatchFit fit = find_largest_batch({.start = 32, .multiple = 8, .capacity = device.capacity},
                                          device.try_batch());
  EXPECT_EQ(fit.batch, device.largest(8));
  EXPECT_EQ(fit.batch, 216);
  EXPECT_TRUE(fit.exact);
  EXPECT_LE(fit.trials.size(), 8u) << fit.describe();
  expect_never_retried(device.tried);
}

// Near a full card the allocator's peaks are not a clean line: on an H200, B4's 720 images peaked above its
// 728. The line through the last two fits then fell, and the search doubled to 1,456 and came back down
// through ten out-of-memory trials of several seconds each. Here batches that are multiples of 16 peak
// 2,000 MiB higher (more than 8 images' worth), so the last two fits, 720 and 728, make a falling line.
TEST(BatchFit, NoisyPeaksNearTheTopKeepTheSearchNearTheBoundary) {
  std::vector<int64_t> tried;
  auto noisy = [&tried](int64_t batch) -> std::optional<size_t> {
    tried.push_back(batch);
    const size_t peak = (2750 + 190 * static_cast<size_t>(batch) + (batch % 16 == 0 ? 2000 : 0)) * MiB;
    if (peak > 142000 * MiB) return std::nullopt;
    return peak;
  };
  const BatchFit fit = find_largest_batch({.start = 128, .multiple = 8, .capacity = 142000 * MiB}, noisy);
  EXPECT_EQ(fit.batch, 728);
  EXPECT_TRUE(fit.exact);
  EXPECT_LE(*std::max_element(tried.begin(), tried.end()), 800) << fit.describe();
  EXPECT_LE(fit.trials.size(), 7u) << fit.describe();
  expect_never_retried(tried);
}

TEST(BatchFit, AStartThatDoesNotFitSearchesDown) {
  ModelDevice device;
  device.capacity = 600 * MiB;  // 8 images
  const BatchFit fit = find_largest_batch({.start = 32, .multiple = 8, .capacity = device.capacity},
                                          device.try_batch());
  EXPECT_EQ(fit.batch, 8);
  EXPECT_TRUE(fit.exact);
  expect_never_retried(device.tried);

  device.capacity = 500 * MiB;  // 5 images: below the multiple, every size counts
  device.tried.clear();
  EXPECT_EQ(find_largest_batch({.start = 32, .multiple = 8}, device.try_batch()).batch, 5);
  expect_never_retried(device.tried);

  device.capacity = 320 * MiB;  // not even one image
  device.tried.clear();
  const BatchFit none = find_largest_batch({.start = 4, .multiple = 8}, device.try_batch());
  EXPECT_EQ(none.batch, 0);
  EXPECT_TRUE(none.exact);
  EXPECT_EQ(device.tried.back(), 1);
}

// Every answer from 1 to 700 images, with and without the line, from several starts: the search returns the
// brute-force answer and never repeats or wastes a trial outside the bracket.
TEST(BatchFit, EveryCapacityGivesTheBruteForceAnswer) {
  for (const int64_t start : {1, 8, 30, 64}) {
    for (const bool with_line : {false, true}) {
      for (size_t images = 1; images <= 700; images += 3) {
        ModelDevice device;
        device.capacity = device.fixed + device.per_image * images + MiB;
        const BatchFit fit = find_largest_batch(
            {.start = start, .multiple = 8, .capacity = with_line ? device.capacity : 0}, device.try_batch());
        SCOPED_TRACE(testing::Message() << "start " << start << ", line " << with_line << ", " << images
                                        << " images: " << fit.describe());
        EXPECT_EQ(fit.batch, std::max(device.largest(8), device.peak(start) <= device.capacity ? start : 0));
        EXPECT_TRUE(fit.exact);
        // Trials, where the start fits and the grid is regular: with the line, the two that draw it, its
        // guess and a step each way; without, the doublings to the first failure and a bisection of the
        // last doubling's range.
        const int64_t answer = device.largest(8);
        if (answer >= std::max<int64_t>(start, 8)) {
          auto doubled = [](int64_t b) { return b * 2 < 8 ? b * 2 : b * 2 / 8 * 8; };
          int64_t last_fit = start, doublings = 1;
          for (; doubled(last_fit) <= answer; last_fit = doubled(last_fit)) ++doublings;
          const int64_t first_failure = doubled(last_fit);
          const auto bisections = static_cast<int64_t>(std::ceil(std::log2((first_failure - last_fit) / 8.0)));
          EXPECT_LE(static_cast<int64_t>(fit.trials.size()), with_line ? 6 : doublings + 1 + bisections);
        }
        expect_never_retried(device.tried);
      }
    }
  }
}

TEST(BatchFit, StopsAtMaxTrialsWithTheLargestFitSoFar) {
  ModelDevice device;
  const BatchFit fit = find_largest_batch({.start = 32, .multiple = 8, .max_trials = 3}, device.try_batch());
  EXPECT_EQ(fit.trials.size(), 3u);
  EXPECT_EQ(fit.batch, 128);
  EXPECT_FALSE(fit.exact);
}

TEST(BatchFit, RejectsNonsenseOptions) {
  ModelDevice device;
  EXPECT_THROW(find_largest_batch({.start = 0}, device.try_batch()), Error);
  EXPECT_THROW(find_largest_batch({.multiple = 0}, device.try_batch()), Error);
  EXPECT_THROW(find_largest_batch({.max_trials = 0}, device.try_batch()), Error);
  EXPECT_TRUE(device.tried.empty());
}

// A reduced B0 training on the CPU under a memory limit, as effnet_bench --max-batch trains on a GPU.
class CpuTraining : public testing::Test {
 protected:
  CpuTraining()
      : model_((manual_seed(3), test::reduced_b0())),
        optimizer_(weight_decay_groups(model_, 0.0), AdamPOptions{.lr = 1e-3}) {
    model_.train();
  }
  ~CpuTraining() override {
    set_memory_limit(kCpu, 0);
    inject_out_of_memory(kCpu, -1);
  }
  void step(int64_t batch) {
    optimizer_.zero_grad();
    const Tensor images = randn({batch, 3, 96, 96});
    const Tensor labels = zeros({batch}, TensorOptions(kInt64));
    const Tensor loss = cross_entropy(model_.forward(images), labels);
    loss.backward();
    optimizer_.step();
    optimizer_.zero_grad();
  }
  std::optional<size_t> try_step(int64_t batch) {
    optimizer_.zero_grad();  // what a step that ran out of memory left, gone before the cache is emptied
    return peak_memory_of(kCpu, [&] { step(batch); });
  }

  static constexpr Device kCpu = Device::cpu();
  EfficientNet model_;
  AdamP optimizer_;
};

// A limit below a step's peak stops it with OutOfMemoryError (in the forward, where the saved activations
// pile up), and once the error has unwound, every byte the step allocated is free again: the autograd graph
// and the saved activations went with it.
TEST_F(CpuTraining, OutOfMemoryInTheForwardLeavesNothingAllocated) {
  step(4);  // makes the optimizer's state
  empty_cache(kCpu);
  const size_t held = memory_stats(kCpu).allocated;
  const size_t base = memory_stats(kCpu).reserved;
  const std::optional<size_t> peak = try_step(4);
  ASSERT_TRUE(peak.has_value());
  EXPECT_EQ(memory_stats(kCpu).allocated, held);
  int failures = 0;
  for (int i = 1; i < 20; ++i) {
    const size_t limit = base + (*peak - base) * i / 20;
    empty_cache(kCpu);
    set_memory_limit(kCpu, limit);
    try {
      step(4);
    } catch (const OutOfMemoryError& e) {
      ++failures;
      EXPECT_NE(std::string(e.what()).find("out of memory on cpu"), std::string::npos) << e.what();
    }
    set_memory_limit(kCpu, 0);
    optimizer_.zero_grad();
    EXPECT_EQ(memory_stats(kCpu).allocated, held) << "limit " << limit << " of a " << *peak << "-byte peak";
  }
  EXPECT_GE(failures, 15) << "most limits below the step's peak must stop it";
  step(4);  // and training goes on
  EXPECT_EQ(memory_stats(kCpu).allocated, held);
}

// A fresh optimizer's first step, taken through the loss scaler as float16 training takes it, run out of
// memory at allocations spread over the whole step (tensor/memory.h's inject_out_of_memory): in the forward,
// in the backward, and after it, while the optimizer makes its state once the scaler has unscaled the
// gradients. After each failure the caller drops the gradients and tries again; when a step finally runs,
// the parameters, the optimizer's state and step counts and the scaler must be exactly those of a run that
// never ran out of memory. (Each failed forward has updated batch norm's running statistics, as in PyTorch:
// those are not compared.)
TEST_F(CpuTraining, AStepThatRanOutOfMemoryLeavesNoTraceInTheNextOne) {
  const Tensor images = randn({4, 3, 96, 96});
  const Tensor labels = zeros({4}, TensorOptions(kInt64));
  auto forward = [&](EfficientNet& model) {
    manual_seed(11);  // the same drop-path masks every time
    return cross_entropy(model.forward(images), labels);
  };
  manual_seed(3);
  EfficientNet clean(test::reduced_b0());
  clean.train();
  AdamP clean_optimizer(weight_decay_groups(clean, 0.0), AdamPOptions{.lr = 1e-3});
  DynamicLossScaler clean_scaler;
  const uint64_t before = memory_stats(kCpu).allocations;
  backward_and_step(forward(clean), clean_optimizer, &clean_scaler);
  const auto allocations = static_cast<int64_t>(memory_stats(kCpu).allocations - before);

  // Out of memory at every 1/97 of the step's allocations, until the step runs past the last one.
  DynamicLossScaler scaler;
  std::set<std::string> stopped_in;
  for (int64_t at = 0;; at += std::max<int64_t>(allocations / 97, 1)) {
    ASSERT_LT(at, 2 * allocations) << "the step never ran";
    optimizer_.zero_grad();
    inject_out_of_memory(kCpu, at);
    Tensor loss;
    try {
      loss = forward(model_);
      backward_and_step(loss, optimizer_, &scaler);
      inject_out_of_memory(kCpu, -1);
      break;
    } catch (const OutOfMemoryError&) {
      bool every_grad = true;
      for (const auto& [name, p] : model_.named_parameters()) every_grad = every_grad && p.grad().defined();
      stopped_in.insert(!loss.defined() ? "forward" : every_grad ? "after the backward" : "backward");
    }
  }
  EXPECT_EQ(stopped_in, (std::set<std::string>{"forward", "backward", "after the backward"}));

  EXPECT_EQ(scaler.current_scale(), clean_scaler.current_scale());
  EXPECT_EQ(scaler.growth_tracker(), clean_scaler.growth_tracker());
  const auto params = model_.named_parameters(), clean_params = clean.named_parameters();
  ASSERT_EQ(params.size(), clean_params.size());
  for (size_t i = 0; i < params.size(); ++i) {
    EXPECT_EQ(params[i].second.to_vector(), clean_params[i].second.to_vector()) << params[i].first;
  }
  const OptimizerState state = optimizer_.state_dict(), clean_state = clean_optimizer.state_dict();
  EXPECT_EQ(state.metadata, clean_state.metadata);  // every parameter's step count: 1
  ASSERT_EQ(state.tensors.size(), clean_state.tensors.size());
  for (size_t i = 0; i < state.tensors.size(); ++i) {
    EXPECT_EQ(state.tensors[i].first, clean_state.tensors[i].first);
    EXPECT_EQ(state.tensors[i].second.to_vector(), clean_state.tensors[i].second.to_vector())
        << state.tensors[i].first;
  }
}

TEST_F(CpuTraining, FindsTheLargestBatchThatFitsALimit) {
  step(2);
  const std::optional<size_t> peak2 = try_step(2), peak4 = try_step(4);
  ASSERT_TRUE(peak2 && peak4);
  ASSERT_GT(*peak4, *peak2) << "the activations must grow with the batch";
  // Segments come in steps of 2 and 20 MiB, so peaks grow in steps too: the line is rough here.
  const size_t limit = *peak4 * 3;
  set_memory_limit(kCpu, limit);
  ASSERT_EQ(memory_capacity(kCpu), limit);
  const BatchFit fit = find_largest_batch({.start = 2, .multiple = 2, .capacity = limit},
                                          [&](int64_t batch) { return try_step(batch); });
  SCOPED_TRACE(fit.describe());
  EXPECT_TRUE(fit.exact);
  EXPECT_GT(fit.batch, 4);
  EXPECT_LE(fit.trials.size(), 8u);
  // The answer holds when tried again, and one more step of the grid does not fit.
  EXPECT_TRUE(try_step(fit.batch).has_value());
  EXPECT_FALSE(try_step(fit.batch + 2).has_value());
}

}  // namespace
}  // namespace effnet::train
