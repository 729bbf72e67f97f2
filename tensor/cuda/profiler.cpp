#include "tensor/cuda/profiler.h"

#include <cuda_runtime.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <map>
#include <mutex>
#include <sstream>
#include <type_traits>
#include <vector>

#include "tensor/cuda/check.h"
#include "tensor/cuda/context.h"

namespace effnet::cuda {

namespace {

struct Record {
  std::string label;
  cudaEvent_t start, stop;
};

std::mutex g_mutex;
std::vector<Record> g_records;
std::vector<cudaEvent_t> g_idle_events;

cudaEvent_t take_event() {
  if (!g_idle_events.empty()) {
    cudaEvent_t e = g_idle_events.back();
    g_idle_events.pop_back();
    return e;
  }
  cudaEvent_t e = nullptr;
  EFFNET_CUDA_CHECK(cudaEventCreate(&e));
  return e;
}

std::atomic<bool> g_profiling{false};

// The stream of the device of the entry's first tensor argument (the current device when it has none).
template <class... A>
cudaStream_t stream_of(const A&... args) {
  int device = -1;
  auto look = [&](const auto& arg) {
    if constexpr (std::is_same_v<std::decay_t<decltype(arg)>, Tensor>) {
      if (device < 0 && arg.defined() && arg.is_cuda()) device = arg.device().index;
    }
  };
  (look(args), ...);
  if (device < 0) EFFNET_CUDA_CHECK(cudaGetDevice(&device));
  return context(device).stream;
}

const char* unary_name(UnaryOp op) {
  static const char* const names[] = {"neg",  "exp",  "log",  "sqrt",       "rsqrt",      "abs",       "sign",
                                      "sigmoid", "silu", "tanh", "relu", "add_scalar", "mul_scalar", "pow_scalar"};
  return names[static_cast<int>(op)];
}

const char* binary_name(BinaryOp op) {
  static const char* const names[] = {"add", "sub", "mul", "div", "pow", "eq", "ne", "lt", "le", "gt", "ge",
                                      "silu_grad", "sigmoid_grad", "tanh_grad", "relu_grad"};
  return names[static_cast<int>(op)];
}

// A convolution entry's input and weight among its tensors: conv2d (x, w, y), conv2d_backward_input (grad_y,
// w, grad_x), conv2d_backward_weight (grad_y, x, grad_w).
std::string conv_label(const std::string& entry, const Conv2dGeometry& g, const std::vector<const Tensor*>& t) {
  const bool backward_input = entry == "conv2d_backward_input", backward_weight = entry == "conv2d_backward_weight";
  const Tensor& input = *t[backward_input ? 2 : backward_weight ? 1 : 0];
  const Tensor& weight = *t[backward_weight ? 2 : 1];
  return entry + " " + conv_kind(g, input.shape(), weight.shape());
}

// The entry's name, the op for the elementwise and reduction entries, a convolution's kind and a fused
// activation.
template <class... A>
std::string label(const char* entry, const A&... args) {
  if constexpr ((std::is_same_v<A, Conv2dGeometry> || ...)) {
    const Conv2dGeometry* geometry = nullptr;
    std::vector<const Tensor*> tensors;
    auto collect = [&](const auto& arg) {
      using Arg = std::decay_t<decltype(arg)>;
      if constexpr (std::is_same_v<Arg, Conv2dGeometry>) geometry = &arg;
      else if constexpr (std::is_same_v<Arg, Tensor>) tensors.push_back(&arg);
    };
    (collect(args), ...);
    return conv_label(entry, *geometry, tensors);
  }
  std::string out = entry;
  auto add_op = [&](const auto& first) {
    using First = std::decay_t<decltype(first)>;
    if constexpr (std::is_same_v<First, UnaryOp>) out += std::string(" ") + unary_name(first);
    else if constexpr (std::is_same_v<First, BinaryOp>) out += std::string(" ") + binary_name(first);
    else if constexpr (std::is_same_v<First, ReduceOp>) out += first == ReduceOp::Sum ? " sum" : " max";
  };
  if constexpr (sizeof...(A) > 0) {
    bool first = true;
    ((first ? (add_op(args), first = false) : false), ...);
    auto add_activation = [&](const auto& arg) {
      if constexpr (std::is_same_v<std::decay_t<decltype(arg)>, Activation>) {
        if (arg == Activation::Silu) out += " + silu";
      }
    };
    (add_activation(args), ...);
  }
  return out;
}

template <auto Member>
struct Wrap;

// The wrapper of one entry: events around the real one (the CUDA row's own).
template <class R, class... A, R (*Backend::*Member)(A...)>
struct Wrap<Member> {
  static inline const char* name = "";
  static R call(A... args) {
    const cudaStream_t stream = stream_of(args...);
    Record record{label(name, args...), nullptr, nullptr};
    {
      std::lock_guard<std::mutex> lock(g_mutex);
      record.start = take_event();
      record.stop = take_event();
    }
    try {
      EFFNET_CUDA_CHECK(cudaEventRecord(record.start, stream));
      if constexpr (std::is_void_v<R>) {
        (cuda_backend().*Member)(args...);
        EFFNET_CUDA_CHECK(cudaEventRecord(record.stop, stream));
        std::lock_guard<std::mutex> lock(g_mutex);
        g_records.push_back(std::move(record));
      } else {
        R result = (cuda_backend().*Member)(args...);
        EFFNET_CUDA_CHECK(cudaEventRecord(record.stop, stream));
        std::lock_guard<std::mutex> lock(g_mutex);
        g_records.push_back(std::move(record));
        return result;
      }
    } catch (...) {  // an entry that threw (out of memory, say) is not timed; its events go back to the pool
      std::lock_guard<std::mutex> lock(g_mutex);
      g_idle_events.push_back(record.start);
      g_idle_events.push_back(record.stop);
      throw;
    }
  }
};

template <auto Member>
void wrap(Backend& row, const char* name) {
  Wrap<Member>::name = name;
  row.*Member = &Wrap<Member>::call;
}

void release_records() {
  for (const Record& r : g_records) {
    g_idle_events.push_back(r.start);
    g_idle_events.push_back(r.stop);
  }
  g_records.clear();
}

}  // namespace

std::string conv_kind(const Conv2dGeometry& g, const Shape& input, const Shape& weight) {
  const std::string size = std::to_string(weight[2]) + "x" + std::to_string(weight[3]);
  if (g.groups > 1) return (weight[1] == 1 ? "depthwise " : "grouped ") + size;
  if (size != "1x1") return size;
  return input[2] * input[3] == 1 ? "1x1 squeeze-excite" : "1x1";
}

void set_profiling(bool on) { g_profiling.store(on, std::memory_order_relaxed); }

bool profiling() { return g_profiling.load(std::memory_order_relaxed); }

const Backend& profiled_backend() {
  static const Backend row = [] {
    Backend b = cuda_backend();
    b.name = "cuda (profiled)";
    wrap<&Backend::fill>(b, "fill");
    wrap<&Backend::copy>(b, "copy");
    wrap<&Backend::copy_with_host>(b, "copy_with_host");
    wrap<&Backend::random>(b, "random");
    wrap<&Backend::unary>(b, "unary");
    wrap<&Backend::binary>(b, "binary");
    wrap<&Backend::addcmul>(b, "addcmul");
    wrap<&Backend::reduce>(b, "reduce");
    wrap<&Backend::argmax>(b, "argmax");
    wrap<&Backend::softmax>(b, "softmax");
    wrap<&Backend::softmax_backward>(b, "softmax_backward");
    wrap<&Backend::matmul>(b, "matmul");
    wrap<&Backend::conv2d>(b, "conv2d");
    wrap<&Backend::conv2d_backward_input>(b, "conv2d_backward_input");
    wrap<&Backend::conv2d_backward_weight>(b, "conv2d_backward_weight");
    wrap<&Backend::batch_norm_train>(b, "batch_norm_train");
    wrap<&Backend::batch_norm_backward>(b, "batch_norm_backward");
    wrap<&Backend::batch_norm_eval>(b, "batch_norm_eval");
    wrap<&Backend::channel_gate_backward>(b, "channel_gate_backward");
    wrap<&Backend::cross_entropy>(b, "cross_entropy");
    wrap<&Backend::cross_entropy_backward>(b, "cross_entropy_backward");
    wrap<&Backend::optimizer_step>(b, "optimizer_step");
    wrap<&Backend::global_norm>(b, "global_norm");
    wrap<&Backend::clip_by_norm>(b, "clip_by_norm");
    return b;
  }();
  return row;
}

std::string profile_report(int steps) {
  EFFNET_CUDA_CHECK(cudaDeviceSynchronize());
  std::lock_guard<std::mutex> lock(g_mutex);
  struct Total {
    int64_t calls = 0;
    double ms = 0;
  };
  std::map<std::string, Total> totals;
  double all = 0;
  for (const Record& r : g_records) {
    float ms = 0;
    EFFNET_CUDA_CHECK(cudaEventElapsedTime(&ms, r.start, r.stop));
    Total& t = totals[r.label];
    ++t.calls;
    t.ms += ms;
    all += ms;
  }
  release_records();
  std::vector<std::pair<std::string, Total>> rows(totals.begin(), totals.end());
  std::sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) { return a.second.ms > b.second.ms; });
  std::ostringstream out;
  char line[256];
  std::snprintf(line, sizeof line, "%-36s %8s %10s %10s %7s\n", "kernel entry", "calls", "total ms", "ms/step",
                "share");
  out << line;
  for (const auto& [name, t] : rows) {
    std::snprintf(line, sizeof line, "%-36s %8lld %10.2f %10.3f %6.1f%%\n", name.c_str(),
                  static_cast<long long>(t.calls), t.ms, t.ms / steps, 100.0 * t.ms / all);
    out << line;
  }
  std::snprintf(line, sizeof line, "%-36s %8s %10.2f %10.3f\n", "sum of the entries", "", all, all / steps);
  out << line;
  return out.str();
}

}  // namespace effnet::cuda
