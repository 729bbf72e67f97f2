// effnet_demo: the core library end to end in one page. A two-layer classifier learns three interleaved
// spirals with plain SGD: tensors on the chosen device, ops through the dispatch table, gradients from the
// tape. (The EfficientNet trainer, effnet_train, arrives with the training issue.)
//
//   h = relu(x W1 + b1),  logits = h W2 + b2,  loss = -mean_i log_softmax(logits_i)[label_i]
//
//   usage: effnet_demo [--device cpu|cuda|cuda:N] [--steps N] [--seed S]
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "autograd/grad_mode.h"
#include "tensor/ops.h"
#include "tensor/random.h"

using namespace effnet;

namespace {

constexpr int kClasses = 3, kPerClass = 100, kHidden = 64;

// Points (x, y) on three noisy spiral arms, and each point's one-hot class.
void make_spirals(std::vector<double>& points, std::vector<double>& one_hot, std::vector<int>& labels) {
  Generator noise_gen(42);
  Tensor noise = empty({kClasses * kPerClass}, kFloat64);
  noise.normal_(0.0, 0.15, &noise_gen);
  const std::vector<double> noise_values = noise.to_vector();
  for (int c = 0; c < kClasses; ++c) {
    for (int i = 0; i < kPerClass; ++i) {
      const double r = static_cast<double>(i) / kPerClass;
      const double angle = c * 2.0 * M_PI / kClasses + 4.0 * r + noise_values[c * kPerClass + i];
      points.push_back(r * std::cos(angle));
      points.push_back(r * std::sin(angle));
      for (int k = 0; k < kClasses; ++k) one_hot.push_back(k == c ? 1.0 : 0.0);
      labels.push_back(c);
    }
  }
}

Tensor parameter(const Shape& shape, double scale, Device device) {
  Tensor p = (randn(shape) * scale).to(device);
  p.requires_grad_();
  return p;
}

}  // namespace

int main(int argc, char** argv) {
  Device device = cuda_available() ? Device::cuda(0) : Device::cpu();
  int steps = 1000;
  uint64_t seed = 0;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    const bool has_value = i + 1 < argc;
    if (arg == "--device" && has_value) device = Device::parse(argv[++i]);
    else if (arg == "--steps" && has_value) steps = std::atoi(argv[++i]);
    else if (arg == "--seed" && has_value) seed = std::strtoull(argv[++i], nullptr, 10);
    else {
      std::fprintf(stderr, "usage: effnet_demo [--device cpu|cuda|cuda:N] [--steps N] [--seed S]\n");
      return 2;
    }
  }
  try {
    std::vector<double> points, one_hot_values;
    std::vector<int> labels;
    make_spirals(points, one_hot_values, labels);
    const int64_t n = static_cast<int64_t>(labels.size());
    const Tensor x = from_vector(points, {n, 2}, TensorOptions(kFloat32, device));
    const Tensor one_hot = from_vector(one_hot_values, {n, kClasses}, TensorOptions(kFloat32, device));

    manual_seed(seed);
    std::vector<Tensor> params = {parameter({2, kHidden}, 1.0, device), parameter({kHidden}, 0.0, device),
                                  parameter({kHidden, kClasses}, std::sqrt(2.0 / kHidden), device),
                                  parameter({kClasses}, 0.0, device)};
    const double lr = 0.5;
    std::printf("effnet_demo: %lld points, %d classes, on %s\n", static_cast<long long>(n), kClasses,
                device.str().c_str());
    double accuracy = 0;
    for (int step = 1; step <= steps; ++step) {
      const Tensor hidden = relu(add(matmul(x, params[0]), params[1]));
      const Tensor logits = add(matmul(hidden, params[2]), params[3]);
      const Tensor loss = neg(mean(sum(mul(one_hot, log_softmax(logits, 1)), {1})));
      loss.backward();
      {
        autograd::NoGradGuard no_grad;
        for (Tensor& p : params) {
          p.add_(p.grad(), -lr);
          p.set_grad(Tensor());
        }
      }
      if (step % 100 == 0 || step == steps) {
        const std::vector<double> predicted = argmax(logits, 1).to_vector();
        int correct = 0;
        for (int64_t i = 0; i < n; ++i) correct += static_cast<int>(predicted[i]) == labels[i];
        accuracy = static_cast<double>(correct) / static_cast<double>(n);
        std::printf("step %4d  loss %.4f  accuracy %.3f\n", step, loss.item(), accuracy);
      }
    }
    return accuracy > 0.9 ? 0 : 1;
  } catch (const Error& e) {
    std::fprintf(stderr, "effnet_demo: %s\n", e.what());
    return 1;
  }
}
