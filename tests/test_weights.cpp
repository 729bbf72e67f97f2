// Weights in safetensors files: round trips, the missing / unexpected report, the classifier skip that
// starts an 18-class model from 1000-class weights, and errors that name the tensor.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>

#include "models/efficientnet.h"
#include "models/weights.h"
#include "tensor/ops.h"
#include "tensor/random.h"
#include "tests/test_util.h"

namespace effnet {
namespace {

using test::error_of;

EfficientNetOptions small(int64_t classes) {
  EfficientNetOptions o = efficientnet_options("efficientnet_b0");
  o.width = 0.25;
  o.depth = 0.25;
  o.num_classes = classes;
  return o;
}

std::string temp_path(const std::string& name) {
  return (std::filesystem::temp_directory_path() / ("effnet_test_" + name + ".safetensors")).string();
}

TEST(Weights, SaveAndLoadRoundTripEveryParameterAndBuffer) {
  manual_seed(1);
  EfficientNet a(small(10));
  a.forward(randn({2, 3, 32, 32}));  // moves the running statistics away from 0 and 1
  const std::string path = temp_path("roundtrip");
  save_weights(a, path, {{"model", "efficientnet_b0"}});
  manual_seed(2);
  EfficientNet b(small(10));
  const LoadReport report = load_weights(b, path);
  EXPECT_EQ(report.loaded.size(), a.state_dict().size());
  const auto sa = a.state_dict(), sb = b.state_dict();
  for (size_t i = 0; i < sa.size(); ++i) {
    ASSERT_EQ(sa[i].first, sb[i].first);
    EXPECT_EQ(sa[i].second.to_vector(), sb[i].second.to_vector()) << sa[i].first;
  }
  EXPECT_EQ(b.bn1->num_batches_tracked.item(), 1);
  std::filesystem::remove(path);
}

TEST(Weights, ClassifierIsSkippedOnlyWhenAsked) {
  EfficientNet imagenet(small(1000));
  const std::string path = temp_path("imagenet");
  save_weights(imagenet, path);
  EfficientNet mask(small(18));
  const std::string error = error_of([&] { load_weights(mask, path); });
  EXPECT_NE(error.find("classifier.weight"), std::string::npos) << error;
  EXPECT_NE(error.find("[1000, 320]"), std::string::npos) << error;
  EXPECT_NE(error.find("[18, 320]"), std::string::npos) << error;
  EXPECT_NE(error.find(path), std::string::npos) << error;

  LoadOptions options;
  options.skip_mismatched_classifier = true;
  const Tensor before = mask.classifier->weight.detach().clone();
  const LoadReport report = load_weights(mask, path, options);
  EXPECT_EQ(report.skipped, (std::vector<std::string>{"classifier.weight", "classifier.bias"}));
  EXPECT_TRUE(report.missing.empty());
  EXPECT_EQ(mask.classifier->weight.to_vector(), before.to_vector()) << "the new head keeps its initialisation";
  EXPECT_EQ(mask.conv_stem->weight.to_vector(), imagenet.conv_stem->weight.to_vector());
  std::filesystem::remove(path);
}

TEST(Weights, MissingAndUnexpectedNamesAreReported) {
  EfficientNet model(small(10));
  safetensors::NamedTensors tensors;
  for (const auto& [name, t] : model.state_dict()) {
    if (name != "bn2.running_var") tensors.emplace_back(name, t.detach().clone());
  }
  tensors.emplace_back("head.fc.weight", zeros({10, 320}));
  const std::string error = error_of([&] { load_state_dict(model, tensors); });
  EXPECT_NE(error.find("missing from the file (1): bn2.running_var"), std::string::npos) << error;
  EXPECT_NE(error.find("unexpected in the file (1): head.fc.weight"), std::string::npos) << error;
  LoadOptions lenient;
  lenient.strict = false;
  const LoadReport report = load_state_dict(model, tensors, lenient);
  EXPECT_EQ(report.missing, (std::vector<std::string>{"bn2.running_var"}));
  EXPECT_EQ(report.unexpected, (std::vector<std::string>{"head.fc.weight"}));
}

TEST(Weights, NothingIsCopiedWhenTheFileIsRejected) {
  EfficientNet model(small(10));
  const Tensor stem = model.conv_stem->weight.detach().clone();
  safetensors::NamedTensors tensors;
  for (const auto& [name, t] : model.state_dict()) tensors.emplace_back(name, zeros_like(t));
  tensors.back().second = zeros({3});  // the last entry has a wrong shape
  EXPECT_THROW(load_state_dict(model, tensors), Error);
  EXPECT_EQ(model.conv_stem->weight.to_vector(), stem.to_vector());
}

TEST(WeightsCuda, LoadIntoAModelOnTheGpu) {
  EFFNET_REQUIRE_CUDA_OR_SKIP();
  EfficientNet cpu_model(small(10));
  const std::string path = temp_path("gpu");
  save_weights(cpu_model, path);
  EfficientNet gpu_model(small(10));
  gpu_model.to(Device::cuda(0));
  load_weights(gpu_model, path);
  EXPECT_TRUE(gpu_model.conv_head->weight.is_cuda());
  EXPECT_EQ(gpu_model.conv_head->weight.to_vector(), cpu_model.conv_head->weight.to_vector());
  std::filesystem::remove(path);
}

}  // namespace
}  // namespace effnet
