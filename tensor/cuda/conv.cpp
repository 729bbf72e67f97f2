// 2-D convolution through cuDNN (NCHW or channels-last NHWC; float32, float64, and float16 / bfloat16 with
// float32 accumulation): the forward product and its two gradients.
//
//   forward          y[n, k, p, q] = sum_{c in group(k), r, s} w[k, c, r, s] x[n, c, ih(p, r), iw(q, s)]
//   backward input   grad_x[n, c, i, j] = sum over k in group(c) and the (r, s, p, q) with ih(p, r) = i and
//                    iw(q, s) = j of w[k, c, r, s] grad_y[n, k, p, q]
//   backward weight  grad_w[k, c, r, s] = sum_{n, p, q} grad_y[n, k, p, q] x[n, c, ih(p, r), iw(q, s)]
//   ih(p, r) = p stride_h - pad_h + r dilation_h (taps outside [0, H) read zero); iw likewise
//
//   N batch   C input channels    H, W input height, width    G groups (w holds C / G input channels)
//   K output channels   R, S filter height, width   P, Q output height, width
//
// Two kinds that cuDNN's legacy API runs far below memory speed go elsewhere (unless EFFNET_CUDNN_ONLY=1):
// depthwise convolutions with 3x3 and 5x5 filters (EfficientNet's) to effnet's own kernels
// (depthwise_conv.cu), and 1x1 convolutions with channels innermost to cuBLAS (pointwise_conv.cpp).
//
// A batch too large for one cuDNN call (an operand of 2^31 elements or more) is convolved in chunks of
// whole images (convolve_in_chunks).
//
// cuDNN has several algorithms per direction (implicit GEMM, FFT, Winograd, ...), each with its own speed,
// scratch needs and dtype support. One is chosen per problem, the first time it is seen: from cuDNN's
// heuristics, or (cudnn_benchmark(), tensor/math_mode.h) by timing them all on the real operands, which
// costs a pass of every algorithm but can pick a faster one. The choice is cached with its workspace size, beside the
// candidate needing the least workspace, which runs when the chosen one's workspace cannot be had at the
// time; the workspace itself is a caching-allocator block for the call (Scratch). A float16 / bfloat16 or
// NHWC problem that cuDNN has no algorithm for, or refuses to run, is computed on row-major copies (float32
// for 16-bit ones; said once on stderr); float64 NHWC always is, as in PyTorch.
//
// float32 runs with CUDNN_FMA_MATH: the default math lets Ampere and later GPUs use TF32 tensor cores, which
// round the inputs to 10 mantissa bits (~1e-3 relative error), and results must match the CPU to ~1e-5 —
// unless allow_tf32() (tensor/math_mode.h) asks for the faster math. float16 and bfloat16 use tensor cores
// with float32 accumulation (compute type float32).
#include <algorithm>
#include <array>
#include <atomic>
#include <climits>
#include <cstdio>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "tensor/cuda/allocator.h"
#include "tensor/cuda/check.h"
#include "tensor/cuda/context.h"
#include "tensor/cuda/cudnn.h"
#include "tensor/cuda/kernels.h"
#include "tensor/math_mode.h"
#include "tensor/ops.h"

namespace effnet::cuda {
namespace {

// Algorithms wanting more scratch than this are passed over: a cached workspace that large would stay
// reserved for the rest of the run.
constexpr size_t kMaxWorkspaceBytes = size_t{1} << 30;

enum class Direction { Forward, BackwardInput, BackwardWeight };

const char* op_name(Direction direction) {
  switch (direction) {
    case Direction::Forward: return "cuda conv2d";
    case Direction::BackwardInput: return "cuda conv2d_backward_input";
    case Direction::BackwardWeight: return "cuda conv2d_backward_weight";
  }
  return "cuda conv2d";
}

int as_int(int64_t value, Direction direction, const char* what) {
  EFFNET_CHECK(value >= 0 && value <= INT_MAX, op_name(direction), ": ", what, " = ", value,
               " exceeds cuDNN's int range");
  return static_cast<int>(value);
}

// One convolution as cuDNN sees it. x, w and y keep their forward roles in every direction: the backward
// input writes x (grad_x) from y (grad_y), the backward weight writes w (grad_w).
struct Problem {
  cudnnHandle_t handle = nullptr;
  cudnnDataType_t type = CUDNN_DATA_FLOAT;
  bool tf32 = false;  // float32 may use TF32 tensor cores
  cudnnTensorFormat_t format = CUDNN_TENSOR_NCHW;  // NHWC when the operands are channels-last
  TensorDescriptor x_desc, y_desc;
  FilterDescriptor w_desc;
  ConvolutionDescriptor conv_desc;
  void* x = nullptr;
  void* w = nullptr;
  void* y = nullptr;

