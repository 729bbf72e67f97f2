// The threaded data loader (data/loader.h): the same batches for any number of workers, epoch orders,
// drop_last, labels, bad files, errors from workers, the cache, the balanced sampler, and shutdown in every
// state. Images are small PNGs written by the test into a temporary folder.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <fstream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "data/image.h"
#include "data/loader.h"
#include "temp_dir.h"
#include "test_util.h"

namespace effnet::data {
namespace {

// One epoch's batches, copied to the host.
struct EpochData {
  std::vector<std::vector<float>> images;
  std::vector<std::vector<int64_t>> labels, indices;
  std::vector<std::vector<int64_t>> shapes;
};

EpochData run_epoch(DataLoader& loader, int64_t epoch) {
  EpochData data;
  loader.start_epoch(epoch);
  while (std::optional<Batch> batch = loader.next()) {
    const Tensor images = batch->images.cpu(), labels = batch->labels.cpu();
    EXPECT_EQ(images.dtype(), kFloat32);
    EXPECT_EQ(labels.dtype(), kInt64);
    data.shapes.push_back(images.shape());
    data.images.emplace_back(images.data<float>(), images.data<float>() + images.numel());
    data.labels.emplace_back(labels.data<int64_t>(), labels.data<int64_t>() + labels.numel());
    data.indices.push_back(batch->indices);
  }
  return data;
}

// Bit for bit (memcmp, so that -0.0 and 0.0 differ).
void expect_identical(const EpochData& a, const EpochData& b) {
  ASSERT_EQ(a.images.size(), b.images.size());
  for (size_t i = 0; i < a.images.size(); ++i) {
    EXPECT_EQ(a.shapes[i], b.shapes[i]) << "batch " << i;
    EXPECT_EQ(a.labels[i], b.labels[i]) << "batch " << i;
    EXPECT_EQ(a.indices[i], b.indices[i]) << "batch " << i;
    ASSERT_EQ(a.images[i].size(), b.images[i].size()) << "batch " << i;
    EXPECT_EQ(std::memcmp(a.images[i].data(), b.images[i].data(), a.images[i].size() * sizeof(float)), 0)
        << "batch " << i;
  }
}

std::vector<int64_t> flat(const std::vector<std::vector<int64_t>>& batches) {
  std::vector<int64_t> all;
  for (const auto& b : batches) all.insert(all.end(), b.begin(), b.end());
  return all;
}

TransformConfig augmenting(int64_t crop_h, int64_t crop_w) {
  TransformConfig t;
  t.crop_h = crop_h;
  t.crop_w = crop_w;
  t.rotation_degrees = 10;
  t.hflip = 0.5;
  t.brightness = 0.2;
  t.contrast = 0.2;
  return t;
}

LoaderOptions options(int64_t batch, int workers) {
  LoaderOptions o;
  o.batch_size = batch;
  o.workers = workers;
  o.seed = 7;
  o.report_bad_files = false;
  return o;
}

class Loader : public ::testing::Test {
 protected:
  std::string path(const std::string& name) const { return dir_ / name; }

  // n noisy images of h x w, sample i labelled i % classes.
  std::vector<Sample> noisy(int64_t n, int64_t h, int64_t w, int64_t classes = 3) const {
    std::vector<Sample> samples;
    for (int64_t i = 0; i < n; ++i) {
      Image image(h, w);
      std::mt19937 rng(static_cast<uint32_t>(i));
      for (uint8_t& p : image.pixels) p = static_cast<uint8_t>(rng() & 255);
      samples.push_back(sample(i, image, i % classes));
    }
    return samples;
  }

  // n images of one flat colour each (sample i: red = i), labelled i % classes.
  std::vector<Sample> flat_colours(int64_t n, int64_t h, int64_t w, int64_t classes = 3) const {
    std::vector<Sample> samples;
    for (int64_t i = 0; i < n; ++i) {
      Image image(h, w, 40);
      for (int64_t p = 0; p < h * w; ++p) image.pixels[static_cast<size_t>(p * 3)] = static_cast<uint8_t>(i);
      samples.push_back(sample(i, image, i % classes));
    }
    return samples;
  }

