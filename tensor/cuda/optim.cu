// CUDA optimizer kernels: one multi-tensor step of a parameter group (optim/multi_tensor.h), the global L2
// norm of a tensor list and the clipping multiply. The per-element equations are optim/update_math.h,
// shared with the CPU loops.
//
//   slot     one tensor of the list: its pointers, size, the rule's coefficients in its dtype, and where its
//            blocks, segments and rows start in the launch's index spaces (prefix sums over the slots)
//   table    the slots of one call, written on the host, copied to the device once per call through
//            page-locked staging, read by every launch of that call; a block or warp finds its slot by
//            binary search over the prefix sums (a few hundred slots: about nine loads)
//   chunk    kChunk consecutive elements of one tensor, handled by one block of the update and norm kernels
//   segment  at most kSegment consecutive elements of one row (output channel) of a projected parameter,
//            summed by one warp of the projection pass
//
// An optimizer step is one launch (update_kernel) for SGD, Adam/AdamW and MADGRAD, and three for AdamP and
// SGDP: projection_sums_kernel (per segment: g.p, g.g, p.p, p.u with u the rule's direction from the old
// state, nothing stored), projection_test_kernel (one block per slot: per-row sums from its segments in
// order, the test, a radial coefficient per row and whether the projection applied), then update_kernel.
// Every sum has a fixed order (warp and block trees, segments in order), so the same inputs give the
// same bits: a resumed run matches an uninterrupted one exactly. The global norm is two launches (per-chunk
// sums, then one block adds them in order) and clipping one.
#include <algorithm>
#include <cstring>
#include <functional>
#include <type_traits>
#include <vector>

#include "optim/multi_tensor.h"
#include "optim/update_math.h"
#include "tensor/cuda/allocator.h"
#include "tensor/cuda/check.h"
#include "tensor/cuda/context.h"
#include "tensor/cuda/kernels.h"
#include "tensor/cuda/launch.cuh"
#include "tensor/elementwise_math.h"