  Problem(Direction direction, cudnnHandle_t cudnn, const Tensor& xt, const Tensor& wt, const Tensor& yt,
          const Conv2dGeometry& g)
      : handle(cudnn),
        type(cudnn_type(xt.dtype())),
        tf32(type == CUDNN_DATA_FLOAT && allow_tf32()),
        format(xt.suggest_memory_format() == MemoryFormat::ChannelsLast ? CUDNN_TENSOR_NHWC : CUDNN_TENSOR_NCHW),
        x(xt.data_ptr()),
        w(wt.data_ptr()),
        y(yt.data_ptr()) {
    // cuDNN's legacy descriptors hold int sizes and strides, so whole tensors must index in 32 bits
    // (convolve_in_chunks keeps a batch's chunks within max_elements_per_call(), which tests lower).
    for (const Tensor* t : {&xt, &wt, &yt}) {
      EFFNET_CHECK(t->numel() <= max_elements_per_call(), op_name(direction), ": ", t->str(), " has more than ",
                   max_elements_per_call(), " elements, more than one cuDNN call takes");
    }
    auto dim = [&](const Tensor& t, int d) { return as_int(t.size(d), direction, "a size"); };
    // Sizes are given as N, C, H, W (K, C, R, S) in either format; NHWC says how they lie in memory.
    EFFNET_CUDNN_CHECK(cudnnSetTensor4dDescriptor(x_desc.get(), format, type, dim(xt, 0), dim(xt, 1), dim(xt, 2),
                                                  dim(xt, 3)));
    EFFNET_CUDNN_CHECK(cudnnSetTensor4dDescriptor(y_desc.get(), format, type, dim(yt, 0), dim(yt, 1), dim(yt, 2),
                                                  dim(yt, 3)));
    EFFNET_CUDNN_CHECK(cudnnSetFilter4dDescriptor(w_desc.get(), type, format, dim(wt, 0), dim(wt, 1), dim(wt, 2),
                                                  dim(wt, 3)));
    EFFNET_CUDNN_CHECK(cudnnSetConvolution2dDescriptor(
        conv_desc.get(), as_int(g.pad_h, direction, "pad_h"), as_int(g.pad_w, direction, "pad_w"),
        as_int(g.stride_h, direction, "stride_h"), as_int(g.stride_w, direction, "stride_w"),
        as_int(g.dilation_h, direction, "dilation_h"), as_int(g.dilation_w, direction, "dilation_w"),
        CUDNN_CROSS_CORRELATION, compute_type()));
    EFFNET_CUDNN_CHECK(cudnnSetConvolutionGroupCount(conv_desc.get(), as_int(g.groups, direction, "groups")));
    // Tells the algorithm search which math it may use; the choice's own math type is set before the run.
    EFFNET_CUDNN_CHECK(cudnnSetConvolutionMathType(conv_desc.get(), default_math()));
  }

  // Accumulation: float64 for float64, float32 for everything else.
  cudnnDataType_t compute_type() const { return type == CUDNN_DATA_DOUBLE ? CUDNN_DATA_DOUBLE : CUDNN_DATA_FLOAT; }

  // The math the algorithm search may consider. 16-bit data asks for tensor cores outright: the searches
  // offer the descriptor's math type and the default one, and tensor-core algorithms are what 16-bit is for.
  cudnnMathType_t default_math() const {
    if (type == CUDNN_DATA_HALF || type == CUDNN_DATA_BFLOAT16) return CUDNN_TENSOR_OP_MATH;
    return type == CUDNN_DATA_FLOAT && !tf32 ? CUDNN_FMA_MATH : CUDNN_DEFAULT_MATH;
  }

  // Whether an algorithm's math keeps the precision asked for: only plain FMA for float32 without TF32
  // (anything else may be TF32); otherwise anything but ALLOW_CONVERSION, which may round float32 or float64
  // operands to float16, or bfloat16 ones to float16's narrower range.
  bool precise(cudnnMathType_t math) const {
    if (type == CUDNN_DATA_FLOAT && !tf32) return math == CUDNN_FMA_MATH;
    return math != CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION;
  }

