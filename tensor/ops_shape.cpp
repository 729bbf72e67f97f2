// Joining tensors: cat copies each input into its slice of the result; the gradient of each input is the
// matching slice of the output gradient.
#include "autograd/node.h"
#include "tensor/op_checks.h"
#include "tensor/ops.h"

namespace effnet {

Tensor cat(const std::vector<Tensor>& tensors, int64_t dim) {
  EFFNET_CHECK(!tensors.empty(), "cat: no tensors to join");
  check_same_device_dtype("cat", tensors);
  const Tensor& first = tensors[0];
  dim = normalize_dim("cat", dim, first.dim());
  Shape shape = first.shape();
  shape[dim] = 0;
  for (size_t k = 0; k < tensors.size(); ++k) {
    const Tensor& t = tensors[k];
    EFFNET_CHECK(t.dim() == first.dim(), "cat: tensor ", k, " ", t.str(), " has ", t.dim(), " dims, tensor 0 ",
                 first.str(), " has ", first.dim());
    for (int64_t d = 0; d < t.dim(); ++d) {
      EFFNET_CHECK(d == dim || t.size(d) == first.size(d), "cat: tensor ", k, " ", t.str(), " differs from tensor 0 ",
                   first.str(), " in dim ", d, " (only dim ", dim, " may differ)");
    }
    shape[dim] += t.size(dim);
  }
  Tensor out = empty(shape, TensorOptions(first.dtype(), first.device()));
  std::vector<int64_t> starts;
  int64_t start = 0;
  for (const Tensor& t : tensors) {
    starts.push_back(start);
    out.slice(dim, start, start + t.size(dim)).copy_(t);
    start += t.size(dim);
  }
  std::vector<int64_t> sizes;
  for (const Tensor& t : tensors) sizes.push_back(t.size(dim));
  autograd::record("cat", tensors, {out}, [dim, starts, sizes](std::vector<Tensor>&& g) {
    std::vector<Tensor> grads;
    for (size_t k = 0; k < starts.size(); ++k) grads.push_back(g[0].slice(dim, starts[k], starts[k] + sizes[k]));
    return grads;
  });
  return out;
}

}  // namespace effnet
