// Reductions and their gradients. With k = the reduced elements per output and g expanded back over them:
//
//   sum:  dx = g                          mean: dx = g / k
//   max:  dx = g [x == max] / (number of ties)   (ties share the gradient, like torch.amax)
//   var:  computed as sum((x - mean)^2) / (k - correction), so its gradient, 2 (x - mean) g / (k - c),
//         comes from the ops it is built of
//   sum_to(x, shape): the sum over the dims that broadcasting added; its gradient is expand.
#include <algorithm>
#include <optional>

#include "autograd/grad_mode.h"
#include "autograd/node.h"
#include "tensor/backend.h"
#include "tensor/op_checks.h"
#include "tensor/ops.h"

namespace effnet {

namespace {

using Grads = std::vector<Tensor>;

struct Reduction {
  Shape kept_shape;  // x's shape with 1 at reduced dims (keepdim form)
  Shape out_shape;   // the result's shape
  int64_t count = 1; // elements reduced into each output
};

Reduction plan_reduction(const char* op, const Tensor& x, const std::vector<int64_t>& dims, bool keepdim) {
  const std::vector<int64_t> axes = normalize_dims(op, dims, x.dim());
  Reduction r;
  r.kept_shape = x.shape();
  for (int64_t a : axes) {
    r.count *= x.size(a);
    r.kept_shape[a] = 1;
  }
  for (int64_t k = 0; k < x.dim(); ++k) {
    const bool reduced = std::find(axes.begin(), axes.end(), k) != axes.end();
    if (!reduced || keepdim) r.out_shape.push_back(r.kept_shape[k]);
  }
  return r;
}

// The result in x's dtype, or in `out_dtype` (float32 for a 16-bit x: the sum not yet rounded).
Tensor run_reduce(const char* op, ReduceOp kind, const Tensor& x, const Reduction& r,
                  std::optional<DType> out_dtype = std::nullopt) {
  Tensor out = empty(r.kept_shape, TensorOptions(out_dtype.value_or(x.dtype()), x.device()));
  backend(x.device(), op).reduce(kind, x.detach(), out);
  return out.view(r.out_shape);
}

}  // namespace

Tensor sum(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim) {
  check_floating("sum", x);
  const Reduction r = plan_reduction("sum", x, dims, keepdim);
  Tensor out = run_reduce("sum", ReduceOp::Sum, x, r);
  autograd::record("sum", {x}, {out}, [kept = r.kept_shape, in_shape = x.shape()](Grads&& g) {
    return Grads{g[0].reshape(kept).expand(in_shape)};
  });
  return out;
}

Tensor mean(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim) {
  check_floating("mean", x);
  const Reduction r = plan_reduction("mean", x, dims, keepdim);
  EFFNET_CHECK(r.count > 0, "mean: reducing ", x.str(), " over zero elements");
  const double scale = 1.0 / static_cast<double>(r.count);
  if (!is_16bit(x.dtype())) return mul(sum(x, dims, keepdim), scale);
  // 16 bits: the float32 sum is divided before it is rounded; a float16 sum of a large plane (squeeze-excite
  // pools 190 x 190 pixels in B4) would overflow at 65504 where the mean does not.
  Tensor out;
  {
    autograd::NoGradGuard no_grad;
    out = mul(run_reduce("mean", ReduceOp::Sum, x, r, kFloat32), scale).to(x.dtype());
  }
  autograd::record("mean", {x}, {out}, [kept = r.kept_shape, in_shape = x.shape(), scale](Grads&& g) {
    return Grads{mul(g[0], scale).reshape(kept).expand(in_shape)};
  });
  return out;
}

Tensor max(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim) {
  check_floating("max", x);
  const Reduction r = plan_reduction("max", x, dims, keepdim);
  EFFNET_CHECK(r.count > 0, "max: reducing ", x.str(), " over zero elements has no maximum");
  Tensor out = run_reduce("max", ReduceOp::Max, x, r);
  autograd::record("max", {x}, {out}, [x = x.detach(), kept = r.kept_shape, m = out.detach()](Grads&& g) {
    Tensor is_max = eq(x, m.reshape(kept));
    std::vector<int64_t> axes;
    for (int64_t k = 0; k < x.dim(); ++k)
      if (kept[k] == 1 && x.size(k) != 1) axes.push_back(k);
    Tensor share = axes.empty() ? is_max : div(is_max, sum(is_max, axes, true));
    return Grads{mul(share, g[0].reshape(kept))};
  });
  return out;
}

Tensor var(const Tensor& x, const std::vector<int64_t>& dims, int64_t correction, bool keepdim) {
  check_floating("var", x);
  const Reduction r = plan_reduction("var", x, dims, keepdim);
  EFFNET_CHECK(r.count - correction > 0, "var: ", r.count, " elements per output with correction ", correction,
               " leave no degrees of freedom (input ", x.str(), ")");
  Tensor centered = sub(x, mean(x, dims, true));
  return mul(sum(mul(centered, centered), dims, keepdim), 1.0 / static_cast<double>(r.count - correction));
}

Tensor argmax(const Tensor& x, int64_t dim, bool keepdim) {
  check_floating("argmax", x);
  dim = normalize_dim("argmax", dim, x.dim());
  EFFNET_CHECK(x.size(dim) > 0, "argmax: dim ", dim, " of ", x.str(), " is empty");
  const Reduction r = plan_reduction("argmax", x, {dim}, keepdim);
  Tensor out = empty(r.kept_shape, TensorOptions(DType::Int64, x.device()));
  backend(x.device(), "argmax").argmax(x.detach(), dim, out);
  return out.view(r.out_shape);
}

Tensor sum_to(const Tensor& x, const Shape& shape) {
  if (x.shape() == shape) return x;
  const int64_t lead = x.dim() - static_cast<int64_t>(shape.size());
  EFFNET_CHECK(lead >= 0, "sum_to: cannot sum ", x.str(), " to the larger rank of ", shape_str(shape));
  std::vector<int64_t> axes;
  for (int64_t k = 0; k < x.dim(); ++k) {
    if (k < lead || (shape[k - lead] == 1 && x.size(k) != 1)) {
      axes.push_back(k);
    } else {
      EFFNET_CHECK(shape[k - lead] == x.size(k), "sum_to: ", x.str(), " does not broadcast from ",
                   shape_str(shape));
    }
  }
  Tensor summed = axes.empty() ? x : sum(x, axes, true);
  return summed.reshape(shape);
}

}  // namespace effnet
