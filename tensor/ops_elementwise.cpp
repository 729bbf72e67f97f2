// Elementwise ops and their gradients.
//
//   add: da = g,      db = g              mul: da = g b,           db = g a
//   addcmul a + b c: da = g,  db = g c,  dc = g b
//   sub: da = g,      db = -g             div: da = g / b,         db = -g out / b
//   pow: da = g b a^(b-1),                db = g out ln(a)
//   exp: g out        log: g / x          sqrt: g / (2 out)        rsqrt: -g out^3 / 2
//   sigmoid: g out (1 - out)              tanh: g (1 - out^2)      relu: g [out > 0]
//   silu: g s (1 + x (1 - s)), s = sigmoid(x)                      abs: g sign(x)
// Broadcast operands get their gradient summed back to their own shape (sum_to). Outputs keep the memory
// format (row-major or channels-last) of their full-shaped input.
// Saved tensors are detach()ed: a node that held its own output with grad_fn would keep itself alive.
#include "autograd/node.h"
#include "tensor/backend.h"
#include "tensor/op_checks.h"
#include "tensor/ops.h"

namespace effnet {

namespace {

using Grads = std::vector<Tensor>;

Tensor run_binary(const char* name, BinaryOp op, const Tensor& a, const Tensor& b) {
  check_same_device_dtype(name, {a, b});
  check_floating(name, a);
  const Shape shape = broadcast_shapes(name, a.shape(), b.shape());
  // The output takes the memory format of an operand of its full shape (a channels-last activation times
  // a broadcast [N, C, 1, 1] gate stays channels-last).
  const MemoryFormat format = (a.shape() == shape ? a : b).suggest_memory_format();
  Tensor out = empty(shape, TensorOptions(a.dtype(), a.device()), format);
  backend(a.device(), name).binary(op, a.detach().expand(shape), b.detach().expand(shape), out);
  return out;
}

Tensor run_unary(const char* name, UnaryOp op, const Tensor& x, double alpha = 0.0) {
  check_floating(name, x);
  Tensor out = empty_like(x);
  backend(x.device(), name).unary(op, x.detach(), alpha, out);
  return out;
}

// The fused backward products of backend.h: op(saved, grad).
Tensor grad_product(BinaryOp op, const Tensor& saved, const Tensor& grad) {
  return run_binary("backward", op, saved, grad);
}

}  // namespace

// ---------------------------------------------------------------- binary

Tensor add(const Tensor& a, const Tensor& b) {
  Tensor out = run_binary("add", BinaryOp::Add, a, b);
  autograd::record("add", {a, b}, {out}, [sa = a.shape(), sb = b.shape()](Grads&& g) {
    return Grads{sum_to(g[0], sa), sum_to(g[0], sb)};
  });
  return out;
}

Tensor sub(const Tensor& a, const Tensor& b) {
  Tensor out = run_binary("sub", BinaryOp::Sub, a, b);
  autograd::record("sub", {a, b}, {out}, [sa = a.shape(), sb = b.shape()](Grads&& g) {
    return Grads{sum_to(g[0], sa), sum_to(neg(g[0]), sb)};
  });
  return out;
}

Tensor mul(const Tensor& a, const Tensor& b) {
  Tensor out = run_binary("mul", BinaryOp::Mul, a, b);
  // Each operand is kept only for the other's gradient, and a gradient only computed when its operand has
  // an edge: a mask (dropout, drop path) needs none, so the masked activation is not kept and the mask's
  // gradient (a product of the activation's size, then a sum) is not computed.
  const bool need_a = a.requires_grad(), need_b = b.requires_grad();
  autograd::record("mul", {a, b}, {out},
                   [a_shape = a.shape(), b_shape = b.shape(), a = need_b ? a.detach() : Tensor(),
                    b = need_a ? b.detach() : Tensor()](Grads&& g) {
                     return Grads{b.defined() ? sum_to(mul(g[0], b), a_shape) : Tensor(),
                                  a.defined() ? sum_to(mul(g[0], a), b_shape) : Tensor()};
                   });
  return out;
}

Tensor addcmul(const Tensor& a, const Tensor& b, const Tensor& c) {
  check_same_device_dtype("addcmul", {a, b, c});
  check_floating("addcmul", a);
  const Shape shape = broadcast_shapes("addcmul", broadcast_shapes("addcmul", a.shape(), b.shape()), c.shape());
  // The layout of b, the product's activation (as add(a, mul(b, c)) would give it), when it has the full shape.
  const Tensor& full = b.shape() == shape ? b : a.shape() == shape ? a : c;
  Tensor out = empty(shape, TensorOptions(a.dtype(), a.device()), full.suggest_memory_format());
  backend(a.device(), "addcmul")
      .addcmul(a.detach().expand(shape), b.detach().expand(shape), c.detach().expand(shape), out);
  // As mul: b and c are each kept only for the other's gradient.
  const bool need_b = b.requires_grad(), need_c = c.requires_grad();
  autograd::record("addcmul", {a, b, c}, {out},
                   [a_shape = a.shape(), b_shape = b.shape(), c_shape = c.shape(), b = need_c ? b.detach() : Tensor(),
                    c = need_b ? c.detach() : Tensor()](Grads&& g) {
                     return Grads{sum_to(g[0], a_shape), c.defined() ? sum_to(mul(g[0], c), b_shape) : Tensor(),
                                  b.defined() ? sum_to(mul(g[0], b), c_shape) : Tensor()};
                   });
  return out;
}

Tensor div(const Tensor& a, const Tensor& b) {
  Tensor out = run_binary("div", BinaryOp::Div, a, b);
  autograd::record("div", {a, b}, {out}, [sa = a.shape(), b = b.detach(), out = out.detach()](Grads&& g) {
    Tensor ga = div(g[0], b);
    return Grads{sum_to(ga, sa), sum_to(neg(mul(ga, out)), b.shape())};
  });
  return out;
}

Tensor pow(const Tensor& base, const Tensor& exponent) {
  Tensor out = run_binary("pow", BinaryOp::Pow, base, exponent);
  autograd::record("pow", {base, exponent}, {out},
                   [a = base.detach(), b = exponent.detach(), out = out.detach()](Grads&& g) {
                     Tensor ga = mul(mul(g[0], b), pow(a, sub(b, ones_like(b))));
                     Tensor gb = mul(mul(g[0], out), log(a));
                     return Grads{sum_to(ga, a.shape()), sum_to(gb, b.shape())};
                   });
  return out;
}

Tensor eq(const Tensor& a, const Tensor& b) { return run_binary("eq", BinaryOp::Eq, a, b); }
Tensor ne(const Tensor& a, const Tensor& b) { return run_binary("ne", BinaryOp::Ne, a, b); }
Tensor lt(const Tensor& a, const Tensor& b) { return run_binary("lt", BinaryOp::Lt, a, b); }
Tensor le(const Tensor& a, const Tensor& b) { return run_binary("le", BinaryOp::Le, a, b); }
Tensor gt(const Tensor& a, const Tensor& b) { return run_binary("gt", BinaryOp::Gt, a, b); }
Tensor ge(const Tensor& a, const Tensor& b) { return run_binary("ge", BinaryOp::Ge, a, b); }

// ---------------------------------------------------------------- with a scalar

Tensor add(const Tensor& a, double b) {
  Tensor out = run_unary("add", UnaryOp::AddScalar, a, b);
  autograd::record("add_scalar", {a}, {out}, [](Grads&& g) { return Grads{g[0]}; });
  return out;
}

Tensor mul(const Tensor& a, double b) {
  Tensor out = run_unary("mul", UnaryOp::MulScalar, a, b);
  autograd::record("mul_scalar", {a}, {out}, [b](Grads&& g) { return Grads{mul(g[0], b)}; });
  return out;
}

Tensor pow(const Tensor& base, double exponent) {
  Tensor out = run_unary("pow", UnaryOp::PowScalar, base, exponent);
  autograd::record("pow_scalar", {base}, {out}, [x = base.detach(), exponent](Grads&& g) {
    return Grads{mul(mul(g[0], pow(x, exponent - 1.0)), exponent)};
  });
  return out;
}

// ---------------------------------------------------------------- unary

Tensor neg(const Tensor& x) {
  Tensor out = run_unary("neg", UnaryOp::Neg, x);
  autograd::record("neg", {x}, {out}, [](Grads&& g) { return Grads{neg(g[0])}; });
  return out;
}

Tensor exp(const Tensor& x) {
  Tensor out = run_unary("exp", UnaryOp::Exp, x);
  autograd::record("exp", {x}, {out}, [out = out.detach()](Grads&& g) { return Grads{mul(g[0], out)}; });
  return out;
}

Tensor log(const Tensor& x) {
  Tensor out = run_unary("log", UnaryOp::Log, x);
  autograd::record("log", {x}, {out}, [x = x.detach()](Grads&& g) { return Grads{div(g[0], x)}; });
  return out;
}

Tensor sqrt(const Tensor& x) {
  Tensor out = run_unary("sqrt", UnaryOp::Sqrt, x);
  autograd::record("sqrt", {x}, {out}, [out = out.detach()](Grads&& g) {
    return Grads{div(g[0], mul(out, 2.0))};
  });
  return out;
}

Tensor rsqrt(const Tensor& x) {
  Tensor out = run_unary("rsqrt", UnaryOp::Rsqrt, x);
  autograd::record("rsqrt", {x}, {out}, [out = out.detach()](Grads&& g) {
    return Grads{mul(mul(g[0], pow(out, 3.0)), -0.5)};
  });
  return out;
}

Tensor abs(const Tensor& x) {
  Tensor out = run_unary("abs", UnaryOp::Abs, x);
  autograd::record("abs", {x}, {out}, [x = x.detach()](Grads&& g) {
    return Grads{mul(g[0], run_unary("sign", UnaryOp::Sign, x))};
  });
  return out;
}

Tensor sigmoid(const Tensor& x) {
  Tensor out = run_unary("sigmoid", UnaryOp::Sigmoid, x);
  autograd::record("sigmoid", {x}, {out}, [out = out.detach()](Grads&& g) {
    return Grads{grad_product(BinaryOp::SigmoidGrad, out, g[0])};
  });
  return out;
}

Tensor silu(const Tensor& x) {
  Tensor out = run_unary("silu", UnaryOp::Silu, x);
  autograd::record("silu", {x}, {out}, [x = x.detach()](Grads&& g) {
    return Grads{grad_product(BinaryOp::SiluGrad, x, g[0])};
  });
  return out;
}

Tensor tanh(const Tensor& x) {
  Tensor out = run_unary("tanh", UnaryOp::Tanh, x);
  autograd::record("tanh", {x}, {out}, [out = out.detach()](Grads&& g) {
    return Grads{grad_product(BinaryOp::TanhGrad, out, g[0])};
  });
  return out;
}

Tensor relu(const Tensor& x) {
  Tensor out = run_unary("relu", UnaryOp::Relu, x);
  autograd::record("relu", {x}, {out}, [out = out.detach()](Grads&& g) {
    return Grads{grad_product(BinaryOp::ReluGrad, out, g[0])};
  });
  return out;
}

}  // namespace effnet
