#include "tests/op_cases.h"

#include "tensor/nn.h"

namespace effnet::test {

namespace {
using In = const std::vector<Tensor>&;
constexpr Domain P = Domain::Positive;
constexpr Domain N = Domain::Normal;
constexpr MemoryFormat kChannelsLast = MemoryFormat::ChannelsLast;

Conv2dGeometry padded(int64_t pad, int64_t stride, int64_t groups) {
  Conv2dGeometry g;
  g.pad_h = g.pad_w = pad;
  g.stride_h = g.stride_w = stride;
  g.groups = groups;
  return g;
}
}  // namespace

const std::vector<OpCase>& op_cases() {
  static const std::vector<OpCase> cases = {
      // elementwise binary, with and without broadcasting
      {"add", {{3, 4}, {3, 4}}, [](In x) { return add(x[0], x[1]); }},
      {"add_broadcast", {{2, 3, 4}, {3, 1}}, [](In x) { return add(x[0], x[1]); }},
      {"sub_broadcast", {{4}, {2, 3, 4}}, [](In x) { return sub(x[0], x[1]); }},
      {"mul", {{3, 4}, {3, 4}}, [](In x) { return mul(x[0], x[1]); }},
      {"mul_broadcast", {{2, 1, 4}, {3, 1}}, [](In x) { return mul(x[0], x[1]); }},
      {"addcmul", {{3, 4}, {3, 4}, {3, 4}}, [](In x) { return addcmul(x[0], x[1], x[2]); }},
      {"addcmul_broadcast", {{4}, {3, 1}, {2, 1, 1}}, [](In x) { return addcmul(x[0], x[1], x[2]); }},
      {"addcmul_drop_path_channels_last", {{2, 3, 4, 5}, {2, 3, 4, 5}, {2, 1, 1, 1}},
       [](In x) { return addcmul(x[0].contiguous(kChannelsLast), x[1].contiguous(kChannelsLast), x[2]); }},
      {"div", {{3, 4}, {3, 4}}, [](In x) { return div(x[0], x[1]); }, {N, P}},
      {"div_broadcast", {{3, 4}, {4}}, [](In x) { return div(x[0], x[1]); }, {N, P}},
      {"pow", {{3, 4}, {3, 4}}, [](In x) { return pow(x[0], x[1]); }, {P, N}},
      {"add_scalar", {{3, 4}}, [](In x) { return add(x[0], 2.5); }},
      {"mul_scalar", {{3, 4}}, [](In x) { return mul(x[0], -1.5); }},
      {"pow_scalar_int", {{3, 4}}, [](In x) { return pow(x[0], 3.0); }},
      {"pow_scalar_frac", {{3, 4}}, [](In x) { return pow(x[0], 0.5); }, {P}},
      {"operators", {{3, 4}, {4}}, [](In x) { return (x[0] * 2.0 - x[1]) / 3.0 + 1.0 - x[0] * x[1]; }},
      // unary
      {"neg", {{3, 4}}, [](In x) { return neg(x[0]); }},
      {"exp", {{3, 4}}, [](In x) { return exp(x[0]); }},
      {"log", {{3, 4}}, [](In x) { return log(x[0]); }, {P}},
      {"sqrt", {{3, 4}}, [](In x) { return sqrt(x[0]); }, {P}},
      {"rsqrt", {{3, 4}}, [](In x) { return rsqrt(x[0]); }, {P}},
      {"abs", {{3, 4}}, [](In x) { return abs(x[0]); }, {}, true, true},
      {"sigmoid", {{3, 4}}, [](In x) { return sigmoid(x[0]); }},
      {"silu", {{3, 4}}, [](In x) { return silu(x[0]); }},
      {"tanh", {{3, 4}}, [](In x) { return tanh(x[0]); }},
      {"relu", {{3, 4}}, [](In x) { return relu(x[0]); }, {}, true, true},
      // reductions
      {"sum_all", {{3, 4, 5}}, [](In x) { return sum(x[0]); }},
      {"sum_dims_keepdim", {{3, 4, 5}}, [](In x) { return sum(x[0], {0, 2}, true); }},
      {"sum_spatial", {{2, 3, 4, 5}}, [](In x) { return sum(x[0], {-2, -1}); }},
      {"mean_spatial", {{2, 3, 4, 5}}, [](In x) { return mean(x[0], {2, 3}); }},
      {"mean_channels_nhw", {{2, 3, 4, 5}}, [](In x) { return mean(x[0], {0, 2, 3}, true); }},
      {"max_dim", {{3, 4, 5}}, [](In x) { return max(x[0], {1}); }, {}, true, true},
      {"max_all", {{3, 4}}, [](In x) { return max(x[0]); }, {}, true, true},
      {"var_unbiased", {{3, 4, 5}}, [](In x) { return var(x[0], {0, 2}); }},
      {"var_biased_keepdim", {{3, 4, 5}}, [](In x) { return var(x[0], {1}, 0, true); }},
      {"sum_to", {{2, 3, 4}}, [](In x) { return sum_to(x[0], {3, 1}); }},
      {"argmax", {{3, 4, 5}}, [](In x) { return argmax(x[0], 1).to(x[0].dtype()); }, {}, false},
      // comparisons (0/1 masks: no gradient)
      {"eq", {{3, 4}, {3, 4}}, [](In x) { return eq(x[0], x[0] * (gt(x[1], x[0]))); }, {}, false},
      {"ne", {{3, 4}, {4}}, [](In x) { return ne(x[0], x[1]); }, {}, false},
      {"lt", {{3, 4}, {3, 4}}, [](In x) { return lt(x[0], x[1]); }, {}, false},
      {"le", {{3, 4}, {4}}, [](In x) { return le(x[0], x[1]); }, {}, false},
      {"gt", {{3, 4}, {3, 1}}, [](In x) { return gt(x[0], x[1]); }, {}, false},
      {"ge", {{3, 4}, {3, 4}}, [](In x) { return ge(x[0], x[1]); }, {}, false},
      // linear algebra
      {"matmul", {{3, 4}, {4, 5}}, [](In x) { return matmul(x[0], x[1]); }},
      {"matmul_batched", {{2, 3, 4}, {2, 4, 5}}, [](In x) { return matmul(x[0], x[1]); }},
      {"matmul_broadcast", {{2, 2, 3, 4}, {4, 5}}, [](In x) { return matmul(x[0], x[1]); }},
      {"matmul_transposed", {{4, 3}, {5, 4}}, [](In x) { return matmul(x[0].transpose(-1, -2), x[1].transpose(-1, -2)); }},
      {"matmul_linear", {{6, 8}, {5, 8}, {5}}, [](In x) { return add(matmul(x[0], x[1].transpose(-1, -2)), x[2]); }},
      // softmax
      {"softmax_last", {{3, 5}}, [](In x) { return softmax(x[0], -1); }},
      {"softmax_middle", {{2, 4, 3}}, [](In x) { return softmax(x[0], 1); }},
      {"log_softmax_last", {{3, 5}}, [](In x) { return log_softmax(x[0], 1); }},
      {"log_softmax_first", {{4, 3}}, [](In x) { return log_softmax(x[0], 0); }},
      // Logits near 1e4, where float32 spacing is 0.001: the shift must not swallow log(sum).
      {"log_softmax_large_logits", {{3, 5}}, [](In x) { return log_softmax(add(x[0], 1e4), 1); }},
      // structure and views
      {"cat", {{2, 3}, {2, 2}, {2, 1}}, [](In x) { return cat({x[0], x[1], x[2]}, 1); }},
      {"reshape", {{2, 3, 4}}, [](In x) { return x[0].reshape({4, -1}) * 1.5; }},
      {"permute", {{2, 3, 4}}, [](In x) { return x[0].permute({2, 0, 1}) * 1.5; }},
      {"transpose_contiguous", {{3, 4}}, [](In x) { return x[0].transpose(0, 1).contiguous() * 1.5; }},
      {"slice_step", {{5, 6}}, [](In x) { return x[0].slice(1, 1, 6, 2) * 1.5; }},
      {"select", {{3, 4}}, [](In x) { return x[0].select(0, -1) * 1.5; }},
      {"expand", {{3, 1}}, [](In x) { return x[0].expand({2, 3, 4}) * 1.5; }},
      {"squeeze_unsqueeze", {{3, 1, 4}}, [](In x) { return x[0].squeeze(1).unsqueeze(0) * 1.5; }},
      {"flatten", {{2, 3, 4}}, [](In x) { return x[0].permute({1, 0, 2}).flatten(1) * 1.5; }},
      {"clone", {{3, 4}}, [](In x) { return x[0].clone() * 1.5; }},
      // channels-last (NHWC) operands: the copy, elementwise ops and reductions over NHWC strides,
      // convolution (NHWC cuDNN descriptors) and batch norm
      {"contiguous_channels_last", {{2, 3, 4, 5}}, [](In x) { return x[0].contiguous(kChannelsLast) * 1.5; }},
      {"silu_channels_last", {{2, 3, 4, 5}}, [](In x) { return silu(x[0].contiguous(kChannelsLast)); }},
      {"mul_channels_last_gate", {{2, 3, 4, 5}, {2, 3, 1, 1}},
       [](In x) { return mul(x[0].contiguous(kChannelsLast), x[1]); }},
      {"mean_channels_last", {{2, 3, 4, 5}}, [](In x) { return mean(x[0].contiguous(kChannelsLast), {2, 3}); }},
      {"conv2d_channels_last", {{2, 3, 5, 5}, {4, 3, 3, 3}},
       [](In x) { return conv2d(x[0].contiguous(kChannelsLast), x[1], Tensor(), padded(1, 1, 1)); }},
      {"conv2d_depthwise_channels_last", {{2, 4, 6, 6}, {4, 1, 3, 3}},
       [](In x) { return conv2d(x[0].contiguous(kChannelsLast), x[1], Tensor(), padded(1, 2, 4)); }},
      // CUDA runs these outside cuDNN: a 5x5 depthwise one in effnet's kernels, 1x1 ones with channels
      // innermost as cuBLAS GEMMs (tensor/cuda/conv.cpp).
      {"conv2d_depthwise5x5_channels_last", {{2, 4, 6, 7}, {4, 1, 5, 5}},
       [](In x) { return conv2d(x[0].contiguous(kChannelsLast), x[1], Tensor(), padded(2, 1, 4)); }},
      {"conv2d_1x1_channels_last", {{2, 3, 4, 5}, {4, 3, 1, 1}},
       [](In x) { return conv2d(x[0].contiguous(kChannelsLast), x[1], Tensor(), padded(0, 1, 1)); }},
      {"conv2d_1x1_one_pixel", {{3, 5, 1, 1}, {4, 5, 1, 1}},
       [](In x) { return conv2d(x[0], x[1], Tensor(), padded(0, 1, 1)); }},
      {"batch_norm_channels_last", {{2, 3, 4, 5}, {3}, {3}}, [](In x) {
         const TensorOptions stats(x[0].dtype(), x[0].device());
         return batch_norm(x[0].contiguous(kChannelsLast), x[1], x[2], zeros({3}, stats), ones({3}, stats), true,
                           0.1, 1e-5);
       }},
      // batch norm fused with the SiLU after it (effnet's own CUDA kernels in every dtype), both layouts
      {"batch_norm_silu", {{2, 3, 4, 5}, {3}, {3}}, [](In x) {
         const TensorOptions stats(x[0].dtype(), x[0].device());
         return batch_norm_silu(x[0], x[1], x[2], zeros({3}, stats), ones({3}, stats), true, 0.1, 1e-5);
       }},
      {"batch_norm_silu_channels_last", {{2, 3, 4, 5}, {3}, {3}}, [](In x) {
         const TensorOptions stats(x[0].dtype(), x[0].device());
         return batch_norm_silu(x[0].contiguous(kChannelsLast), x[1], x[2], zeros({3}, stats), ones({3}, stats),
                                true, 0.1, 1e-5);
       }},
      // squeeze-excite's channel gate (one backward kernel for both gradients), both layouts
      {"channel_gate", {{2, 3, 4, 5}, {2, 3, 1, 1}}, [](In x) { return channel_gate(x[0], x[1]); }},
      {"channel_gate_conv2d_projection", {{2, 3, 4, 5}, {2, 3, 1, 1}, {4, 3, 1, 1}, {4}},
       [](In x) { return channel_gate_conv2d(x[0], x[1], x[2], x[3], {}); }},
      {"channel_gate_conv2d_channels_last_strided", {{2, 4, 5, 6}, {2, 4, 1, 1}, {6, 2, 3, 3}},
       [](In x) { return channel_gate_conv2d(x[0].contiguous(kChannelsLast), x[1], x[2], Tensor(), padded(1, 2, 2)); }},
      {"channel_gate_channels_last", {{2, 3, 4, 5}, {2, 3, 1, 1}},
       [](In x) { return channel_gate(x[0].contiguous(kChannelsLast), x[1]); }},
      {"through_cpu", {{3, 4}}, [](In x) { return x[0].cpu().to(x[0].device()) * 1.5; }},
  };
  return cases;
}

std::vector<OpCase> differentiable_op_cases() {
  std::vector<OpCase> out;
  for (const OpCase& c : op_cases())
    if (c.differentiable) out.push_back(c);
  return out;
}

}  // namespace effnet::test
