// Convolution, batch normalization and padding as tape nodes with hand-written backward passes.
//
//   conv:  dx = conv_transpose(dy, w)    dw = correlate(x, dy)    db = sum_{N,P,Q} dy
//   batch norm (training), xhat = (x - mean) invstd, M = N H W per channel:
//          dbeta = sum dy,   dgamma = sum dy xhat,   dx = gamma invstd / M (M dy - dbeta - xhat dgamma)
//   batch norm (eval) is addcmul(shift, x, scale) = x * scale + shift in one pass over x, with
//          scale = gamma / sqrt(running_var + eps) and shift = beta - running_mean scale built of ops, so
//          autograd differentiates it.
//   batch norm + SiLU (training): y = silu(z), z the batch norm's output; one kernel and one node that
//          keeps x (not z) and recomputes z in the backward: dz = silu'(z) dy, then the batch norm's backward.
//          In eval mode without gradients it is one kernel too (silu(x scale + shift)); with gradients, the
//          ops of the unfused pair.
//   channel gate y = x gate (gate [N, C, 1, 1]):  dx = dy gate,  dgate = sum_{H,W} dy x, one kernel
//   channel gate + convolution y = conv(x gate): the convolution's node keeps x and the gate, not their
//          product, and recomputes it for dw; dx and dgate are the gate's backward of conv's input gradient.
#include "tensor/nn.h"

#include "autograd/grad_mode.h"
#include "autograd/node.h"
#include "tensor/autocast.h"
#include "tensor/op_checks.h"
#include "tensor/ops.h"

namespace effnet {

int64_t conv_output_size(int64_t input, int64_t kernel, int64_t stride, int64_t pad, int64_t dilation) {
  return (input + 2 * pad - dilation * (kernel - 1) - 1) / stride + 1;
}

namespace {

// The convolution's node: like FunctionNode, but it looks at its edges to skip unneeded gradients. With a
// gate it is channel_gate_conv2d's: the convolution's input is x gate, recomputed here for the weight's
// gradient and freed before the input's, whose gradient goes back through the gate (edges x, gate, w, bias).
class Conv2dBackward : public autograd::Node {
 public:
  Conv2dBackward(Tensor x, Tensor gate, Tensor w, bool has_bias, Conv2dGeometry g)
      : x_(std::move(x)), gate_(std::move(gate)), w_(std::move(w)), gated_(gate_.defined()), has_bias_(has_bias),
        g_(g) {}
  std::string name() const override { return gated_ ? "channel_gate_conv2d" : "conv2d"; }
  void release_saved() override {
    x_ = Tensor();
    gate_ = Tensor();
    w_ = Tensor();
  }

  std::vector<Tensor> apply(std::vector<Tensor>&& grads) override {
    EFFNET_CHECK(x_.defined(), "backward through ", name(), " a second time: its saved tensors were freed "
                 "(pass retain_graph = true to the first backward)");
    const size_t w_edge = gated_ ? 2 : 1;
    // Every operand of a kernel call in x's memory format (tensor/backend.h).
    const Tensor grad_y = grads[0].contiguous(x_.suggest_memory_format());
    const Backend& kernels = backend(grad_y.device(), "conv2d backward");
    std::vector<Tensor> out(next_edges.size());
    if (next_edges[w_edge].node) {
      const Tensor input = gated_ ? mul(x_, gate_) : x_;
      const Tensor grad_w = empty(w_.shape(), TensorOptions(w_.dtype(), w_.device()), x_.suggest_memory_format());
      kernels.conv2d_backward_weight(grad_y, input, g_, grad_w);
      out[w_edge] = grad_w.contiguous();  // the weight itself is row-major (and so is what the optimizer reads)
    }
    if (has_bias_ && next_edges[w_edge + 1].node) out[w_edge + 1] = sum(grad_y, {0, 2, 3});
    if (next_edges[0].node || (gated_ && next_edges[1].node)) {
      Tensor grad_input = empty_like(x_);
      kernels.conv2d_backward_input(grad_y, w_, g_, grad_input);
      if (gated_) {  // (grad_x is computed even when only the gate needs its gradient: one kernel writes both)
        out[0] = empty_like(x_);
        out[1] = empty_like(gate_);
        kernels.channel_gate_backward(grad_input, x_, gate_, out[0], out[1]);
      } else {
        out[0] = std::move(grad_input);
      }
    }
    return out;
  }