  const char* precision_name() const {
    switch (type) {
      case CUDNN_DATA_DOUBLE: return "float64";
      case CUDNN_DATA_HALF: return "float16";
      case CUDNN_DATA_BFLOAT16: return "bfloat16";
      default: return tf32 ? "float32 (TF32 allowed)" : "full-precision float32";
    }
  }

  static cudnnDataType_t cudnn_type(DType dtype) {
    switch (dtype) {
      case DType::Float64: return CUDNN_DATA_DOUBLE;
      case DType::Float16: return CUDNN_DATA_HALF;
      case DType::BFloat16: return CUDNN_DATA_BFLOAT16;
      default: return CUDNN_DATA_FLOAT;
    }
  }

  // cuDNN's blend factors are double for double data and float for every other type.
  const void* one() const { return type == CUDNN_DATA_DOUBLE ? static_cast<const void*>(&kOneD) : &kOneF; }
  const void* zero() const { return type == CUDNN_DATA_DOUBLE ? static_cast<const void*>(&kZeroD) : &kZeroF; }
};

// The cuDNN entry points of each direction, under one set of names.
template <Direction D>
struct Api;

template <>
struct Api<Direction::Forward> {
  using Algo = cudnnConvolutionFwdAlgo_t;
  using Perf = cudnnConvolutionFwdAlgoPerf_t;

  static int max_count(const Problem& p) {
    int count = 0;
    EFFNET_CUDNN_CHECK(cudnnGetConvolutionForwardAlgorithmMaxCount(p.handle, &count));
    return count;
  }
  static cudnnStatus_t heuristics(const Problem& p, std::vector<Perf>& perf, int& returned) {
    return cudnnGetConvolutionForwardAlgorithm_v7(p.handle, p.x_desc.get(), p.w_desc.get(), p.conv_desc.get(),
                                                  p.y_desc.get(), static_cast<int>(perf.size()), &returned,
                                                  perf.data());
  }
  static cudnnStatus_t find(const Problem& p, std::vector<Perf>& perf, int& returned, void* workspace,
                            size_t bytes) {
    return cudnnFindConvolutionForwardAlgorithmEx(p.handle, p.x_desc.get(), p.x, p.w_desc.get(), p.w,
                                                  p.conv_desc.get(), p.y_desc.get(), p.y,
                                                  static_cast<int>(perf.size()), &returned, perf.data(), workspace,
                                                  bytes);
  }
  static cudnnStatus_t workspace_size(const Problem& p, Algo algo, size_t& bytes) {
    return cudnnGetConvolutionForwardWorkspaceSize(p.handle, p.x_desc.get(), p.w_desc.get(), p.conv_desc.get(),
                                                   p.y_desc.get(), algo, &bytes);
  }
  static cudnnStatus_t run(const Problem& p, Algo algo, void* workspace, size_t bytes) {
    return cudnnConvolutionForward(p.handle, p.one(), p.x_desc.get(), p.x, p.w_desc.get(), p.w,
                                   p.conv_desc.get(), algo, workspace, bytes, p.zero(), p.y_desc.get(), p.y);
  }
};

template <>
struct Api<Direction::BackwardInput> {
  using Algo = cudnnConvolutionBwdDataAlgo_t;
  using Perf = cudnnConvolutionBwdDataAlgoPerf_t;

  static int max_count(const Problem& p) {
    int count = 0;
    EFFNET_CUDNN_CHECK(cudnnGetConvolutionBackwardDataAlgorithmMaxCount(p.handle, &count));
    return count;
  }
  static cudnnStatus_t heuristics(const Problem& p, std::vector<Perf>& perf, int& returned) {
    return cudnnGetConvolutionBackwardDataAlgorithm_v7(p.handle, p.w_desc.get(), p.y_desc.get(),
                                                       p.conv_desc.get(), p.x_desc.get(),
                                                       static_cast<int>(perf.size()), &returned, perf.data());
  }
  static cudnnStatus_t find(const Problem& p, std::vector<Perf>& perf, int& returned, void* workspace,
                            size_t bytes) {
    return cudnnFindConvolutionBackwardDataAlgorithmEx(p.handle, p.w_desc.get(), p.w, p.y_desc.get(), p.y,
                                                       p.conv_desc.get(), p.x_desc.get(), p.x,
                                                       static_cast<int>(perf.size()), &returned, perf.data(),
                                                       workspace, bytes);
  }
  static cudnnStatus_t workspace_size(const Problem& p, Algo algo, size_t& bytes) {
    return cudnnGetConvolutionBackwardDataWorkspaceSize(p.handle, p.w_desc.get(), p.y_desc.get(),
                                                        p.conv_desc.get(), p.x_desc.get(), algo, &bytes);
  }
  static cudnnStatus_t run(const Problem& p, Algo algo, void* workspace, size_t bytes) {
    return cudnnConvolutionBackwardData(p.handle, p.one(), p.w_desc.get(), p.w, p.y_desc.get(), p.y,
                                        p.conv_desc.get(), algo, workspace, bytes, p.zero(), p.x_desc.get(), p.x);
  }
};

template <>
struct Api<Direction::BackwardWeight> {
  using Algo = cudnnConvolutionBwdFilterAlgo_t;
  using Perf = cudnnConvolutionBwdFilterAlgoPerf_t;

