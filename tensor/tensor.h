// Tensor: a cheap handle (one shared_ptr) to a TensorImpl, which holds
//   storage  - the shared bytes (tensor/storage.h)
//   shape, strides (in elements), offset (in elements) - which of those bytes this tensor sees
//   dtype    - float32, float64, ... (tensor/dtype.h)
//   autograd - requires_grad, the accumulated .grad, and grad_fn: the node of the tape that made it.
// Copying a Tensor copies the handle: both names see the same data. Views (reshape, permute, slice,
// expand, ...) make a new TensorImpl over the same storage. Math lives in tensor/ops.h as free functions;
// the member functions here are metadata, views, data movement and the in-place fills.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "tensor/device.h"
#include "tensor/dtype.h"
#include "tensor/error.h"
#include "tensor/shape.h"
#include "tensor/storage.h"

namespace effnet {

namespace autograd {
class Node;
}
class Generator;
struct TensorImpl;

// The order of a 4-D [N, C, H, W] tensor's elements in memory: row-major (NCHW), or channels-last (NHWC:
// strides [H W C, 1, W C, C]), the layout cuDNN's fast 16-bit and depthwise convolutions are built for. The
// logical shape stays [N, C, H, W] either way; only the strides differ.
enum class MemoryFormat { Contiguous, ChannelsLast };

// What a factory makes: dtype, device and (for CPU tensors feeding a GPU) page-locked memory.
struct TensorOptions {
  DType dtype = DType::Float32;
  Device device = Device::cpu();
  bool pinned = false;

  TensorOptions() = default;
  TensorOptions(DType t) : dtype(t) {}                       // NOLINT: implicit on purpose
  TensorOptions(Device d) : device(d) {}                     // NOLINT
  TensorOptions(DType t, Device d) : dtype(t), device(d) {}
};

class Tensor {
 public:
  Tensor() = default;
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

  bool defined() const { return impl_ != nullptr; }

  // ---- metadata
  const Shape& shape() const;
  const Shape& strides() const;
  int64_t offset() const;
  int64_t dim() const;
  int64_t size(int64_t d) const;  // negative d counts from the end
  int64_t numel() const;
  DType dtype() const;
  Device device() const;
  bool is_cuda() const { return device().is_cuda(); }
  bool is_contiguous() const;
  bool is_contiguous(MemoryFormat format) const;
  // ChannelsLast for a 4-D tensor that is dense in channels-last order but not row-major; Contiguous
  // otherwise (a tensor dense in both orders, such as [N, C, 1, 1], counts as row-major). Ops give their
  // outputs the format of their input this way.
  MemoryFormat suggest_memory_format() const;
  const std::shared_ptr<Storage>& storage() const;
  void* data_ptr() const;  // address of the first element (storage + offset)
  template <class T>
  T* data() const;         // typed pointer; checks the dtype
  std::string str() const; // "Tensor[2, 3] float32 cpu"
  TensorImpl* impl() const { return impl_.get(); }
  const std::shared_ptr<TensorImpl>& shared_impl() const { return impl_; }

  // ---- views: share storage, differentiable
  Tensor view(const Shape& shape) const;     // needs contiguous data; one size may be -1
  Tensor reshape(const Shape& shape) const;  // a view when possible, else a copy
  Tensor permute(const std::vector<int64_t>& dims) const;
  Tensor transpose(int64_t d0, int64_t d1) const;
  Tensor slice(int64_t dim, int64_t start, int64_t end, int64_t step = 1) const;  // Python's [start:end:step]
  Tensor select(int64_t dim, int64_t index) const;  // drops the dimension
  Tensor expand(const Shape& shape) const;          // size-1 dims grow with stride 0; new leading dims allowed
  Tensor squeeze(int64_t dim) const;
  Tensor unsqueeze(int64_t dim) const;
  Tensor flatten(int64_t start_dim = 0, int64_t end_dim = -1) const;

  // ---- copies and conversions (differentiable)
  Tensor contiguous() const;  // itself when already contiguous
  Tensor contiguous(MemoryFormat format) const;  // itself when already dense in that format
  Tensor clone() const;
  Tensor to(Device device) const;
  Tensor to(DType dtype) const;
  Tensor cpu() const { return to(Device::cpu()); }
  Tensor cuda(int index = 0) const { return to(Device::cuda(index)); }
  Tensor detach() const;  // same data, no grad_fn, requires_grad false

  // ---- host access (copies from the GPU when needed)
  double item() const;                 // a one-element tensor's value
  std::vector<double> to_vector() const;  // all elements in row-major order

  // ---- in place, outside autograd (refused on tensors that take part in a graph while grad mode is on)
  Tensor& fill_(double value);
  Tensor& zero_() { return fill_(0.0); }
  // Broadcasts src, casts dtype, crosses devices. From a pinned CPU tensor to CUDA it returns once the copy
  // is queued (like PyTorch's non_blocking=True): do not write into src until the device has synchronized.
  Tensor& copy_(const Tensor& src);
  Tensor& uniform_(double low = 0.0, double high = 1.0, Generator* gen = nullptr);
  Tensor& normal_(double mean = 0.0, double std = 1.0, Generator* gen = nullptr);
  Tensor& add_(const Tensor& other, double alpha = 1.0);  // this += alpha * other
  Tensor& add_(double value);  // this += value; works on int64 counters too
  Tensor& mul_(double factor);
  // Makes this tensor (every handle to it) view `source`'s data: storage, shape, strides, dtype. Its
  // autograd identity stays (a parameter stays the same leaf); its .grad is dropped. Modules use it to move
  // parameters between devices and dtypes in place.
  void set_data(const Tensor& source) const;

  // ---- autograd
  bool requires_grad() const;
  Tensor& requires_grad_(bool on = true);  // leaves only
  const Tensor& grad() const;              // undefined until a backward reaches this leaf
  void set_grad(const Tensor& grad) const;
  const std::shared_ptr<autograd::Node>& grad_fn() const;
  int output_nr() const;
  bool is_leaf() const;
  // Back-propagates from this tensor. Without `grad` the tensor must hold a single element (d self = 1).
  void backward(const Tensor& grad = Tensor(), bool retain_graph = false) const;

  // ---- shorthands for tensor/ops.h
  Tensor sum(const std::vector<int64_t>& dims = {}, bool keepdim = false) const;
  Tensor mean(const std::vector<int64_t>& dims = {}, bool keepdim = false) const;

 private:
  const TensorImpl& checked() const;
  std::shared_ptr<TensorImpl> impl_;
};

struct TensorImpl {
  std::shared_ptr<Storage> storage;
  Shape shape;
  Shape strides;
  int64_t offset = 0;
  DType dtype = DType::Float32;

  bool requires_grad = false;
  Tensor grad;
  std::shared_ptr<autograd::Node> grad_fn;  // null for leaves
  int output_nr = 0;                        // which output of grad_fn this is
  std::shared_ptr<autograd::Node> grad_accumulator;  // leaves that require grad: the sink of backward
};

// A new TensorImpl over `storage` (used by factories and views; autograd fields cleared).
Tensor make_tensor(std::shared_ptr<Storage> storage, Shape shape, Shape strides, int64_t offset, DType dtype);

template <class T>
T* Tensor::data() const {
  EFFNET_CHECK(dtype() == dtype_of<T>(), "data<", dtype_name(dtype_of<T>()), ">() called on ", str());
  return static_cast<T*>(data_ptr());
}

}  // namespace effnet