namespace effnet::cuda {
namespace {

constexpr int64_t kChunk = int64_t{kThreads} * 16;
constexpr int64_t kSegment = 2048;
constexpr int kWarpsPerBlock = kThreads / kWarpSize;

using optim_math::ProjectionSums;

template <class T>
struct Slot {
  T* param;
  const T* grad;
  T* state[3];
  int64_t numel;
  int64_t rows;        // projected parameters: size(0); 0 for the others
  int64_t row_length;  // projected parameters: numel / rows
  int64_t first_chunk;
  int64_t first_segment;
  int64_t first_row;
  optim_math::Coefficients<T> c;
};

// The slot that owns `item` of an index space: the last one whose start is <= item. A slot with nothing
// in that space starts where its successor starts and loses the tie to it.
template <class S, class Start>
__device__ int find_slot(const S* slots, int count, int64_t item, Start start) {
  int low = 0, high = count - 1;
  while (low < high) {
    const int mid = (low + high + 1) / 2;
    if (start(slots[mid]) <= item) low = mid;
    else high = mid - 1;
  }
  return low;
}

template <class T>
__device__ void load_state(const Slot<T>& slot, int64_t i, T (&s)[3]) {
  for (int k = 0; k < 3; ++k) s[k] = slot.state[k] != nullptr ? slot.state[k][i] : T(0);
}

template <UpdateRule kRule, class T>
__global__ void __launch_bounds__(kThreads)
    projection_sums_kernel(const Slot<T>* slots, int slot_count, int64_t segments, ProjectionSums* segment_sums) {
  const int64_t segment = int64_t{blockIdx.x} * kWarpsPerBlock + threadIdx.x / kWarpSize;
  if (segment >= segments) return;  // whole warps leave together
  const int lane = threadIdx.x % kWarpSize;
  const Slot<T>& slot =
      slots[find_slot(slots, slot_count, segment, [](const Slot<T>& s) { return s.first_segment; })];
  const int64_t per_row = (slot.row_length + kSegment - 1) / kSegment;
  const int64_t local = segment - slot.first_segment;
  const int64_t row_begin = (local / per_row) * slot.row_length;
  const int64_t begin = row_begin + (local % per_row) * kSegment;
  const int64_t end = std::min(begin + kSegment, row_begin + slot.row_length);
  ProjectionSums sums;
  for (int64_t i = begin + lane; i < end; i += kWarpSize) {
    T s[3];
    load_state(slot, i, s);
    const T u = optim_math::advance<kRule>(slot.c, slot.param[i], slot.grad[i], s);
    sums.add(slot.grad[i], slot.param[i], u);
  }
  const auto plus = [](double a, double b) { return a + b; };
  sums.grad_dot_param = warp_reduce(sums.grad_dot_param, plus);
  sums.grad_sq = warp_reduce(sums.grad_sq, plus);
  sums.param_sq = warp_reduce(sums.param_sq, plus);
  sums.param_dot_direction = warp_reduce(sums.param_dot_direction, plus);
  if (lane == 0) segment_sums[segment] = sums;
}

// One block per slot. Writes radial[first_row + r] for every row and applied[slot] (1: use the projected
// decay), leaving non-projected slots alone.
template <class T>
__global__ void __launch_bounds__(kThreads)
    projection_test_kernel(const Slot<T>* slots, const ProjectionSums* segment_sums, double delta, double eps,
                           double* radial, int* applied) {
  __shared__ double shared[kWarpSize + 1];
  __shared__ int mode;  // 0 none, 1 per row, 2 whole tensor
  __shared__ double whole_radial;
  const Slot<T>& slot = slots[blockIdx.x];
  if (slot.rows == 0) return;
  const int64_t per_row = (slot.row_length + kSegment - 1) / kSegment;
  double max_cosine = 0;
  ProjectionSums whole;
  for (int64_t r = threadIdx.x; r < slot.rows; r += blockDim.x) {
    ProjectionSums row;
    for (int64_t k = 0; k < per_row; ++k) row.add(segment_sums[slot.first_segment + r * per_row + k]);
    max_cosine = optim_math::max_propagating_nan(max_cosine, optim_math::abs_cosine(row, eps));
    whole.add(row);
    radial[slot.first_row + r] = optim_math::radial_coefficient(row, eps);
  }
  const auto plus = [](double a, double b) { return a + b; };
  max_cosine =
      block_reduce(max_cosine, [](double a, double b) { return optim_math::max_propagating_nan(a, b); }, shared);
  whole.grad_dot_param = block_reduce(whole.grad_dot_param, plus, shared);
  whole.grad_sq = block_reduce(whole.grad_sq, plus, shared);
  whole.param_sq = block_reduce(whole.param_sq, plus, shared);
  whole.param_dot_direction = block_reduce(whole.param_dot_direction, plus, shared);
  if (threadIdx.x == 0) {
    if (optim_math::nearly_orthogonal(max_cosine, delta, slot.row_length)) mode = 1;
    else if (optim_math::nearly_orthogonal(optim_math::abs_cosine(whole, eps), delta, slot.numel)) mode = 2;
    else mode = 0;
    whole_radial = mode == 2 ? optim_math::radial_coefficient(whole, eps) : 0.0;
    applied[blockIdx.x] = mode != 0;
  }
  __syncthreads();
  if (mode == 1) return;
  for (int64_t r = threadIdx.x; r < slot.rows; r += blockDim.x) radial[slot.first_row + r] = whole_radial;
}

// One block per chunk. radial and applied are null for rules without a projection.
template <UpdateRule kRule, class T>
__global__ void __launch_bounds__(kThreads)
    update_kernel(const Slot<T>* slots, int slot_count, const double* radial, const int* applied) {
  const int index = find_slot(slots, slot_count, blockIdx.x, [](const Slot<T>& s) { return s.first_chunk; });
  const Slot<T>& slot = slots[index];
  const int64_t begin = (blockIdx.x - slot.first_chunk) * kChunk;
  const int64_t end = std::min(begin + kChunk, slot.numel);
  const bool projected = applied != nullptr && slot.rows > 0 && applied[index] != 0;
  const T decay = projected ? slot.c.projected_decay : slot.c.decay;
  for (int64_t i = begin + threadIdx.x; i < end; i += blockDim.x) {
    T s[3];
    load_state(slot, i, s);
    const T p = slot.param[i];
    const T u = optim_math::advance<kRule>(slot.c, p, slot.grad[i], s);
    T direction = u;
    if (projected) {
      const auto r = static_cast<T>(radial[slot.first_row + i / slot.row_length]);
      direction = optim_math::project<kRule>(slot.c, p, u, r, s);
    }
    slot.param[i] = optim_math::apply<kRule>(slot.c, p, direction, decay);
    for (int k = 0; k < 3; ++k) {
      if (slot.state[k] != nullptr) slot.state[k][i] = s[k];
    }
  }
}

// ---- tensor lists without a rule: global norm and clipping

template <class T>
struct ListSlot {
  T* data;
  int64_t numel;
  int64_t first_chunk;
};

template <class T>
__global__ void __launch_bounds__(kThreads)
    chunk_square_sums_kernel(const ListSlot<T>* slots, int slot_count, double* chunk_sums) {
  __shared__ double shared[kWarpSize + 1];
  const ListSlot<T>& slot =
      slots[find_slot(slots, slot_count, blockIdx.x, [](const ListSlot<T>& s) { return s.first_chunk; })];
  const int64_t begin = (blockIdx.x - slot.first_chunk) * kChunk;
  const int64_t end = std::min(begin + kChunk, slot.numel);
  double sum = 0;
  for (int64_t i = begin + threadIdx.x; i < end; i += blockDim.x) sum += double(slot.data[i]) * double(slot.data[i]);
  sum = block_reduce(sum, [](double a, double b) { return a + b; }, shared);
  if (threadIdx.x == 0) chunk_sums[blockIdx.x] = sum;
}

template <class T>
__global__ void __launch_bounds__(kThreads)
    norm_from_chunks_kernel(const double* chunk_sums, int64_t chunks, T* out) {
  __shared__ double shared[kWarpSize + 1];
  double sum = 0;
  for (int64_t k = threadIdx.x; k < chunks; k += blockDim.x) sum += chunk_sums[k];
  sum = block_reduce(sum, [](double a, double b) { return a + b; }, shared);
  if (threadIdx.x == 0) *out = static_cast<T>(::sqrt(sum));
}

template <class T>
__global__ void __launch_bounds__(kThreads)
    clip_kernel(const ListSlot<T>* slots, int slot_count, const T* norm, T max_norm) {
  const ListSlot<T>& slot =
      slots[find_slot(slots, slot_count, blockIdx.x, [](const ListSlot<T>& s) { return s.first_chunk; })];
  const T coefficient = max_norm / (*norm + static_cast<T>(1e-6));
  const T factor = coefficient > T(1) ? T(1) : coefficient;  // a NaN coefficient stays NaN
  const int64_t begin = (blockIdx.x - slot.first_chunk) * kChunk;
  const int64_t end = std::min(begin + kChunk, slot.numel);
  for (int64_t i = begin + threadIdx.x; i < end; i += blockDim.x) slot.data[i] *= factor;
}

// ---- host side

int64_t chunks_of(int64_t numel) { return (numel + kChunk - 1) / kChunk; }

// Device scratch from the caching allocator: freed when the handle goes, reused only by later work on
// the same stream, so the launches queued before that still see it.
std::shared_ptr<Storage> scratch(size_t bytes, Device device) { return allocate(std::max<size_t>(bytes, 1), device); }

// Copies `items` to a new device buffer on the context's stream, through page-locked staging (whose block
// is reused only once the copy has run).
template <class Item>
std::shared_ptr<Storage> upload(const std::vector<Item>& items, Device device, const Context& ctx) {
  static_assert(std::is_trivially_copyable_v<Item>);
  const size_t bytes = items.size() * sizeof(Item);
  std::shared_ptr<Storage> staging = allocate_pinned_host(bytes);
  std::memcpy(staging->data(), items.data(), bytes);
  std::shared_ptr<Storage> table = scratch(bytes, device);
  EFFNET_CUDA_CHECK(cudaMemcpyAsync(table->data(), staging->data(), bytes, cudaMemcpyHostToDevice, ctx.stream));
  return table;
}

unsigned blocks_for(int64_t n, const char* what) {
  EFFNET_CHECK(n < (int64_t{1} << 31), what, ": ", n, " blocks exceed one launch's grid");
  return static_cast<unsigned>(n);
}

// One group's update in two halves: this makes its device table and scratch (the allocations, and the
// table's upload queued on the stream) and returns the launches, to be called once every group has its
// memory; nothing for a group with no elements.
template <UpdateRule kRule, class T>
std::function<void()> prepare_typed(const MultiTensorStep& step) {
  const Device device = step.params.front().param.device();
  std::vector<Slot<T>> slots;
  int64_t chunks = 0, segments = 0, rows = 0;
  for (const ParamUpdate& update : step.params) {
    Slot<T> slot{};
    slot.param = update.param.data<T>();
    slot.grad = update.grad.data<T>();
    for (int k = 0; k < 3; ++k) slot.state[k] = update.state[k].defined() ? update.state[k].data<T>() : nullptr;
    slot.numel = update.param.numel();
    slot.first_chunk = chunks;
    slot.first_segment = segments;
    slot.first_row = rows;
    if (projects(kRule) && update.param.dim() > 1 && slot.numel > 0) {
      slot.rows = update.param.size(0);
      slot.row_length = slot.numel / slot.rows;
      segments += slot.rows * ((slot.row_length + kSegment - 1) / kSegment);
      rows += slot.rows;
    }
    slot.c = optim_math::coefficients<T>(step.rule, step.hyper, update);
    chunks += chunks_of(slot.numel);
    slots.push_back(slot);
  }
  if (chunks == 0) return {};
  const int slot_count = static_cast<int>(slots.size());
  const Context& ctx = context(device.index);
  DeviceGuard guard(device.index);
  const std::shared_ptr<Storage> table = upload(slots, device, ctx);
  std::shared_ptr<Storage> segment_sums, radial, applied;
  if (segments > 0) {
    segment_sums = scratch(sizeof(ProjectionSums) * segments, device);
    radial = scratch(sizeof(double) * rows, device);
    applied = scratch(sizeof(int) * slots.size(), device);
  }
  const unsigned update_blocks = blocks_for(chunks, "optimizer_step");
  const unsigned sum_blocks =
      segments > 0 ? blocks_for((segments + kWarpsPerBlock - 1) / kWarpsPerBlock, "projection_sums") : 0;
  const double delta = step.hyper.delta, eps = step.hyper.eps;
  const cudaStream_t stream = ctx.stream;
  return [=] {
    DeviceGuard launch_guard(device.index);
    const auto* device_slots = static_cast<const Slot<T>*>(table->data());
    if (segments > 0) {
      auto* sums = static_cast<ProjectionSums*>(segment_sums->data());
      projection_sums_kernel<kRule, T><<<sum_blocks, kThreads, 0, stream>>>(device_slots, slot_count, segments, sums);
      EFFNET_CUDA_CHECK_LAUNCH();
      EFFNET_CUDA_CHECK(cudaMemsetAsync(applied->data(), 0, sizeof(int) * slot_count, stream));
      projection_test_kernel<T><<<slot_count, kThreads, 0, stream>>>(device_slots, sums, delta, eps,
                                                                     static_cast<double*>(radial->data()),
                                                                     static_cast<int*>(applied->data()));
      EFFNET_CUDA_CHECK_LAUNCH();
    }
    update_kernel<kRule, T><<<update_blocks, kThreads, 0, stream>>>(
        device_slots, slot_count, radial ? static_cast<const double*>(radial->data()) : nullptr,
        applied ? static_cast<const int*>(applied->data()) : nullptr);
    EFFNET_CUDA_CHECK_LAUNCH();
  };
}

template <class T>
std::vector<ListSlot<T>> list_slots(const std::vector<Tensor>& tensors, int64_t& chunks) {
  std::vector<ListSlot<T>> slots;
  chunks = 0;
  for (const Tensor& t : tensors) {
    slots.push_back({t.data<T>(), t.numel(), chunks});
    chunks += chunks_of(t.numel());
  }
  return slots;
}

}  // namespace

// Every group's memory first, then every group's launches: running out of memory updates nothing.
void optimizer_step(const std::vector<MultiTensorStep>& groups) {
  std::vector<std::function<void()>> launches;
  for (const MultiTensorStep& step : groups) {
    if (step.params.empty()) continue;
    with_floating_type(step.params.front().param.dtype(), "cuda optimizer_step", [&](auto tag) {
      using T = decltype(tag);
      switch (step.rule) {
        case UpdateRule::Sgd: return launches.push_back(prepare_typed<UpdateRule::Sgd, T>(step));
        case UpdateRule::Sgdp: return launches.push_back(prepare_typed<UpdateRule::Sgdp, T>(step));
        case UpdateRule::Adam: return launches.push_back(prepare_typed<UpdateRule::Adam, T>(step));
        case UpdateRule::AdamP: return launches.push_back(prepare_typed<UpdateRule::AdamP, T>(step));
        case UpdateRule::Madgrad: return launches.push_back(prepare_typed<UpdateRule::Madgrad, T>(step));
      }
    });
  }
  for (const std::function<void()>& launch : launches) {
    if (launch) launch();
  }
}

void global_norm(const std::vector<Tensor>& tensors, const Tensor& out) {
  const Device device = out.device();
  const Context& ctx = context(device.index);
  DeviceGuard guard(device.index);
  with_floating_type(out.dtype(), "cuda global_norm", [&](auto tag) {
    using T = decltype(tag);
    int64_t chunks = 0;
    const std::vector<ListSlot<T>> slots = list_slots<T>(tensors, chunks);
    const std::shared_ptr<Storage> chunk_sums = scratch(sizeof(double) * chunks, device);
    std::shared_ptr<Storage> table;
    if (chunks > 0) {
      table = upload(slots, device, ctx);
      chunk_square_sums_kernel<T><<<blocks_for(chunks, "global_norm"), kThreads, 0, ctx.stream>>>(
          static_cast<const ListSlot<T>*>(table->data()), static_cast<int>(slots.size()),
          static_cast<double*>(chunk_sums->data()));
      EFFNET_CUDA_CHECK_LAUNCH();
    }
    norm_from_chunks_kernel<T><<<1, kThreads, 0, ctx.stream>>>(static_cast<const double*>(chunk_sums->data()),
                                                               chunks, out.data<T>());
    EFFNET_CUDA_CHECK_LAUNCH();
  });
}

void clip_by_norm(const std::vector<Tensor>& tensors, const Tensor& norm, double max_norm) {
  const Device device = norm.device();
  const Context& ctx = context(device.index);
  DeviceGuard guard(device.index);
  with_floating_type(norm.dtype(), "cuda clip_by_norm", [&](auto tag) {
    using T = decltype(tag);
    int64_t chunks = 0;
    const std::vector<ListSlot<T>> slots = list_slots<T>(tensors, chunks);
    if (chunks == 0) return;
    const std::shared_ptr<Storage> table = upload(slots, device, ctx);
    clip_kernel<T><<<blocks_for(chunks, "clip_by_norm"), kThreads, 0, ctx.stream>>>(
        static_cast<const ListSlot<T>*>(table->data()), static_cast<int>(slots.size()), norm.data<T>(),
        static_cast<T>(max_norm));
    EFFNET_CUDA_CHECK_LAUNCH();
  });
}

}  // namespace effnet::cuda