  static int max_count(const Problem& p) {
    int count = 0;
    EFFNET_CUDNN_CHECK(cudnnGetConvolutionBackwardFilterAlgorithmMaxCount(p.handle, &count));
    return count;
  }
  static cudnnStatus_t heuristics(const Problem& p, std::vector<Perf>& perf, int& returned) {
    return cudnnGetConvolutionBackwardFilterAlgorithm_v7(p.handle, p.x_desc.get(), p.y_desc.get(),
                                                         p.conv_desc.get(), p.w_desc.get(),
                                                         static_cast<int>(perf.size()), &returned, perf.data());
  }
  static cudnnStatus_t find(const Problem& p, std::vector<Perf>& perf, int& returned, void* workspace,
                            size_t bytes) {
    return cudnnFindConvolutionBackwardFilterAlgorithmEx(p.handle, p.x_desc.get(), p.x, p.y_desc.get(), p.y,
                                                         p.conv_desc.get(), p.w_desc.get(), p.w,
                                                         static_cast<int>(perf.size()), &returned, perf.data(),
                                                         workspace, bytes);
  }
  static cudnnStatus_t workspace_size(const Problem& p, Algo algo, size_t& bytes) {
    return cudnnGetConvolutionBackwardFilterWorkspaceSize(p.handle, p.x_desc.get(), p.y_desc.get(),
                                                          p.conv_desc.get(), p.w_desc.get(), algo, &bytes);
  }
  static cudnnStatus_t run(const Problem& p, Algo algo, void* workspace, size_t bytes) {
    return cudnnConvolutionBackwardFilter(p.handle, p.one(), p.x_desc.get(), p.x, p.y_desc.get(), p.y,
                                          p.conv_desc.get(), algo, workspace, bytes, p.zero(), p.w_desc.get(),
                                          p.w);
  }
};

struct Key {
  int device = 0;
  Direction direction = Direction::Forward;
  DType dtype = kFloat32;
  bool tf32 = false;
  cudnnTensorFormat_t format = CUDNN_TENSOR_NCHW;
  bool aligned = true;  // every operand at a multiple of 16 bytes (a batch's later chunks may not be)
  bool timed = false;   // chosen by the timed search (cudnn_benchmark()), not by the heuristics
  std::array<int64_t, 4> x{}, w{}, y{};
  std::array<int64_t, 7> geometry{};
  auto operator<=>(const Key&) const = default;
};

struct Choice {
  int algo = -1;  // the direction's cudnnConvolution*Algo_t; -1: none
  cudnnMathType_t math = CUDNN_DEFAULT_MATH;
  size_t workspace = 0;
};

// The best candidate, and the one needing the least workspace: what runs when the best one's workspace
// does not fit at the time (the search may have seen more free memory).
struct Choices {
  Choice best, lean;
};

std::mutex g_choices_mutex;
std::map<Key, Choices> g_choices;

// cuDNN saying that it cannot take a problem as described (a layout, dtype or alignment it does not cover):
// the caller computes on row-major copies instead. Any other failure is an error.
bool refused(cudnnStatus_t status) {
  const int category = CUDNN_STATUS_CATEGORY(status);
  return category == CUDNN_STATUS_NOT_SUPPORTED || category == CUDNN_STATUS_BAD_PARAM;
}

bool out_of_memory(cudnnStatus_t status) {
  return status == CUDNN_STATUS_INTERNAL_ERROR_HOST_ALLOCATION_FAILED ||
         status == CUDNN_STATUS_INTERNAL_ERROR_DEVICE_ALLOCATION_FAILED;
}

// Throws unless cuDNN succeeded, naming the convolution and the call (`what`) with cuDNN's status.
template <Direction D>
void check(cudnnStatus_t status, const char* what) {
  if (status == CUDNN_STATUS_SUCCESS) return;
  const std::string call = std::string(op_name(D)) + ": " + what;
  detail::throw_cudnn_error(status, call.c_str(), __FILE__, __LINE__);
}

bool env_is_1(const char* name) {
  const char* value = std::getenv(name);
  return value != nullptr && std::strcmp(value, "1") == 0;
}

std::atomic<bool> g_own_conv_kernels{!env_is_1("EFFNET_CUDNN_ONLY")};

// EFFNET_CUDNN_LOG=1: one stderr line per problem when its algorithm is chosen (which algorithm, math and
// workspace), to see what cuDNN picks for each shape, dtype and layout.
bool log_enabled() {
  static const bool enabled = env_is_1("EFFNET_CUDNN_LOG");
  return enabled;
}

const char* math_name(cudnnMathType_t math) {
  switch (math) {
    case CUDNN_DEFAULT_MATH: return "default";
    case CUDNN_TENSOR_OP_MATH: return "tensor-op";
    case CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION: return "tensor-op-allow-conversion";
    case CUDNN_FMA_MATH: return "fma";
  }
  return "?";
}

// A block of the caching allocator for one call's workspace, returned when the call has been queued: the
// allocator hands it out again only for the context stream, after the work queued on it. Nothing is held
// between calls, so a workspace sized for a large batch does not outlive it (PyTorch frees its own so too).
class Scratch {
 public:
  enum class OnOutOfMemory { Throw, Halve };
  Scratch(int device, cudaStream_t stream, size_t bytes, OnOutOfMemory on_oom = OnOutOfMemory::Throw)
      : allocator_(device_allocator(device)) {
    for (;;) {
      try {
        ptr_ = allocator_.allocate(bytes, stream);
        bytes_ = bytes;
        return;
      } catch (const OutOfMemoryError&) {
        if (on_oom == OnOutOfMemory::Throw || bytes == 0) throw;
        bytes /= 2;
      }
    }
  }
  ~Scratch() { allocator_.free(ptr_); }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  void* get() const { return ptr_; }
  size_t bytes() const { return bytes_; }