  Sample sample(int64_t i, const Image& image, int64_t label) const {
    Sample s;
    s.path = path("img" + std::to_string(i) + ".png");
    write_png(s.path, image);
    s.label = label;
    s.group = std::to_string(i);
    return s;
  }

  test::TempDir dir_{"loader"};
};

TEST_F(Loader, SameBatchesForAnyNumberOfWorkers) {
  const std::vector<Sample> samples = noisy(23, 14, 12);
  DataLoader reference(samples, augmenting(12, 10), options(4, 0));
  for (int workers : {1, 2, 4}) {
    DataLoader loader(samples, augmenting(12, 10), options(4, workers));
    for (int64_t epoch = 0; epoch < 3; ++epoch) {
      SCOPED_TRACE("workers " + std::to_string(workers) + ", epoch " + std::to_string(epoch));
      expect_identical(run_epoch(reference, epoch), run_epoch(loader, epoch));
    }
  }
}

TEST_F(Loader, AugmentationDependsOnEpochAndPosition) {
  std::vector<Sample> samples = noisy(1, 14, 12);
  samples.resize(8, samples[0]);  // one file, eight positions
  LoaderOptions o = options(8, 2);
  o.shuffle = false;
  DataLoader loader(samples, augmenting(12, 10), o);
  const EpochData e0 = run_epoch(loader, 0), e1 = run_epoch(loader, 1);
  const size_t plane = 3 * 12 * 10;
  const std::vector<float>& a = e0.images[0];
  int same_as_first = 0;
  for (size_t k = 1; k < 8; ++k) {
    same_as_first += std::equal(a.begin(), a.begin() + plane, a.begin() + k * plane);
  }
  EXPECT_EQ(same_as_first, 0) << "positions of one epoch must be augmented independently";
  EXPECT_NE(e0.images[0], e1.images[0]) << "epochs must be augmented differently";
}

TEST_F(Loader, ShuffledOrderChangesPerEpochAndRepeatsForTheSameEpoch) {
  const std::vector<Sample> samples = noisy(30, 6, 6);
  DataLoader loader(samples, TransformConfig{}, options(7, 2));
  const std::vector<int64_t> e0 = flat(run_epoch(loader, 0).indices), e1 = flat(run_epoch(loader, 1).indices);
  EXPECT_NE(e0, e1);
  EXPECT_EQ(e0, flat(run_epoch(loader, 0).indices));
  DataLoader other(samples, TransformConfig{}, options(7, 3));
  EXPECT_EQ(e1, flat(run_epoch(other, 1).indices));
  for (const auto& order : {e0, e1}) {  // a permutation
    std::vector<int64_t> sorted = order;
    std::sort(sorted.begin(), sorted.end());
    for (int64_t i = 0; i < 30; ++i) EXPECT_EQ(sorted[static_cast<size_t>(i)], i);
    EXPECT_NE(order, sorted) << "not shuffled";
  }
  LoaderOptions in_order = options(7, 2);
  in_order.shuffle = false;
  DataLoader sequential(samples, TransformConfig{}, in_order);
  const std::vector<int64_t> s = flat(run_epoch(sequential, 3).indices);
  for (int64_t i = 0; i < 30; ++i) EXPECT_EQ(s[static_cast<size_t>(i)], i);
  LoaderOptions other_seed = options(7, 2);
  other_seed.seed = 8;
  DataLoader reseeded(samples, TransformConfig{}, other_seed);
  EXPECT_NE(e0, flat(run_epoch(reseeded, 0).indices));
}

TEST_F(Loader, DropLastAndTheShortLastBatch) {
  const std::vector<Sample> samples = noisy(23, 5, 4);
  for (bool drop : {false, true}) {
    LoaderOptions o = options(5, 3);
    o.drop_last = drop;
    DataLoader loader(samples, TransformConfig{}, o);
    EXPECT_EQ(loader.batches_per_epoch(), drop ? 4 : 5);
    const EpochData data = run_epoch(loader, 0);
    ASSERT_EQ(data.shapes.size(), drop ? 4u : 5u);
    for (size_t b = 0; b < data.shapes.size(); ++b) {
      const int64_t expected = b == 4 ? 3 : 5;
      EXPECT_EQ(data.shapes[b], (std::vector<int64_t>{expected, 3, 5, 4}));
      EXPECT_EQ(data.labels[b].size(), static_cast<size_t>(expected));
      EXPECT_EQ(data.indices[b].size(), static_cast<size_t>(expected));
    }
    EXPECT_FALSE(loader.next().has_value()) << "the end of an epoch stays the end";
  }
  LoaderOptions tiny = options(50, 2);
  tiny.drop_last = true;
  DataLoader none(samples, TransformConfig{}, tiny);
  EXPECT_EQ(none.batches_per_epoch(), 0);
  EXPECT_TRUE(run_epoch(none, 0).images.empty());
}

TEST_F(Loader, LabelsAndPixelsBelongToTheIndexedSample) {
  const std::vector<Sample> samples = flat_colours(20, 4, 3, 4);
  TransformConfig t;  // the default mean and std
  DataLoader loader(samples, t, options(6, 3));
  const EpochData data = run_epoch(loader, 2);
  const int64_t plane = 4 * 3;
  for (size_t b = 0; b < data.images.size(); ++b) {
    for (size_t k = 0; k < data.indices[b].size(); ++k) {
      const int64_t index = data.indices[b][k];
      EXPECT_EQ(data.labels[b][k], samples[static_cast<size_t>(index)].label);
      const float red = data.images[b][k * 3 * plane], green = data.images[b][k * 3 * plane + plane];
      EXPECT_NEAR(red, (static_cast<float>(index) / 255.0f - t.mean[0]) / t.std[0], 1e-5);
      EXPECT_NEAR(green, (40.0f / 255.0f - t.mean[1]) / t.std[1], 1e-5);
    }
  }
}

TEST_F(Loader, BadFilesAreReplacedDeterministicallyAndReportedOnce) {
  std::vector<Sample> samples = noisy(12, 6, 5);
  samples[3].path = path("missing.png");
  {
    std::ofstream(path("empty.png"), std::ios::binary);  // zero bytes
  }
  samples[4].path = path("empty.png");
  {
    std::ifstream in(samples[7].path, std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::ofstream(path("truncated.png"), std::ios::binary)
        .write(bytes.data(), static_cast<std::streamsize>(bytes.size() / 2));
  }
  samples[7].path = path("truncated.png");
  samples[11].path = path("missing2.png");  // the last one: replaced by sample 0 (cyclic)
  const std::vector<int64_t> replacement{0, 1, 2, 5, 5, 5, 6, 8, 8, 9, 10, 0};

  LoaderOptions sequential = options(5, 1);
  sequential.shuffle = false;
  DataLoader first(samples, TransformConfig{}, sequential);
  const EpochData in_order = run_epoch(first, 0);
  EXPECT_EQ(flat(in_order.indices), replacement);
  EXPECT_EQ(flat(in_order.labels)[3], samples[5].label);

  DataLoader one(samples, augmenting(5, 4), options(5, 1)), four(samples, augmenting(5, 4), options(5, 4));
  for (int64_t epoch = 0; epoch < 3; ++epoch) {
    const EpochData a = run_epoch(one, epoch), b = run_epoch(four, epoch);
    expect_identical(a, b);
    EXPECT_EQ(flat(a.indices).size(), 12u) << "the epoch completes";
    for (int64_t index : flat(a.indices)) EXPECT_TRUE(index != 3 && index != 4 && index != 7 && index != 11);
  }
  for (DataLoader* loader : {&first, &one, &four}) {
    EXPECT_EQ(loader->bad_files(), 4);
    const std::vector<std::string> messages = loader->bad_file_messages();
    ASSERT_EQ(messages.size(), 4u);  // one each, sorted by path
    EXPECT_NE(messages[0].find("empty.png"), std::string::npos) << messages[0];
    EXPECT_NE(messages[1].find("missing.png"), std::string::npos) << messages[1];
    EXPECT_NE(messages[2].find("missing2.png"), std::string::npos) << messages[2];
    EXPECT_NE(messages[3].find("truncated.png"), std::string::npos) << messages[3];
  }
}

TEST_F(Loader, ADatasetWithoutOneGoodFileThrows) {
  std::vector<Sample> samples = noisy(5, 4, 4);
  for (size_t i = 0; i < samples.size(); ++i) samples[i].path = path("gone" + std::to_string(i) + ".png");
  const auto start = std::chrono::steady_clock::now();
  const std::string message =
      test::error_of([&] { DataLoader loader(samples, TransformConfig{}, options(2, 2)); });
  EXPECT_NE(message.find("none of the 5 images decodes"), std::string::npos) << message;
  EXPECT_NE(message.find("gone0.png"), std::string::npos) << message;
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
}

TEST_F(Loader, AnErrorInAWorkerSurfacesInNextAtItsBatch) {
  std::vector<Sample> samples = noisy(14, 8, 6);
  samples[9] = sample(9, Image(7, 6), 0);  // one image of another size, no crop to even it out
  for (int workers : {0, 1, 3}) {
    LoaderOptions o = options(4, workers);
    o.shuffle = false;
    DataLoader loader(samples, TransformConfig{}, o);
    loader.start_epoch(0);
    EXPECT_TRUE(loader.next().has_value());
    EXPECT_TRUE(loader.next().has_value());
    const std::string message = test::error_of([&] { loader.next(); });  // batch 2 holds sample 9
    EXPECT_NE(message.find("img9.png is 7x6"), std::string::npos) << message;
    EXPECT_NE(message.find("img0.png is 8x6"), std::string::npos) << message;
    EXPECT_NE(message.find("crop"), std::string::npos) << message;
    EXPECT_EQ(test::error_of([&] { loader.next(); }), message) << "the epoch stays failed";
    loader.start_epoch(1);  // a new epoch starts cleanly (and fails at the same batch)
    EXPECT_TRUE(loader.next().has_value());
  }
  TransformConfig cropped;
  cropped.crop_h = 6;
  cropped.crop_w = 6;
  DataLoader fixed(samples, cropped, options(4, 2));
  EXPECT_EQ(flat(run_epoch(fixed, 0).indices).size(), 14u) << "a crop makes the sizes agree";
}

TEST_F(Loader, CacheGivesTheSameBatchesAndCountsHits) {
  const std::vector<Sample> samples = noisy(17, 10, 8);
  LoaderOptions cached = options(4, 3);
  cached.cache_bytes = size_t{1} << 20;
  LoaderOptions capped = options(4, 3);
  capped.cache_bytes = 5 * 8 * 6 * 3;  // five 8 x 6 images
  DataLoader plain(samples, augmenting(8, 6), options(4, 3)), with_cache(samples, augmenting(8, 6), cached),
      small_cache(samples, augmenting(8, 6), capped);
  int64_t hits_before = with_cache.cache_hits();
  for (int64_t epoch = 0; epoch < 3; ++epoch) {
    const EpochData reference = run_epoch(plain, epoch);
    expect_identical(reference, run_epoch(with_cache, epoch));
    expect_identical(reference, run_epoch(small_cache, epoch));
    if (epoch > 0) {
      EXPECT_EQ(with_cache.cache_hits() - hits_before, 17) << "every sample from the cache";
    }
    hits_before = with_cache.cache_hits();
  }
  EXPECT_EQ(with_cache.cache_bytes_used(), size_t{17 * 8 * 6 * 3});
  EXPECT_EQ(small_cache.cache_bytes_used(), size_t{5 * 8 * 6 * 3});
  EXPECT_GT(small_cache.cache_hits(), 0);
  EXPECT_EQ(plain.cache_hits(), 0);
}

// 225 samples in classes of 200, 20 and 5, drawn with class_balanced_weights: each draw picks a class with
// probability 1/3, so over N draws a class count is Binomial(N, 1/3), standard deviation sqrt(2N) / 3.
// Bound: 5 standard deviations (a chance failure below 1e-6 per class; the draws are fixed by the seed).
TEST_F(Loader, BalancedSamplerEqualisesClassFrequencies) {
  const Image tiny(2, 2, 9);
  std::vector<Sample> samples;
  for (int64_t i = 0; i < 225; ++i) {
    Sample s;
    s.path = path("tiny.png");
    s.label = i < 200 ? 0 : i < 220 ? 1 : 2;
    samples.push_back(s);
  }
  write_png(samples[0].path, tiny);
  const std::vector<double> weights = class_balanced_weights(samples);
  EXPECT_DOUBLE_EQ(weights[0], 1.0 / 200);
  EXPECT_DOUBLE_EQ(weights[210], 1.0 / 20);
  EXPECT_DOUBLE_EQ(weights[224], 1.0 / 5);
  LoaderOptions o = options(45, 2);
  o.sample_weights = weights;
  o.cache_bytes = 1 << 16;
  DataLoader loader(samples, TransformConfig{}, o);
  std::vector<int64_t> counts(3, 0), epoch0;
  const int epochs = 20;
  for (int64_t epoch = 0; epoch < epochs; ++epoch) {
    const EpochData data = run_epoch(loader, epoch);
    EXPECT_EQ(flat(data.indices).size(), 225u);
    if (epoch == 0) epoch0 = flat(data.indices);
    for (int64_t label : flat(data.labels)) ++counts[static_cast<size_t>(label)];
  }
  const double draws = 225.0 * epochs, bound = 5 * std::sqrt(2 * draws) / 3;
  for (size_t c = 0; c < 3; ++c) EXPECT_NEAR(static_cast<double>(counts[c]), draws / 3, bound) << "class " << c;
  EXPECT_EQ(flat(run_epoch(loader, 0).indices), epoch0) << "the draws are fixed by (seed, epoch)";

  std::vector<Sample> unlabelled = samples;
  unlabelled[5].label = -1;
  const std::string message = test::error_of([&] { class_balanced_weights(unlabelled); });
  EXPECT_NE(message.find("has no label"), std::string::npos) << message;
}

// CPU batch memory is recycled once the caller drops a batch: batches still held must never be reused.
TEST_F(Loader, BatchesHeldByTheCallerAreNeverOverwritten) {
  const std::vector<Sample> samples = noisy(30, 8, 8);
  DataLoader reference(samples, augmenting(8, 8), options(4, 2));
  const EpochData e0 = run_epoch(reference, 0), e1 = run_epoch(reference, 1);
  std::vector<Tensor> held;
  {
    DataLoader loader(samples, augmenting(8, 8), options(4, 2));
    loader.start_epoch(0);
    while (std::optional<Batch> batch = loader.next()) held.push_back(batch->images);
    expect_identical(e1, run_epoch(loader, 1));  // recycles only what was dropped
  }
  ASSERT_EQ(held.size(), e0.images.size());
  for (size_t b = 0; b < held.size(); ++b) {  // still intact after more epochs and the loader's end
    ASSERT_EQ(static_cast<size_t>(held[b].numel()), e0.images[b].size());
    EXPECT_EQ(std::memcmp(held[b].data<float>(), e0.images[b].data(), e0.images[b].size() * sizeof(float)), 0)
        << "batch " << b;
  }
}

TEST_F(Loader, StartEpochMidEpochAbandonsTheOldOne) {
  const std::vector<Sample> samples = noisy(40, 6, 6);
  DataLoader fresh(samples, augmenting(6, 6), options(3, 2));
  const EpochData expected = run_epoch(fresh, 5);
  DataLoader loader(samples, augmenting(6, 6), options(3, 2));
  for (int64_t abandoned = 0; abandoned < 4; ++abandoned) {
    loader.start_epoch(abandoned);
    for (int64_t b = 0; b < abandoned; ++b) ASSERT_TRUE(loader.next().has_value());
  }
  expect_identical(expected, run_epoch(loader, 5));

  for (int workers : {0, 1, 3}) {  // resuming at batch 4 gives the rest of the same epoch
    DataLoader resumed(samples, augmenting(6, 6), options(3, workers));
    EpochData rest;
    resumed.start_epoch(5, 4);
    while (std::optional<Batch> batch = resumed.next()) rest.indices.push_back(batch->indices);
    const std::vector<std::vector<int64_t>> tail(expected.indices.begin() + 4, expected.indices.end());
    EXPECT_EQ(rest.indices, tail) << "workers " << workers;
  }
  EXPECT_NE(test::error_of([&] { loader.start_epoch(0, 15); }).find("outside [0, 14]"), std::string::npos);
}

TEST_F(Loader, DestructionInAnyStateReturnsPromptly) {
  const std::vector<Sample> samples = noisy(64, 4, 4);
  double slowest = 0;
  for (int round = 0; round < 300; ++round) {
    auto loader = std::make_unique<DataLoader>(samples, augmenting(4, 4), options(2, 4));
    const int state = round % 6;
    if (state >= 1) loader->start_epoch(round);
    if (state == 2) std::this_thread::sleep_for(std::chrono::milliseconds(2));  // the queue fills up
    for (int b = 0; b < (state == 3 ? 5 : 0); ++b) loader->next();               // half consumed
    if (state == 4) run_epoch(*loader, round);                                  // fully consumed
    if (state == 5) loader->start_epoch(round + 1);                             // two epochs queued in a row
    const auto start = std::chrono::steady_clock::now();
    loader.reset();
    const std::chrono::duration<double> took = std::chrono::steady_clock::now() - start;
    slowest = std::max(slowest, took.count());
  }
  EXPECT_LT(slowest, 2.0) << "seconds for the slowest destruction";
}

TEST_F(Loader, RejectsBadArguments) {
  const std::vector<Sample> samples = noisy(3, 4, 4);
  auto error = [&](LoaderOptions o) {
    return test::error_of([&] { DataLoader loader(samples, TransformConfig{}, o); });
  };
  EXPECT_NE(error(options(0, 1)).find("batch_size"), std::string::npos);
  LoaderOptions o = options(2, 1);
  o.prefetch = 0;
  EXPECT_NE(error(o).find("prefetch"), std::string::npos);
  o = options(2, -1);
  EXPECT_NE(error(o).find("workers"), std::string::npos);
  o = options(2, 1);
  o.sample_weights = {1, 2};
  EXPECT_NE(error(o).find("2 sample weights for 3 samples"), std::string::npos);
  o.sample_weights = {1, -1, 2};
  EXPECT_NE(error(o).find(">= 0"), std::string::npos);
  o.sample_weights = {0, 0, 0};
  EXPECT_NE(error(o).find("sum to 0"), std::string::npos);
  EXPECT_NE(test::error_of([&] { DataLoader loader({}, TransformConfig{}, options(2, 1)); }).find("no samples"),
            std::string::npos);
  DataLoader loader(samples, TransformConfig{}, options(2, 1));
  EXPECT_NE(test::error_of([&] { loader.next(); }).find("before start_epoch"), std::string::npos);
  EXPECT_NE(test::error_of([&] { loader.start_epoch(-1); }).find("count from 0"), std::string::npos);
}

class LoaderCuda : public Loader {};

TEST_F(LoaderCuda, BatchesOnTheDeviceEqualTheCpuBatches) {
  EFFNET_REQUIRE_CUDA_OR_SKIP();
  const std::vector<Sample> samples = noisy(29, 14, 12);  // 8 batches: each pinned buffer is reused
  LoaderOptions on_gpu = options(4, 2);
  on_gpu.device = Device::cuda(0);
  DataLoader cpu(samples, augmenting(12, 10), options(4, 2)), cuda(samples, augmenting(12, 10), on_gpu);
  for (int64_t epoch = 0; epoch < 3; ++epoch) {
    cuda.start_epoch(epoch);
    while (std::optional<Batch> batch = cuda.next()) {
      EXPECT_EQ(batch->images.device(), Device::cuda(0));
      EXPECT_EQ(batch->labels.device(), Device::cuda(0));
    }
    expect_identical(run_epoch(cpu, epoch), run_epoch(cuda, epoch));
  }
}

}  // namespace
}  // namespace effnet::data
