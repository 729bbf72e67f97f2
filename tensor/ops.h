// The op library: every function here works on CPU and CUDA tensors alike. Each one checks its
// arguments, runs the kernel that the input's device registered in the dispatch table (tensor/backend.h),
// and, when grad mode is on and an input requires grad, records a node on the autograd tape
// (autograd/node.h) whose backward is written with these same ops.
//
// Conventions (as in PyTorch): binary ops broadcast; reductions take a list of dims (empty = all) and
// keepdim; inputs of one op share dtype and device (no silent promotion or transfer: a mismatch throws
// naming the op, the shapes, dtypes and devices). Comparisons return 0/1 in the inputs' dtype, so a mask
// multiplies directly; argmax returns int64.
#pragma once

#include <cstdint>
#include <vector>

#include "tensor/tensor.h"

namespace effnet {

// ---- factories
Tensor empty(const Shape& shape, TensorOptions options = {});
Tensor empty(const Shape& shape, TensorOptions options, MemoryFormat format);  // ChannelsLast: 4-D shapes
Tensor zeros(const Shape& shape, TensorOptions options = {});
Tensor ones(const Shape& shape, TensorOptions options = {});
Tensor full(const Shape& shape, double value, TensorOptions options = {});
// The *_like factories keep t's memory format (Tensor::suggest_memory_format).
Tensor empty_like(const Tensor& t);
Tensor zeros_like(const Tensor& t);
Tensor ones_like(const Tensor& t);
Tensor scalar_tensor(double value, TensorOptions options = {});  // 0-dimensional
// Row-major values, converted to options.dtype; values.size() must equal the shape's element count.
Tensor from_vector(const std::vector<double>& values, const Shape& shape, TensorOptions options = {});
Tensor arange(int64_t n, TensorOptions options = {});  // 0, 1, ..., n-1
// Random fills from the default generator (tensor/random.h): same seed, same numbers on CPU and CUDA.
Tensor rand(const Shape& shape, TensorOptions options = {});   // uniform [0, 1)
Tensor randn(const Shape& shape, TensorOptions options = {});  // standard normal

// ---- elementwise, broadcasting
Tensor add(const Tensor& a, const Tensor& b);
Tensor sub(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, const Tensor& b);
Tensor div(const Tensor& a, const Tensor& b);
Tensor pow(const Tensor& base, const Tensor& exponent);  // base > 0 where exponent is not an integer
// a + b * c in one pass (PyTorch's addcmul with value 1; a residual plus a drop-path-scaled branch). The
// product is rounded before the sum, so the result is add(a, mul(b, c))'s bits; gradients as theirs. The
// output takes the memory format of b (else a, else c) where it has the full shape.
Tensor addcmul(const Tensor& a, const Tensor& b, const Tensor& c);
Tensor add(const Tensor& a, double b);
Tensor mul(const Tensor& a, double b);
Tensor pow(const Tensor& base, double exponent);
Tensor eq(const Tensor& a, const Tensor& b);
Tensor ne(const Tensor& a, const Tensor& b);
Tensor lt(const Tensor& a, const Tensor& b);
Tensor le(const Tensor& a, const Tensor& b);
Tensor gt(const Tensor& a, const Tensor& b);
Tensor ge(const Tensor& a, const Tensor& b);

Tensor neg(const Tensor& x);
Tensor exp(const Tensor& x);
Tensor log(const Tensor& x);
Tensor sqrt(const Tensor& x);
Tensor rsqrt(const Tensor& x);
Tensor abs(const Tensor& x);
Tensor sigmoid(const Tensor& x);
Tensor silu(const Tensor& x);  // x * sigmoid(x); backward saves x only and recomputes the sigmoid
Tensor tanh(const Tensor& x);
Tensor relu(const Tensor& x);

// ---- reductions over `dims` (empty = every dim)
Tensor sum(const Tensor& x, const std::vector<int64_t>& dims = {}, bool keepdim = false);
Tensor mean(const Tensor& x, const std::vector<int64_t>& dims = {}, bool keepdim = false);
// Max values; the gradient is shared equally by tied maxima (like torch.amax).
Tensor max(const Tensor& x, const std::vector<int64_t>& dims = {}, bool keepdim = false);
// Variance with Bessel's correction by default (correction = 1); correction = 0 is the biased variance.
Tensor var(const Tensor& x, const std::vector<int64_t>& dims = {}, int64_t correction = 1, bool keepdim = false);
Tensor argmax(const Tensor& x, int64_t dim, bool keepdim = false);  // int64; first index among ties
// Sums a broadcast result back to `shape` (the gradient of expand).
Tensor sum_to(const Tensor& x, const Shape& shape);

// ---- linear algebra
// [M, K] @ [K, N] -> [M, N]; batched [..., M, K] @ [..., K, N] with broadcast batch dims.
Tensor matmul(const Tensor& a, const Tensor& b);

// ---- softmax along one dim (numerically stable: the max is subtracted first)
Tensor softmax(const Tensor& x, int64_t dim);
Tensor log_softmax(const Tensor& x, int64_t dim);

// ---- structure
Tensor cat(const std::vector<Tensor>& tensors, int64_t dim);
Tensor cast(const Tensor& x, DType dtype);  // same as x.to(dtype)

// ---- operators
inline Tensor operator+(const Tensor& a, const Tensor& b) { return add(a, b); }
inline Tensor operator-(const Tensor& a, const Tensor& b) { return sub(a, b); }
inline Tensor operator*(const Tensor& a, const Tensor& b) { return mul(a, b); }
inline Tensor operator/(const Tensor& a, const Tensor& b) { return div(a, b); }
inline Tensor operator+(const Tensor& a, double b) { return add(a, b); }
inline Tensor operator-(const Tensor& a, double b) { return add(a, -b); }
inline Tensor operator*(const Tensor& a, double b) { return mul(a, b); }
inline Tensor operator/(const Tensor& a, double b) { return mul(a, 1.0 / b); }
inline Tensor operator+(double a, const Tensor& b) { return add(b, a); }
inline Tensor operator-(double a, const Tensor& b) { return add(neg(b), a); }
inline Tensor operator*(double a, const Tensor& b) { return mul(b, a); }
inline Tensor operator-(const Tensor& x) { return neg(x); }

}  // namespace effnet