 private:
  Tensor x_, gate_, w_;
  bool gated_, has_bias_;
  Conv2dGeometry g_;
};

// The checks and the forward kernel of a convolution whose operands are already cast (autocast): y, and the
// input and weight in the input's memory format, as the node keeps them.
struct Conv2dForward {
  Tensor y, xc, wc;
};
Conv2dForward run_conv2d(const char* op, const Tensor& x, const Tensor& w, const Tensor& bias,
                         const Conv2dGeometry& g) {
  std::vector<Tensor> operands{x, w};
  if (bias.defined()) operands.push_back(bias);
  check_same_device_dtype(op, operands);
  check_floating(op, x);
  EFFNET_CHECK(x.dim() == 4, op, ": expected an input [N, C, H, W], got ", x.str());
  EFFNET_CHECK(w.dim() == 4, op, ": expected a weight [K, C / groups, R, S], got ", w.str());
  EFFNET_CHECK(g.groups >= 1 && g.stride_h >= 1 && g.stride_w >= 1 && g.dilation_h >= 1 && g.dilation_w >= 1 &&
                   g.pad_h >= 0 && g.pad_w >= 0,
               op, ": invalid geometry: stride ", g.stride_h, "x", g.stride_w, ", padding ", g.pad_h, "x", g.pad_w,
               ", dilation ", g.dilation_h, "x", g.dilation_w, ", groups ", g.groups);
  const int64_t k = w.size(0);
  EFFNET_CHECK(x.size(1) == w.size(1) * g.groups, op, ": weight ", w.str(), " with groups ", g.groups, " expects ",
               w.size(1) * g.groups, " input channels, but the input ", x.str(), " has ", x.size(1));
  EFFNET_CHECK(k % g.groups == 0, op, ": ", k, " output channels (weight ", w.str(),
               ") are not divisible by groups ", g.groups);
  EFFNET_CHECK(!bias.defined() || bias.shape() == Shape{k}, op, ": bias ", bias.str(), " should be [", k, "]");
  const int64_t p = conv_output_size(x.size(2), w.size(2), g.stride_h, g.pad_h, g.dilation_h);
  const int64_t q = conv_output_size(x.size(3), w.size(3), g.stride_w, g.pad_w, g.dilation_w);
  EFFNET_CHECK(p >= 1 && q >= 1, op, ": input ", x.str(), " is smaller than the dilated kernel of ", w.str(),
               " with padding ", g.pad_h, "x", g.pad_w, " (output would be ", p, "x", q, ")");

  // Channels-last input: the weight and the output follow it (the weight's copy is small).
  const MemoryFormat format = x.suggest_memory_format();
  Conv2dForward r{empty({x.size(0), k, p, q}, TensorOptions(x.dtype(), x.device()), format),
                  x.detach().contiguous(format), w.detach().contiguous(format)};
  backend(x.device(), op).conv2d(r.xc, r.wc, g, r.y);
  if (bias.defined()) {
    autograd::NoGradGuard no_grad;
    r.y.add_(bias.detach().view({1, k, 1, 1}));
  }
  return r;
}

void check_gate(const char* op, const Tensor& x, const Tensor& gate) {
  check_defined(op, x, "the input");
  check_same_device_dtype(op, {x, gate});
  check_floating(op, x);
  EFFNET_CHECK(x.dim() == 4, op, ": expected an input [N, C, H, W], got ", x.str());
  const Shape gate_shape{x.size(0), x.size(1), 1, 1};
  EFFNET_CHECK(gate.shape() == gate_shape, op, ": the gate ", gate.str(), " should be ", shape_str(gate_shape),
               " for the input ", x.str());
}

}  // namespace

Tensor conv2d(const Tensor& x_in, const Tensor& w_in, const Tensor& bias_in, const Conv2dGeometry& g) {
  // Under autocast (tensor/autocast.h) the operands are cast to its 16-bit dtype first, on the tape.
  const Tensor x = autocast(x_in), w = autocast(w_in), bias = autocast(bias_in);
  Conv2dForward r = run_conv2d("conv2d", x, w, bias, g);
  std::vector<Tensor> operands{x, w};
  if (bias.defined()) operands.push_back(bias);
  if (autograd::needs_grad(operands)) {
    autograd::record_node(std::make_shared<Conv2dBackward>(r.xc, Tensor(), r.wc, bias.defined(), g), operands,
                          {r.y});
  }
  return r.y;
}

Tensor channel_gate_conv2d(const Tensor& x, const Tensor& gate, const Tensor& w_in, const Tensor& bias_in,
                           const Conv2dGeometry& g) {
  const char* op = "channel_gate_conv2d";
  check_gate(op, x, gate);
  // Under autocast the pair casts the product; the fused node keeps x and the gate in the convolution's dtype,
  // so it runs only when they are in it already (as squeeze-excite's are after the first convolution).
  const std::optional<DType> cast = autocast_dtype();
  if (cast && x.dtype() != *cast) return conv2d(channel_gate(x, gate), w_in, bias_in, g);
  const Tensor w = autocast(w_in), bias = autocast(bias_in);
  const Tensor xc = x.detach().contiguous(x.suggest_memory_format()), gc = gate.detach().contiguous();
  Conv2dForward r;
  {
    autograd::NoGradGuard no_grad;
    r = run_conv2d(op, mul(xc, gc), w, bias, g);  // the product lives only until the convolution has read it
  }
  std::vector<Tensor> operands{x, gate, w};
  if (bias.defined()) operands.push_back(bias);
  if (autograd::needs_grad(operands)) {
    autograd::record_node(std::make_shared<Conv2dBackward>(xc, gc, r.wc, bias.defined(), g), operands, {r.y});
  }
  return r.y;
}

Tensor pad2d(const Tensor& x, int64_t top, int64_t bottom, int64_t left, int64_t right) {
  EFFNET_CHECK(x.dim() == 4, "pad2d: expected [N, C, H, W], got ", x.str());
  EFFNET_CHECK(top >= 0 && bottom >= 0 && left >= 0 && right >= 0, "pad2d: negative padding ", top, ", ", bottom,
               ", ", left, ", ", right);
  const int64_t h = x.size(2), w = x.size(3);
  Tensor y = empty({x.size(0), x.size(1), top + h + bottom, left + w + right}, TensorOptions(x.dtype(), x.device()),
                   x.suggest_memory_format());
  y.fill_(0.0);
  y.slice(2, top, top + h).slice(3, left, left + w).copy_(x);
  autograd::record("pad2d", {x}, {y}, [top, left, h, w](std::vector<Tensor>&& grads) {
    return std::vector<Tensor>{grads[0].slice(2, top, top + h).slice(3, left, left + w)};
  });
  return y;
}

namespace {

Tensor batch_norm_with(const Tensor& x, const Tensor& gamma, const Tensor& beta, const Tensor& running_mean,
                       const Tensor& running_var, bool training, double momentum, double eps, Activation act) {
  const char* op = act == Activation::Silu ? "batch_norm_silu" : "batch_norm";
  check_defined(op, x, "the input");
  check_same_device_dtype(op, {gamma, beta, running_mean, running_var});
  // Mixed precision: a float16 / bfloat16 input with float32 parameters and statistics (tensor/autocast.h).
  const bool mixed = is_16bit(x.dtype()) && gamma.dtype() == kFloat32;
  EFFNET_CHECK(mixed || !is_16bit(x.dtype()), op, ": a ", x.dtype(),
               " input needs float32 gamma, beta and running statistics (mixed precision keeps them float32), got ",
               gamma.str());
  if (mixed) {
    EFFNET_CHECK(x.device() == gamma.device(), op, ": operands are on different devices: ", x.str(), " and ",
                 gamma.str());
  } else {
    check_same_device_dtype(op, {x, gamma});
  }
  check_floating(op, x);
  EFFNET_CHECK(x.dim() == 4, op, ": expected an input [N, C, H, W], got ", x.str());
  const int64_t c = x.size(1);
  for (const Tensor* t : {&gamma, &beta, &running_mean, &running_var}) {
    EFFNET_CHECK(t->shape() == Shape{c}, op, ": per-channel tensor ", t->str(), " should be [", c,
                 "] for the input ", x.str());
  }
  EFFNET_CHECK(eps > 0, op, ": eps must be positive, got ", eps);
  if (!training) {
    const Tensor scale = mul(gamma, rsqrt(add(running_var.detach(), eps)));
    const Tensor shift = sub(beta, mul(running_mean.detach(), scale));
    if (act == Activation::Silu && !autograd::needs_grad({x, gamma, beta})) {  // inference: one pass
      const Tensor xc = x.detach().contiguous(x.suggest_memory_format());
      Tensor y = empty_like(xc);
      backend(x.device(), op).batch_norm_eval(xc, scale.detach().contiguous(), shift.detach().contiguous(), act, y);
      return y;
    }
    const Tensor z = addcmul(shift.to(x.dtype()).view({1, c, 1, 1}), x, scale.to(x.dtype()).view({1, c, 1, 1}));
    return act == Activation::Silu ? silu(z) : z;
  }
  const int64_t m = c > 0 ? x.numel() / c : 0;
  EFFNET_CHECK(m > 1, op, ": training needs more than one value per channel, got input ", x.str());
  EFFNET_CHECK(running_mean.is_contiguous() && running_var.is_contiguous(), op,
               ": running statistics must be contiguous");
  const Tensor xc = x.detach().contiguous(x.suggest_memory_format());
  const Tensor g = gamma.detach().contiguous(), b = beta.detach().contiguous();
  const TensorOptions stats(gamma.dtype(), x.device());
  Tensor y = empty_like(xc), save_mean = empty({c}, stats), save_invstd = empty({c}, stats);
  backend(x.device(), op).batch_norm_train(xc, g, b, running_mean.detach(), running_var.detach(), momentum, eps, act,
                                           y, save_mean, save_invstd);
  // beta is kept only to recompute z (SiLU); the node never holds y.
  autograd::record(op, {x, gamma, beta}, {y},
                   [xc, g, b = act == Activation::Silu ? b : Tensor(), save_mean, save_invstd, eps, act,
                    op](std::vector<Tensor>&& grads) {
                     const Tensor grad_y = grads[0].contiguous(xc.suggest_memory_format());
                     Tensor grad_x = empty_like(xc), grad_gamma = empty_like(g), grad_beta = empty_like(g);
                     backend(xc.device(), act == Activation::Silu ? "batch_norm_silu backward" : "batch_norm backward")
                         .batch_norm_backward(grad_y, xc, g, b, save_mean, save_invstd, eps, act, grad_x, grad_gamma,
                                              grad_beta);
                     return std::vector<Tensor>{grad_x, grad_gamma, grad_beta};
                   });
  return y;
}

}  // namespace

Tensor batch_norm(const Tensor& x, const Tensor& gamma, const Tensor& beta, const Tensor& running_mean,
                  const Tensor& running_var, bool training, double momentum, double eps) {
  return batch_norm_with(x, gamma, beta, running_mean, running_var, training, momentum, eps, Activation::None);
}

Tensor batch_norm_silu(const Tensor& x, const Tensor& gamma, const Tensor& beta, const Tensor& running_mean,
                       const Tensor& running_var, bool training, double momentum, double eps) {
  return batch_norm_with(x, gamma, beta, running_mean, running_var, training, momentum, eps, Activation::Silu);
}

Tensor channel_gate(const Tensor& x, const Tensor& gate) {
  check_gate("channel_gate", x, gate);
  const Tensor xc = x.detach().contiguous(x.suggest_memory_format()), gc = gate.detach().contiguous();
  Tensor y;
  {
    autograd::NoGradGuard no_grad;
    y = mul(xc, gc);
  }
  autograd::record("channel_gate", {x, gate}, {y}, [xc, gc](std::vector<Tensor>&& grads) {
    const Tensor grad_y = grads[0].contiguous(xc.suggest_memory_format());
    Tensor grad_x = empty_like(xc), grad_gate = empty_like(gc);
    backend(xc.device(), "channel_gate backward").channel_gate_backward(grad_y, xc, gc, grad_x, grad_gate);
    return std::vector<Tensor>{grad_x, grad_gate};
  });
  return y;
}

}  // namespace effnet
