#include "layers/squeeze_excite.h"

#include "tensor/nn.h"
#include "tensor/ops.h"

namespace effnet {

SqueezeExcite::SqueezeExcite(int64_t channels, int64_t reduced_channels, bool fused) : fused_(fused) {
  EFFNET_CHECK(channels > 0 && reduced_channels > 0, "SqueezeExcite: channels must be positive, got ", channels,
               " and ", reduced_channels);
  Conv2dOptions reduce(channels, reduced_channels, 1);
  reduce.bias = true;
  conv_reduce = register_module("conv_reduce", std::make_shared<Conv2d>(reduce));
  Conv2dOptions expand = reduce;
  std::swap(expand.in_channels, expand.out_channels);
  conv_expand = register_module("conv_expand", std::make_shared<Conv2d>(expand));
}

Tensor SqueezeExcite::gate(const Tensor& x) {
  const Tensor squeezed = mean(x, {2, 3}, /*keepdim=*/true);
  return sigmoid(conv_expand->forward(silu(conv_reduce->forward(squeezed))));
}

Tensor SqueezeExcite::forward(const Tensor& x) { return fused_ ? channel_gate(x, gate(x)) : mul(x, gate(x)); }

}  // namespace effnet
