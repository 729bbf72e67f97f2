// Matrix products and softmax.
//
//   C = A B with A [..., M, K], B [..., K, N]:   dA = dC B^T,   dB = A^T dC   (summed over broadcast batch dims)
//   y = softmax(x) along d:      dx = y (dy - sum_d(dy y))
//   y = log_softmax(x) along d:  dx = dy - exp(y) sum_d(dy)
#include <algorithm>

#include "autograd/node.h"
#include "tensor/backend.h"
#include "tensor/op_checks.h"
#include "tensor/ops.h"

namespace effnet {

namespace {

using Grads = std::vector<Tensor>;

// `t` (detached) as the 3-D [B, rows, cols] operand of Backend::matmul. An operand shared by the whole
// batch becomes a stride-0 expansion (no copy); a transposed matrix stays transposed (the kernel takes
// either layout); only other layouts are copied.
Tensor as_batched(const Tensor& t, const Shape& batch, int64_t batch_numel) {
  const int64_t rows = t.size(-2), cols = t.size(-1);
  Tensor v;
  if (shape_numel(Shape(t.shape().begin(), t.shape().end() - 2)) == 1) {
    v = t.reshape({1, rows, cols}).expand({batch_numel, rows, cols});
  } else {
    Shape full = batch;
    full.push_back(rows);
    full.push_back(cols);
    v = t.expand(full).reshape({batch_numel, rows, cols});
  }
  const bool row_major = v.strides()[2] == 1 && v.strides()[1] >= std::max<int64_t>(cols, 1);
  const bool col_major = v.strides()[1] == 1 && v.strides()[2] >= std::max<int64_t>(rows, 1);
  return row_major || col_major ? v : v.contiguous();
}

}  // namespace

Tensor matmul(const Tensor& a, const Tensor& b) {
  check_same_device_dtype("matmul", {a, b});
  check_floating("matmul", a);
  EFFNET_CHECK(a.dim() >= 2 && b.dim() >= 2, "matmul: expected matrices (2 or more dims), got ", a.str(), " and ",
               b.str());
  EFFNET_CHECK(a.size(-1) == b.size(-2), "matmul: ", a.str(), " @ ", b.str(), ": inner sizes differ (", a.size(-1),
               " vs ", b.size(-2), ")");
  const Shape batch = broadcast_shapes("matmul", Shape(a.shape().begin(), a.shape().end() - 2),
                                       Shape(b.shape().begin(), b.shape().end() - 2));
  const int64_t batch_numel = shape_numel(batch);
  const int64_t m = a.size(-2), n = b.size(-1);
  Tensor out = empty({batch_numel, m, n}, TensorOptions(a.dtype(), a.device()));
  backend(a.device(), "matmul").matmul(as_batched(a.detach(), batch, batch_numel),
                                       as_batched(b.detach(), batch, batch_numel), out);
  Shape out_shape = batch;
  out_shape.push_back(m);
  out_shape.push_back(n);
  out = out.view(out_shape);
  autograd::record("matmul", {a, b}, {out}, [a = a.detach(), b = b.detach()](Grads&& g) {
    return Grads{sum_to(matmul(g[0], b.transpose(-1, -2)), a.shape()),
                 sum_to(matmul(a.transpose(-1, -2), g[0]), b.shape())};
  });
  return out;
}

namespace {

Tensor softmax_impl(const char* name, const Tensor& x, int64_t dim, bool log) {
  check_floating(name, x);
  dim = normalize_dim(name, dim, x.dim());
  Tensor input = x.detach().contiguous();
  Tensor out = empty(x.shape(), TensorOptions(x.dtype(), x.device()));
  if (x.numel() > 0) backend(x.device(), name).softmax(input, x.dim() == 0 ? 0 : dim, log, out);
  autograd::record(name, {x}, {out}, [y = out.detach(), dim, log, name](Grads&& g) {
    Tensor grad_x = empty_like(y);
    if (y.numel() > 0) backend(y.device(), name).softmax_backward(y, g[0].contiguous(), dim, log, grad_x);
    return Grads{grad_x};
  });
  return out;
}

}  // namespace

Tensor softmax(const Tensor& x, int64_t dim) { return softmax_impl("softmax", x, dim, false); }
Tensor log_softmax(const Tensor& x, int64_t dim) { return softmax_impl("log_softmax", x, dim, true); }

}  // namespace effnet