 private:
  CachingAllocator& allocator_;
  void* ptr_ = nullptr;
  size_t bytes_ = 0;
};

// Fills `perf` with the candidates, best first: cuDNN's heuristic ranking, or the timed ranking when
// benchmarking. Returns how many there are; none when cuDNN refuses a problem that may go to row-major
// copies (any other refusal is an error that names cuDNN's status). (The timed search writes the output
// tensor, which the run overwrites afterwards.)
template <Direction D>
int rank_candidates(const Problem& p, const Context& ctx, bool copies_allowed,
                    std::vector<typename Api<D>::Perf>& perf) {
  int count = 0;
  const cudnnStatus_t ranked = Api<D>::heuristics(p, perf, count);
  if (copies_allowed && refused(ranked)) return 0;
  check<D>(ranked, "cuDNN's heuristic ranking of the algorithms");
  if (!cudnn_benchmark()) return count;
  size_t bytes = 0;
  for (int i = 0; i < count; ++i) {
    if (perf[i].status == CUDNN_STATUS_SUCCESS && p.precise(perf[i].mathType) &&
        perf[i].memory <= kMaxWorkspaceBytes) {
      bytes = std::max(bytes, perf[i].memory);
    }
  }
  // The search can do with less (the hungriest algorithms are then skipped), so a full GPU halves the
  // request rather than failing.
  Scratch scratch(ctx.device, ctx.stream, bytes, Scratch::OnOutOfMemory::Halve);
  int timed = 0;
  const cudnnStatus_t found = Api<D>::find(p, perf, timed, scratch.get(), scratch.bytes());
  if (!refused(found) && !out_of_memory(found)) {
    check<D>(found, "cuDNN's timed search of the algorithms");
    return timed;
  }
  // The timed search refused what the heuristics ranked, or ran out of memory (near a full device): their
  // ranking again (the search wrote over it).
  check<D>(Api<D>::heuristics(p, perf, count), "cuDNN's heuristic ranking of the algorithms");
  return count;
}

// The best candidate that keeps the precision asked for and fits the workspace limit, and the one of them
// that needs the least workspace; algo -1 when there is none.
template <Direction D>
Choices choose(Problem& p, const Context& ctx, bool copies_allowed) {
  std::vector<typename Api<D>::Perf> perf(static_cast<size_t>(std::max(Api<D>::max_count(p), 1)));
  const int count = rank_candidates<D>(p, ctx, copies_allowed, perf);
  Choices choices;
  for (int i = 0; i < count; ++i) {
    if (perf[i].status != CUDNN_STATUS_SUCCESS || !p.precise(perf[i].mathType)) continue;
    // The workspace size depends on the math type as well as the algorithm.
    EFFNET_CUDNN_CHECK(cudnnSetConvolutionMathType(p.conv_desc.get(), perf[i].mathType));
    size_t bytes = 0;
    const cudnnStatus_t status = Api<D>::workspace_size(p, perf[i].algo, bytes);
    if (refused(status)) continue;
    check<D>(status, "cuDNN's workspace size of an algorithm");
    if (bytes > kMaxWorkspaceBytes) continue;
    const Choice candidate{static_cast<int>(perf[i].algo), perf[i].mathType, bytes};
    if (choices.best.algo < 0) {
      choices.best = choices.lean = candidate;
    } else if (bytes < choices.lean.workspace) {
      choices.lean = candidate;
    }
  }
  return choices;
}

// Runs the best choice; when its workspace cannot be had now, the leanest instead (if that is another).
// Returns cuDNN's status, and in `ran_best` which of the two ran.
template <Direction D>
cudnnStatus_t run_chosen(Problem& p, const Context& ctx, const Choices& choices, bool& ran_best) {
  auto run = [&](const Choice& choice) {
    EFFNET_CUDNN_CHECK(cudnnSetConvolutionMathType(p.conv_desc.get(), choice.math));
    std::optional<Scratch> workspace;
    if (choice.workspace > 0) workspace.emplace(ctx.device, ctx.stream, choice.workspace);
    return Api<D>::run(p, static_cast<typename Api<D>::Algo>(choice.algo), workspace ? workspace->get() : nullptr,
                       choice.workspace);
  };
  ran_best = true;
  if (choices.lean.workspace >= choices.best.workspace) return run(choices.best);
  try {
    return run(choices.best);
  } catch (const OutOfMemoryError&) {  // only the workspace's allocation throws; nothing ran
    ran_best = false;
    return run(choices.lean);
  }
}

// For a problem cuDNN cannot run as given: a row-major tensor like t in the dtype it computes in (float32
// for a 16-bit t), holding t's values (exact) unless it is the output, which is only written.
Tensor row_major_copy(const Tensor& t, bool is_output) {
  const DType dtype = is_16bit(t.dtype()) ? kFloat32 : t.dtype();
  Tensor copied = make_tensor(allocate(static_cast<size_t>(t.numel()) * element_size(dtype), t.device()),
                              t.shape(), contiguous_strides(t.shape()), 0, dtype);
  if (!is_output) copy(copied, t);
  return copied;
}

std::array<int64_t, 4> dims(const Tensor& t) { return {t.size(0), t.size(1), t.size(2), t.size(3)}; }

template <Direction D>
void convolve(const Tensor& x, const Tensor& w, const Tensor& y, const Conv2dGeometry& g);

// The same sums on row-major copies (float32 for 16-bit operands, exact), the result written back rounded
// once and in the output's layout, as the CPU does.
template <Direction D>
void convolve_on_row_major_copies(const Tensor& x, const Tensor& w, const Tensor& y, const Conv2dGeometry& g) {
  const Tensor xc = row_major_copy(x, D == Direction::BackwardInput);
  const Tensor wc = row_major_copy(w, D == Direction::BackwardWeight);
  const Tensor yc = row_major_copy(y, D == Direction::Forward);
  convolve<D>(xc, wc, yc, g);
  if constexpr (D == Direction::Forward) copy(y, yc);
  if constexpr (D == Direction::BackwardInput) copy(x, xc);
  if constexpr (D == Direction::BackwardWeight) copy(w, wc);
}

bool aligned16(const Tensor& t) { return reinterpret_cast<uintptr_t>(t.data_ptr()) % 16 == 0; }

// cuDNN's legacy descriptors index a tensor in 32 bits, so a batch whose input or output has more elements
// than max_elements_per_call() is convolved in chunks of whole images, as PyTorch does: each chunk writes
// its images of y (forward) or of x (backward input); the weight's gradient is the sum of the chunks' (each
// rounded to w's dtype by cuDNN), added in float32 (float64 for float64) and rounded into w. Chunks hold at
// most 2^28 elements, as PyTorch's, so that their workspaces (and any float32 copies of the fallback) stay
// small. Returns false when one call takes the batch.
template <Direction D>
bool convolve_in_chunks(const Tensor& x, const Tensor& w, const Tensor& y, const Conv2dGeometry& g) {
  const int64_t n = x.size(0), largest = std::max(x.numel(), y.numel());
  if (largest <= max_elements_per_call() || n <= 1) return false;
  // An image alone past the limit is left to one call, which says so (Problem's checks).
  constexpr int64_t kChunkElements = int64_t{1} << 28;
  const int64_t chunk_elements = std::min(max_elements_per_call(), kChunkElements);
  const int64_t images = std::max<int64_t>(1, chunk_elements / (largest / n));
  auto chunk = [&](const Tensor& t, int64_t first) { return t.slice(0, first, std::min(n, first + images)); };
  if constexpr (D != Direction::BackwardWeight) {
    for (int64_t first = 0; first < n; first += images) convolve<D>(chunk(x, first), w, chunk(y, first), g);
  } else {
    const MemoryFormat format = x.suggest_memory_format();
    const TensorOptions sum_options(w.dtype() == kFloat64 ? kFloat64 : kFloat32, w.device());
    const Tensor total = empty(w.shape(), sum_options, format);
    const Tensor part = empty(w.shape(), TensorOptions(w.dtype(), w.device()), format);
    const Tensor widened = part.dtype() == total.dtype() ? part : empty(w.shape(), sum_options, format);
    for (int64_t first = 0; first < n; first += images) {
      convolve<D>(chunk(x, first), part, chunk(y, first), g);
      if (first == 0) {
        copy(total, part);
      } else {
        if (widened.data_ptr() != part.data_ptr()) copy(widened, part);
        binary(BinaryOp::Add, total, widened, total);
      }
    }
    copy(w, total);
  }
  return true;
}

template <Direction D>
void convolve(const Tensor& x, const Tensor& w, const Tensor& y, const Conv2dGeometry& g) {
  const Tensor& out = D == Direction::Forward ? y : D == Direction::BackwardInput ? x : w;
  EFFNET_CHECK(x.dim() == 4 && w.dim() == 4 && y.dim() == 4, op_name(D), ": expected 4-D operands, got ",
               x.str(), ", ", w.str(), ", ", y.str());
  EFFNET_CHECK(x.dtype() == w.dtype() && x.dtype() == y.dtype() && is_floating(x.dtype()), op_name(D),
               ": expected one floating dtype, got ", x.str(), ", ", w.str(), ", ", y.str());
  const MemoryFormat format = x.suggest_memory_format();
  EFFNET_CHECK(x.is_contiguous(format) && w.is_contiguous(format) && y.is_contiguous(format), op_name(D),
               ": operands must be dense in one memory format (row-major or channels-last), got ", x.str(), ", ",
               w.str(), ", ", y.str());
  if (out.numel() == 0) return;

  const int device = out.device().index;
  Context& ctx = context(device);
  DeviceGuard guard(device);
  // An empty operand leaves every sum empty (cuDNN refuses zero sizes).
  if (x.numel() == 0 || w.numel() == 0 || y.numel() == 0) {
    const size_t bytes = static_cast<size_t>(out.numel()) * element_size(out.dtype());
    EFFNET_CUDA_CHECK(cudaMemsetAsync(out.data_ptr(), 0, bytes, ctx.stream));
    return;
  }
  if (own_conv_kernels() && depthwise_conv_supported(x, w, y, g)) {
    if constexpr (D == Direction::Forward) depthwise_conv2d(x, w, g, y);
    if constexpr (D == Direction::BackwardInput) depthwise_conv2d_backward_input(y, w, g, x);
    if constexpr (D == Direction::BackwardWeight) depthwise_conv2d_backward_weight(y, x, g, w);
    return;
  }
  if (own_conv_kernels() && pointwise_conv_supported(x, w, y, g)) {
    if constexpr (D == Direction::Forward) pointwise_conv2d(x, w, y);
    if constexpr (D == Direction::BackwardInput) pointwise_conv2d_backward_input(y, w, x);
    if constexpr (D == Direction::BackwardWeight) pointwise_conv2d_backward_weight(y, x, w);
    return;
  }
  if (convolve_in_chunks<D>(x, w, y, g)) return;
  // cuDNN's NHWC kernels hardly cover float64 (PyTorch keeps float64 row-major for cuDNN too).
  if (x.dtype() == kFloat64 && format == MemoryFormat::ChannelsLast) {
    convolve_on_row_major_copies<D>(x, w, y, g);
    return;
  }

  Problem p(D, ctx.cudnn, x, w, y, g);
  // A 16-bit or NHWC problem cuDNN cannot run goes to row-major copies; a row-major float32 or float64 one
  // is an error (cuDNN runs those, so something else is wrong).
  const bool copies_allowed = is_16bit(x.dtype()) || p.format == CUDNN_TENSOR_NHWC;
  const std::array<int64_t, 7> geometry{g.stride_h, g.stride_w, g.pad_h, g.pad_w,
                                        g.dilation_h, g.dilation_w, g.groups};
  const bool aligned = aligned16(x) && aligned16(w) && aligned16(y);
  const Key key{device, D, x.dtype(), p.tf32, p.format, aligned, cudnn_benchmark(), dims(x), dims(w), dims(y),
                geometry};
  Choices choices;
  bool cached = false;
  {
    std::lock_guard<std::mutex> lock(g_choices_mutex);
    const auto it = g_choices.find(key);
    if (it != g_choices.end()) {
      choices = it->second;
      cached = true;
    }
  }
  auto say_copies = [&](const std::string& why) {
    std::fprintf(stderr, "effnet: %s: cuDNN %s %s%s x %s, w %s, y %s; using %s copies\n", op_name(D),
                 why.c_str(), p.precision_name(), p.format == CUDNN_TENSOR_NHWC ? " NHWC" : "", x.str().c_str(),
                 w.str().c_str(), y.str().c_str(), is_16bit(x.dtype()) ? "row-major float32" : "row-major");
  };
  // Searched outside the lock: a search can take a while (timed ones run every algorithm), and two threads
  // racing on the same problem merely both search.
  if (!cached) {
    choices = choose<D>(p, ctx, copies_allowed);
    std::lock_guard<std::mutex> lock(g_choices_mutex);
    g_choices.emplace(key, choices);
    if (choices.best.algo < 0) {
      if (copies_allowed) say_copies("has no algorithm for");
    } else if (log_enabled()) {
      std::fprintf(stderr, "effnet: %s %s%s x %s w %s groups %lld stride %lld: algo %d, %s math, workspace %zu\n",
                   op_name(D), p.precision_name(), p.format == CUDNN_TENSOR_NHWC ? " NHWC" : "",
                   shape_str(x.shape()).c_str(), shape_str(w.shape()).c_str(), static_cast<long long>(g.groups),
                   static_cast<long long>(g.stride_h), choices.best.algo, math_name(choices.best.math),
                   choices.best.workspace);
    }
  }
  if (choices.best.algo < 0) {
    EFFNET_CHECK(copies_allowed, op_name(D), ": cuDNN offers no ", p.precision_name(), " algorithm within a ",
                 kMaxWorkspaceBytes >> 20, " MiB workspace");
    convolve_on_row_major_copies<D>(x, w, y, g);
    return;
  }
  bool ran_best = true;
  const cudnnStatus_t status = run_chosen<D>(p, ctx, choices, ran_best);
  if (refused(status) && copies_allowed) {
    // cuDNN refused at run time what its heuristics offered: done on copies, and from now on if it was the
    // best choice that was refused (the leanest runs only when memory is short).
    if (ran_best) {
      std::lock_guard<std::mutex> lock(g_choices_mutex);
      g_choices[key].best.algo = -1;
    }
    say_copies(std::string("refused (") + cudnnGetErrorString(status) + ") to run");
    convolve_on_row_major_copies<D>(x, w, y, g);
    return;
  }
  check<D>(status, "the run of the chosen algorithm");
}

}  // namespace

bool own_conv_kernels() { return g_own_conv_kernels.load(std::memory_order_relaxed); }
void set_own_conv_kernels(bool enabled) { g_own_conv_kernels.store(enabled, std::memory_order_relaxed); }

void conv2d(const Tensor& x, const Tensor& w, const Conv2dGeometry& g, const Tensor& y) {
  convolve<Direction::Forward>(x, w, y, g);
}

void conv2d_backward_input(const Tensor& grad_y, const Tensor& w, const Conv2dGeometry& g,
                           const Tensor& grad_x) {
  convolve<Direction::BackwardInput>(grad_x, w, grad_y, g);
}

void conv2d_backward_weight(const Tensor& grad_y, const Tensor& x, const Conv2dGeometry& g,
                            const Tensor& grad_w) {
  convolve<Direction::BackwardWeight>(x, grad_w, grad_y, g);
}

}  // namespace effnet::cuda
