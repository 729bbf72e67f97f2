// Factories: new tensors filled with constants, given values, ranges or random numbers.
#include "tensor/backend.h"
#include "tensor/op_checks.h"
#include "tensor/ops.h"
#include "tensor/random.h"

namespace effnet {

Tensor empty(const Shape& shape, TensorOptions options) {
  for (int64_t s : shape) EFFNET_CHECK(s >= 0, "empty: negative size in shape ", shape_str(shape));
  const size_t nbytes = static_cast<size_t>(shape_numel(shape)) * element_size(options.dtype);
  return make_tensor(allocate_storage(nbytes, options.device, options.pinned), shape, contiguous_strides(shape), 0,
                     options.dtype);
}

Tensor empty(const Shape& shape, TensorOptions options, MemoryFormat format) {
  if (format == MemoryFormat::Contiguous) return empty(shape, options);
  for (int64_t s : shape) EFFNET_CHECK(s >= 0, "empty: negative size in shape ", shape_str(shape));
  const size_t nbytes = static_cast<size_t>(shape_numel(shape)) * element_size(options.dtype);
  return make_tensor(allocate_storage(nbytes, options.device, options.pinned), shape, channels_last_strides(shape),
                     0, options.dtype);
}

Tensor full(const Shape& shape, double value, TensorOptions options) {
  Tensor t = empty(shape, options);
  backend(t.device(), "full").fill(t, value);
  return t;
}

Tensor zeros(const Shape& shape, TensorOptions options) { return full(shape, 0.0, options); }
Tensor ones(const Shape& shape, TensorOptions options) { return full(shape, 1.0, options); }
Tensor empty_like(const Tensor& t) {
  return empty(t.shape(), TensorOptions(t.dtype(), t.device()), t.suggest_memory_format());
}
Tensor zeros_like(const Tensor& t) { return empty_like(t).fill_(0.0); }
Tensor ones_like(const Tensor& t) { return empty_like(t).fill_(1.0); }
Tensor scalar_tensor(double value, TensorOptions options) { return full({}, value, options); }

Tensor from_vector(const std::vector<double>& values, const Shape& shape, TensorOptions options) {
  EFFNET_CHECK(static_cast<int64_t>(values.size()) == shape_numel(shape), "from_vector: ", values.size(),
               " values for shape ", shape_str(shape), " (", shape_numel(shape), " elements)");
  Tensor host = empty(shape, TensorOptions(DType::Float64, Device::cpu()));
  std::copy(values.begin(), values.end(), host.data<double>());
  Tensor out = empty(shape, options);
  out.copy_(host);
  return out;
}

Tensor arange(int64_t n, TensorOptions options) {
  std::vector<double> values(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) values[i] = static_cast<double>(i);
  return from_vector(values, {n}, options);
}

Tensor rand(const Shape& shape, TensorOptions options) {
  Tensor t = empty(shape, options);
  t.uniform_(0.0, 1.0);
  return t;
}

Tensor randn(const Shape& shape, TensorOptions options) {
  Tensor t = empty(shape, options);
  t.normal_(0.0, 1.0);
  return t;
}

Tensor cast(const Tensor& x, DType dtype) { return x.to(dtype); }

}  // namespace effnet
