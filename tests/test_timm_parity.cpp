// Parity with PyTorch + timm: every fixture in tests/fixtures/timm_*.safetensors (made by
// tools/reference/model_fixtures.py) is replayed here. The module is built by name exactly as the script
// builds it, given the same weights, run in the same mode on the same input, and compared: fp32 outputs and
// running statistics to 1e-4 and gradients to 1e-3, relative in norm (||effnet - timm|| / ||timm||), on the
// CPU and on CUDA.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <functional>
#include <map>

#include "autograd/grad_mode.h"
#include "io/safetensors.h"
#include "layers/activation.h"
#include "layers/batch_norm.h"
#include "layers/conv2d.h"
#include "layers/linear.h"
#include "layers/mbconv.h"
#include "layers/squeeze_excite.h"
#include "models/efficientnet.h"
#include "models/weights.h"
#include "tensor/ops.h"
#include "tests/test_util.h"

namespace effnet {
namespace {

std::shared_ptr<Module> conv(int64_t in, int64_t out, int64_t k, int64_t stride, int64_t groups, Padding padding,
                             bool bias = false) {
  Conv2dOptions o(in, out, k, stride, groups);
  o.padding = padding;
  o.bias = bias;
  return std::make_shared<Conv2d>(o);
}

BlockOptions block(int64_t in, int64_t out, int64_t k, int64_t stride, int64_t expand, Padding padding,
                   bool fused) {
  BlockOptions o;
  o.fused = fused;
  o.in_channels = in;
  o.out_channels = out;
  o.kernel = k;
  o.stride = stride;
  o.expand_ratio = expand;
  o.padding = padding;
  return o;
}

EfficientNetOptions reduced(bool tf, bool fused) {
  EfficientNetOptions o = efficientnet_options(tf ? "tf_efficientnet_b0" : "efficientnet_b0");
  o.fused = fused;
  o.width = 0.25;
  o.depth = 0.25;
  o.num_classes = 10;
  return o;
}

EfficientNetOptions b0(bool tf, bool fused) {
  EfficientNetOptions o = efficientnet_options(tf ? "tf_efficientnet_b0" : "efficientnet_b0");
  o.fused = fused;
  o.num_classes = 18;
  return o;
}

// The modules of model_fixtures.py's layer_cases() and main(), by the same names; `fused` builds the blocks
// and models with their fused ops (EfficientNetOptions::fused), which timm's unfused results pin as well.
std::shared_ptr<Module> build(const std::string& name, bool fused) {
  const Padding sym = Padding::Symmetric, same = Padding::Same;
  using Factory = std::function<std::shared_ptr<Module>(bool)>;
  static const std::map<std::string, Factory> factories = {
      {"conv3x3_s2_symmetric", [=](bool) { return conv(8, 16, 3, 2, 1, sym); }},
      {"conv3x3_s2_same", [=](bool) { return conv(8, 16, 3, 2, 1, same); }},
      {"dw5x5_s2_same", [=](bool) { return conv(16, 16, 5, 2, 16, same); }},
      {"conv1x1_bias", [=](bool) { return conv(24, 32, 1, 1, 1, sym, true); }},
      {"batch_norm", [](bool) { return std::make_shared<BatchNorm2d>(BatchNorm2dOptions{24, 1e-5, 0.1}); }},
      {"batch_norm_tf_eps", [](bool) { return std::make_shared<BatchNorm2d>(BatchNorm2dOptions{24, 1e-3, 0.1}); }},
      {"squeeze_excite", [](bool f) { return std::make_shared<SqueezeExcite>(48, 2, f); }},
      {"depthwise_separable",
       [=](bool f) { return std::make_shared<DepthwiseSeparable>(block(16, 16, 3, 1, 1, sym, f)); }},
      {"inverted_residual_s2",
       [=](bool f) { return std::make_shared<InvertedResidual>(block(16, 24, 5, 2, 6, sym, f)); }},
      {"inverted_residual_skip_same",
       [=](bool f) { return std::make_shared<InvertedResidual>(block(24, 24, 3, 1, 6, same, f)); }},
      {"linear", [](bool) { return std::make_shared<Linear>(64, 18); }},
      {"efficientnet_reduced", [](bool f) { return std::make_shared<EfficientNet>(reduced(false, f)); }},
      {"tf_efficientnet_reduced", [](bool f) { return std::make_shared<EfficientNet>(reduced(true, f)); }},
      {"efficientnet_b0", [](bool f) { return std::make_shared<EfficientNet>(b0(false, f)); }},
      {"tf_efficientnet_b0", [](bool f) { return std::make_shared<EfficientNet>(b0(true, f)); }},
  };
  auto found = factories.find(name);
  EFFNET_CHECK(found != factories.end(), "timm parity: no module for fixture case '", name, "'");
  return found->second(fused);
}

// 32-bit FNV-1a of a name: model_fixtures.py's name_key.
uint64_t name_key(const std::string& name) {
  uint64_t h = 2166136261u;
  for (unsigned char c : name) h = ((h ^ c) * 16777619u) % (uint64_t{1} << 32);
  return h;
}

// model_fixtures.py's hash_weights: the same values in every floating parameter and buffer.
void fill_from_hash(Module& module) {
  for (const auto& [name, t] : module.state_dict()) {
    if (!is_floating(t.dtype())) continue;
    const auto ends_with = [&name](const std::string& s) {
      return name.size() >= s.size() && name.compare(name.size() - s.size(), s.size(), s) == 0;
    };
    std::vector<double> values(static_cast<size_t>(t.numel()));
    const double fan_in = t.dim() > 1 ? static_cast<double>(t.numel() / t.size(0)) : 1.0;
    for (size_t i = 0; i < values.size(); ++i) {
      const uint64_t h = (i * uint64_t{2654435761} + name_key(name)) % (uint64_t{1} << 32);
      const double u = static_cast<double>(h) / 4294967296.0;
      if (ends_with("running_var") || (ends_with("weight") && t.dim() == 1)) values[i] = 0.5 + u;
      else if (ends_with("running_mean") || ends_with("bias")) values[i] = (u - 0.5) * 0.2;
      else values[i] = (u - 0.5) * 2 * std::sqrt(3.0 / fan_in);
    }
    autograd::NoGradGuard no_grad;
    t.detach().copy_(from_vector(values, t.shape(), TensorOptions(kFloat64, Device::cpu())));
  }
}

// ||got - want|| / ||want|| (or ||got|| when want is zero).
double relative_error(const Tensor& got, const Tensor& want) {
  const std::vector<double> g = got.to_vector(), w = want.to_vector();
  double diff = 0, norm = 0;
  for (size_t i = 0; i < g.size(); ++i) {
    diff += (g[i] - w[i]) * (g[i] - w[i]);
    norm += w[i] * w[i];
  }
  return norm > 0 ? std::sqrt(diff / norm) : std::sqrt(diff);
}

std::vector<std::string> fixture_paths() {
  std::vector<std::string> paths;
  for (const auto& entry : std::filesystem::directory_iterator(std::string(EFFNET_SOURCE_DIR) + "/tests/fixtures")) {
    const std::string file = entry.path().filename().string();
    if (file.rfind("timm_", 0) == 0 && entry.path().extension() == ".safetensors") paths.push_back(entry.path());
  }
  std::sort(paths.begin(), paths.end());
  return paths;
}

std::string fixture_name(const testing::TestParamInfo<std::string>& info) {
  std::string stem = std::filesystem::path(info.param).stem().string().substr(5);
  for (char& c : stem)
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  return stem;
}

void replay(const std::string& path, Device device, bool fused = false) {
  const safetensors::File file = safetensors::load(path);
  const std::string name = file.metadata.at("case"), mode = file.metadata.at("mode");
  std::shared_ptr<Module> module = build(name, fused);
  safetensors::NamedTensors state;
  for (const auto& [key, t] : file.tensors) {
    for (const char* prefix : {"param.", "buffer."}) {
      if (key.rfind(prefix, 0) == 0) state.emplace_back(key.substr(std::string(prefix).size()), t);
    }
  }
  if (state.empty()) fill_from_hash(*module);
  else load_state_dict(*module, state);  // strict: every name must match timm's
  module->to(device);
  module->train(mode == "train");

  Tensor x = file.find("input").to(device);
  x.requires_grad_();
  const Tensor y = module->forward(x);
  EXPECT_LT(relative_error(y, file.find("output")), 1e-4) << "output";
  sum(mul(y, file.find("cotangent").to(device))).backward();
  EXPECT_LT(relative_error(x.grad(), file.find("grad.input")), 1e-3) << "input gradient";

  // A gradient that vanishes in exact arithmetic is fp32 rounding noise in both frameworks: the bias of a
  // batch norm whose output reaches another batch norm in training mode (a shift of it is cancelled by
  // the next normalization) comes out near 1e-4 against ~100 for its weight, differently in each. Such
  // a gradient is compared with a floor of 1e-5 of its sibling weight's gradient norm, which still fails
  // any real error.
  auto reference_norm = [&file](const std::string& pname) {
    if (const Tensor full = file.find("grad." + pname); full.defined()) return std::sqrt(sum(mul(full, full)).item());
    if (const Tensor sq = file.find("grad_sumsq." + pname); sq.defined()) return std::sqrt(sq.item());
    return 0.0;
  };
  auto floor_of = [&](const std::string& pname) {
    const size_t dot = pname.rfind(".bias");
    return dot != std::string::npos && dot + 5 == pname.size() ? 1e-5 * reference_norm(pname.substr(0, dot) + ".weight")
                                                              : 0.0;
  };
  auto expect_close = [](const Tensor& got, const Tensor& want, double floor, const std::string& what) {
    const std::vector<double> g = got.to_vector(), w = want.to_vector();
    double diff = 0, norm = 0;
    for (size_t i = 0; i < g.size(); ++i) {
      diff += (g[i] - w[i]) * (g[i] - w[i]);
      norm += w[i] * w[i];
    }
    EXPECT_LE(std::sqrt(diff), 1e-3 * std::sqrt(norm) + floor) << what << ": |difference| " << std::sqrt(diff)
                                                               << ", |timm| " << std::sqrt(norm);
  };
  int compared = 0;
  for (const auto& [pname, p] : module->named_parameters()) {
    ASSERT_TRUE(p.grad().defined()) << pname;
    if (const Tensor full = file.find("grad." + pname); full.defined()) {
      expect_close(p.grad(), full, floor_of(pname), "gradient of " + pname);
      ++compared;
    } else if (const Tensor index = file.find("grad_index." + pname); index.defined()) {
      const std::vector<double> flat = p.grad().to_vector(), at = index.to_vector();
      std::vector<double> sample;
      double sumsq = 0;
      for (double v : flat) sumsq += v * v;
      for (double i : at) sample.push_back(flat[static_cast<size_t>(i)]);
      expect_close(from_vector(sample, {static_cast<int64_t>(sample.size())}), file.find("grad_sample." + pname),
                   floor_of(pname), "sampled gradient of " + pname);
      const double want = reference_norm(pname);
      EXPECT_LE(std::abs(std::sqrt(sumsq) - want), 1e-3 * want + floor_of(pname)) << "gradient norm of " << pname;
      ++compared;
    } else {
      ADD_FAILURE() << "the fixture has no gradient for " << pname;
    }
  }
  EXPECT_EQ(compared, static_cast<int>(module->named_parameters().size()));
  for (const auto& [bname, b] : module->named_buffers()) {
    if (const Tensor after = file.find("after." + bname); after.defined() && is_floating(b.dtype())) {
      EXPECT_LT(relative_error(b, after), 1e-4) << "buffer " << bname << " after the forward";
    }
  }
}

class TimmParity : public testing::TestWithParam<std::string> {};
class TimmParityCuda : public testing::TestWithParam<std::string> {};

TEST_P(TimmParity, MatchesPyTorchOnCpu) { replay(GetParam(), Device::cpu()); }
TEST_P(TimmParityCuda, MatchesPyTorchOnCuda) {
  EFFNET_REQUIRE_CUDA_OR_SKIP();
  replay(GetParam(), Device::cuda(0));
}

INSTANTIATE_TEST_SUITE_P(Fixtures, TimmParity, testing::ValuesIn(fixture_paths()), fixture_name);
INSTANTIATE_TEST_SUITE_P(Fixtures, TimmParityCuda, testing::ValuesIn(fixture_paths()), fixture_name);

// The same fixtures replayed with the fused ops (--fused): the squeeze-excite layer, the blocks and the
// models, whose batch norms are followed by SiLU.
std::vector<std::string> fused_fixture_paths() {
  std::vector<std::string> paths;
  for (const std::string& path : fixture_paths()) {
    for (const char* part : {"squeeze_excite", "depthwise_separable", "inverted_residual", "efficientnet"}) {
      if (path.find(part) != std::string::npos) {
        paths.push_back(path);
        break;
      }
    }
  }
  return paths;
}

class TimmParityFused : public testing::TestWithParam<std::string> {};
class TimmParityFusedCuda : public testing::TestWithParam<std::string> {};

TEST_P(TimmParityFused, MatchesPyTorchOnCpu) { replay(GetParam(), Device::cpu(), true); }
TEST_P(TimmParityFusedCuda, MatchesPyTorchOnCuda) {
  EFFNET_REQUIRE_CUDA_OR_SKIP();
  replay(GetParam(), Device::cuda(0), true);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, TimmParityFused, testing::ValuesIn(fused_fixture_paths()), fixture_name);
INSTANTIATE_TEST_SUITE_P(Fixtures, TimmParityFusedCuda, testing::ValuesIn(fused_fixture_paths()), fixture_name);

TEST(TimmParity, EveryFixtureCaseIsPresent) {
  // 11 layers (the 5 with batch norm also in eval mode), 2 reduced models and 2 B0s in 2 modes each.
  EXPECT_EQ(fixture_paths().size(), 11u + 5u + 4u + 4u);
}

}  // namespace
}  // namespace effnet
