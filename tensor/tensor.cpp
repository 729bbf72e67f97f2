// Tensor metadata, views, data movement and in-place fills. Views share storage; each differentiable view
// records a node whose backward maps the gradient back to the base's shape.
#include "tensor/tensor.h"

#include <algorithm>
#include <numeric>
#include <sstream>

#include "autograd/grad_mode.h"
#include "autograd/node.h"
#include "tensor/backend.h"
#include "tensor/elementwise_math.h"
#include "tensor/op_checks.h"
#include "tensor/ops.h"
#include "tensor/random.h"

namespace effnet {

Tensor make_tensor(std::shared_ptr<Storage> storage, Shape shape, Shape strides, int64_t offset, DType dtype) {
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = std::move(storage);
  impl->shape = std::move(shape);
  impl->strides = std::move(strides);
  impl->offset = offset;
  impl->dtype = dtype;
  return Tensor(std::move(impl));
}

namespace {

// A view of `base` with new geometry over the same storage.
Tensor view_of(const Tensor& base, Shape shape, Shape strides, int64_t offset) {
  return make_tensor(base.storage(), std::move(shape), std::move(strides), offset, base.dtype());
}

// Strides for viewing `t` as `shape` without a copy, or empty when the layouts are incompatible.
// Walks both shapes in chunks of equal element counts; a chunk of `t` can be re-split only if its dims are
// contiguous among themselves.
Shape view_strides(const Tensor& t, const Shape& shape) {
  if (t.numel() == 0 || t.is_contiguous()) return contiguous_strides(shape);
  const Shape& old_shape = t.shape();
  const Shape& old_strides = t.strides();
  Shape strides(shape.size());
  int64_t view_d = static_cast<int64_t>(shape.size()) - 1;
  int64_t chunk_base_stride = old_strides.empty() ? 1 : old_strides.back();
  int64_t tensor_numel = 1, view_numel = 1;
  for (int64_t d = static_cast<int64_t>(old_shape.size()) - 1; d >= 0; --d) {
    tensor_numel *= old_shape[d];
    // A chunk ends where the next outer dim does not continue this one.
    if (d == 0 || (old_shape[d - 1] != 1 && old_strides[d - 1] != tensor_numel * chunk_base_stride)) {
      while (view_d >= 0 && (view_numel < tensor_numel || shape[view_d] == 1)) {
        strides[view_d] = view_numel * chunk_base_stride;
        view_numel *= shape[view_d];
        --view_d;
      }
      if (view_numel != tensor_numel) return {};
      if (d > 0) {
        chunk_base_stride = old_strides[d - 1];
        tensor_numel = 1;
        view_numel = 1;
      }
    }
  }
  return view_d == -1 ? strides : Shape{};
}

// Resolves one -1 in `shape` against `numel`.
Shape infer_shape(const char* op, const Shape& shape, int64_t numel, const Shape& from) {
  Shape out = shape;
  int64_t known = 1, infer_at = -1;
  for (size_t k = 0; k < out.size(); ++k) {
    if (out[k] == -1) {
      EFFNET_CHECK(infer_at < 0, op, ": only one dimension can be -1, got ", shape_str(shape));
      infer_at = static_cast<int64_t>(k);
    } else {
      EFFNET_CHECK(out[k] >= 0, op, ": invalid size ", out[k], " in ", shape_str(shape));
      known *= out[k];
    }
  }
  if (infer_at >= 0) {
    EFFNET_CHECK(known != 0 && numel % known == 0, op, ": cannot view ", shape_str(from), " (", numel,
                 " elements) as ", shape_str(shape));
    out[infer_at] = numel / known;
  }
  EFFNET_CHECK(shape_numel(out) == numel, op, ": cannot view ", shape_str(from), " (", numel,
               " elements) as ", shape_str(shape), " (", shape_numel(out), " elements)");
  return out;
}

}  // namespace

// ---------------------------------------------------------------- metadata

const TensorImpl& Tensor::checked() const {
  EFFNET_CHECK(impl_ != nullptr, "use of an undefined tensor (default-constructed or a missing gradient)");
  return *impl_;
}

const Shape& Tensor::shape() const { return checked().shape; }
const Shape& Tensor::strides() const { return checked().strides; }
int64_t Tensor::offset() const { return checked().offset; }
int64_t Tensor::dim() const { return static_cast<int64_t>(checked().shape.size()); }
int64_t Tensor::size(int64_t d) const { return shape()[normalize_dim("size", d, dim())]; }
int64_t Tensor::numel() const { return shape_numel(checked().shape); }
DType Tensor::dtype() const { return checked().dtype; }
Device Tensor::device() const { return checked().storage->device(); }
const std::shared_ptr<Storage>& Tensor::storage() const { return checked().storage; }

void* Tensor::data_ptr() const {
  const TensorImpl& t = checked();
  return static_cast<char*>(t.storage->data()) + t.offset * static_cast<int64_t>(element_size(t.dtype));
}

bool Tensor::is_contiguous(MemoryFormat format) const {
  if (format == MemoryFormat::Contiguous) return is_contiguous();
  const TensorImpl& t = checked();
  if (t.shape.size() != 4) return false;
  if (shape_numel(t.shape) == 0) return true;
  int64_t expected = 1;
  for (int k : {1, 3, 2, 0}) {  // C innermost, then W, H, N
    if (t.shape[k] == 1) continue;
    if (t.strides[k] != expected) return false;
    expected *= t.shape[k];
  }
  return true;
}

MemoryFormat Tensor::suggest_memory_format() const {
  return is_contiguous(MemoryFormat::ChannelsLast) && !is_contiguous() ? MemoryFormat::ChannelsLast
                                                                        : MemoryFormat::Contiguous;
}

bool Tensor::is_contiguous() const {
  const TensorImpl& t = checked();
  if (shape_numel(t.shape) == 0) return true;  // no element to misplace
  int64_t expected = 1;
  for (size_t k = t.shape.size(); k-- > 0;) {
    if (t.shape[k] == 1) continue;
    if (t.strides[k] != expected) return false;
    expected *= t.shape[k];
  }
  return true;
}

std::string Tensor::str() const {
  if (!defined()) return "Tensor(undefined)";
  std::ostringstream os;
  os << "Tensor" << shape_str(shape()) << ' ' << dtype_name(dtype()) << ' ' << device().str();
  return os.str();
}

// ---------------------------------------------------------------- views

Tensor Tensor::view(const Shape& new_shape) const {
  const Shape resolved = infer_shape("view", new_shape, numel(), shape());
  Shape strides = view_strides(*this, resolved);
  EFFNET_CHECK(!strides.empty() || resolved.empty(), "view: ", str(), " with strides ", shape_str(this->strides()),
               " cannot be viewed as ", shape_str(resolved), " without a copy; use reshape()");
  Tensor out = view_of(*this, resolved, std::move(strides), offset());
  const Shape in_shape = shape();
  autograd::record("view", {*this}, {out}, [in_shape](std::vector<Tensor>&& g) {
    return std::vector<Tensor>{g[0].reshape(in_shape)};
  });
  return out;
}

Tensor Tensor::reshape(const Shape& new_shape) const {
  const Shape resolved = infer_shape("reshape", new_shape, numel(), shape());
  if (!view_strides(*this, resolved).empty() || resolved.empty()) return view(resolved);
  return contiguous().view(resolved);
}

Tensor Tensor::permute(const std::vector<int64_t>& dims) const {
  const int64_t n = dim();
  EFFNET_CHECK(static_cast<int64_t>(dims.size()) == n, "permute: ", str(), " needs ", n, " dims, got ",
               shape_str(dims));
  Shape shape_out(n), strides_out(n);
  std::vector<int64_t> inverse(n, -1);
  for (int64_t k = 0; k < n; ++k) {
    const int64_t d = normalize_dim("permute", dims[k], n);
    EFFNET_CHECK(inverse[d] < 0, "permute: dim ", d, " repeated in ", shape_str(dims));
    inverse[d] = k;
    shape_out[k] = shape()[d];
    strides_out[k] = strides()[d];
  }
  Tensor out = view_of(*this, shape_out, strides_out, offset());
  autograd::record("permute", {*this}, {out}, [inverse](std::vector<Tensor>&& g) {
    return std::vector<Tensor>{g[0].permute(inverse)};
  });
  return out;
}

Tensor Tensor::transpose(int64_t d0, int64_t d1) const {
  std::vector<int64_t> dims(dim());
  std::iota(dims.begin(), dims.end(), 0);
  std::swap(dims[normalize_dim("transpose", d0, dim())], dims[normalize_dim("transpose", d1, dim())]);
  return permute(dims);
}

Tensor Tensor::slice(int64_t d, int64_t start, int64_t end, int64_t step) const {
  d = normalize_dim("slice", d, dim());
  EFFNET_CHECK(step > 0, "slice: step must be positive, got ", step);
  const int64_t n = size(d);
  auto clamp = [n](int64_t i) { return std::clamp(i < 0 ? i + n : i, int64_t{0}, n); };
  start = clamp(start);
  end = std::max(clamp(end), start);
  Shape shape_out = shape(), strides_out = strides();
  shape_out[d] = (end - start + step - 1) / step;
  strides_out[d] *= step;
  Tensor out = view_of(*this, shape_out, strides_out, offset() + start * strides()[d]);
  const Shape in_shape = shape();
  const TensorOptions options(dtype(), device());
  autograd::record("slice", {*this}, {out}, [=](std::vector<Tensor>&& g) {
    Tensor grad_in = zeros(in_shape, options);
    grad_in.slice(d, start, end, step).copy_(g[0]);
    return std::vector<Tensor>{grad_in};
  });
  return out;
}

Tensor Tensor::select(int64_t d, int64_t index) const {
  d = normalize_dim("select", d, dim());
  const int64_t n = size(d);
  EFFNET_CHECK(index >= -n && index < n, "select: index ", index, " is out of range for dim ", d, " of size ", n);
  if (index < 0) index += n;
  return slice(d, index, index + 1).squeeze(d);
}

Tensor Tensor::expand(const Shape& new_shape) const {
  const int64_t n = static_cast<int64_t>(new_shape.size());
  EFFNET_CHECK(n >= dim(), "expand: cannot expand ", str(), " to fewer dims ", shape_str(new_shape));
  Shape strides_out(n);
  for (int64_t k = n - 1; k >= 0; --k) {
    const int64_t src = k - (n - dim());
    if (src < 0) {
      strides_out[k] = 0;
    } else if (shape()[src] == new_shape[k]) {
      strides_out[k] = strides()[src];
    } else {
      EFFNET_CHECK(shape()[src] == 1, "expand: ", str(), " cannot be expanded to ", shape_str(new_shape),
                   " (dim ", k, ": size ", shape()[src], " is not 1)");
      strides_out[k] = 0;
    }
  }
  if (new_shape == shape()) return *this;
  Tensor out = view_of(*this, new_shape, strides_out, offset());
  const Shape in_shape = shape();
  autograd::record("expand", {*this}, {out}, [in_shape](std::vector<Tensor>&& g) {
    return std::vector<Tensor>{sum_to(g[0], in_shape)};
  });
  return out;
}

Tensor Tensor::squeeze(int64_t d) const {
  d = normalize_dim("squeeze", d, dim());
  EFFNET_CHECK(size(d) == 1, "squeeze: dim ", d, " of ", str(), " has size ", size(d), ", not 1");
  Shape s = shape();
  s.erase(s.begin() + d);
  return view(s);
}

Tensor Tensor::unsqueeze(int64_t d) const {
  d = normalize_dim("unsqueeze", d, dim() + 1);
  Shape s = shape();
  s.insert(s.begin() + d, 1);
  return view(s);
}

Tensor Tensor::flatten(int64_t start_dim, int64_t end_dim) const {
  if (dim() == 0) return reshape({1});
  start_dim = normalize_dim("flatten", start_dim, dim());
  end_dim = normalize_dim("flatten", end_dim, dim());
  EFFNET_CHECK(start_dim <= end_dim, "flatten: start_dim ", start_dim, " is after end_dim ", end_dim);
  Shape s(shape().begin(), shape().begin() + start_dim);
  int64_t merged = 1;
  for (int64_t k = start_dim; k <= end_dim; ++k) merged *= size(k);
  s.push_back(merged);
  s.insert(s.end(), shape().begin() + end_dim + 1, shape().end());
  return reshape(s);
}

// ---------------------------------------------------------------- copies and conversions

Tensor Tensor::contiguous() const {
  if (is_contiguous()) return *this;
  return clone();
}

Tensor Tensor::contiguous(MemoryFormat format) const {
  if (format == MemoryFormat::Contiguous) return contiguous();
  if (is_contiguous(format)) return *this;
  Tensor out = empty(shape(), TensorOptions(dtype(), device()), format);
  backend(device(), "contiguous").copy(out, *this);
  autograd::record("contiguous", {*this}, {out}, [](std::vector<Tensor>&& g) { return std::vector<Tensor>{g[0]}; });
  return out;
}

Tensor Tensor::clone() const {
  Tensor out = empty(shape(), TensorOptions(dtype(), device()));
  backend(device(), "clone").copy(out, *this);
  autograd::record("clone", {*this}, {out}, [](std::vector<Tensor>&& g) { return std::vector<Tensor>{g[0]}; });
  return out;
}

Tensor Tensor::to(Device target) const {
  if (target == device()) return *this;
  Tensor out = empty(shape(), TensorOptions(dtype(), target));
  {
    autograd::NoGradGuard no_grad;
    out.copy_(*this);
  }
  const Device source = device();
  autograd::record("to_device", {*this}, {out}, [source](std::vector<Tensor>&& g) {
    return std::vector<Tensor>{g[0].to(source)};
  });
  return out;
}

Tensor Tensor::to(DType target) const {
  if (target == dtype()) return *this;
  Tensor out = empty(shape(), TensorOptions(target, device()), suggest_memory_format());
  backend(device(), "to(dtype)").copy(out, *this);
  const DType source = dtype();
  if (is_floating(target) && is_floating(source)) {
    autograd::record("to_dtype", {*this}, {out}, [source](std::vector<Tensor>&& g) {
      return std::vector<Tensor>{g[0].to(source)};
    });
  }
  return out;
}

Tensor Tensor::detach() const {
  return make_tensor(storage(), shape(), strides(), offset(), dtype());
}

// ---------------------------------------------------------------- host access

std::vector<double> Tensor::to_vector() const {
  Tensor host = detach().to(Device::cpu()).contiguous();
  std::vector<double> values(host.numel());
  with_copyable_type(dtype(), "to_vector", [&](auto tag) {
    using T = decltype(tag);
    const T* p = host.data<T>();
    for (size_t i = 0; i < values.size(); ++i) values[i] = static_cast<double>(p[i]);
  });
  return values;
}

double Tensor::item() const {
  EFFNET_CHECK(numel() == 1, "item: ", str(), " has ", numel(), " elements, expected exactly one");
  return to_vector()[0];
}

// ---------------------------------------------------------------- in place

Tensor& Tensor::fill_(double value) {
  check_inplace_allowed("fill_", *this);
  backend(device(), "fill_").fill(*this, value);
  return *this;
}

Tensor& Tensor::copy_(const Tensor& src) {
  check_defined("copy_", src, "src");
  check_inplace_allowed("copy_", *this);
  EFFNET_CHECK(src.dim() <= dim() && broadcast_shapes("copy_", src.shape(), shape()) == shape(), "copy_: source ",
               src.str(), " cannot be broadcast to the destination ", str());
  Tensor source = src.detach().expand(shape());
  if (source.device() == device()) {
    backend(device(), "copy_").copy(*this, source);
    return *this;
  }
  // Across devices: move contiguous bytes of the source dtype, then cast/scatter on this device.
  source = source.contiguous();
  const Device far = device().is_cpu() ? source.device() : device();
  if (!source.device().is_cpu() && !device().is_cpu()) source = source.to(Device::cpu());  // GPU -> GPU via host
  const Backend& link = backend(far, "copy_");
  if (is_contiguous() && dtype() == source.dtype()) {
    link.copy_with_host(*this, source);
  } else {
    Tensor staged = empty(shape(), TensorOptions(source.dtype(), device()));
    link.copy_with_host(staged, source);
    backend(device(), "copy_").copy(*this, staged);
  }
  return *this;
}

namespace {
Tensor& random_fill(Tensor& t, RandomKind kind, double a, double b, Generator* gen, const char* op) {
  check_inplace_allowed(op, t);
  check_floating(op, t);
  Generator& g = gen ? *gen : default_generator();
  const uint64_t offset = g.advance(static_cast<uint64_t>(t.numel()));
  Tensor target = t.is_contiguous() ? t : empty(t.shape(), TensorOptions(t.dtype(), t.device()));
  backend(t.device(), op).random(target, kind, a, b, g.seed(), offset);
  if (!t.is_contiguous()) backend(t.device(), op).copy(t, target);
  return t;
}
}  // namespace

Tensor& Tensor::uniform_(double low, double high, Generator* gen) {
  return random_fill(*this, RandomKind::Uniform, low, high, gen, "uniform_");
}

Tensor& Tensor::normal_(double mean_value, double std_value, Generator* gen) {
  return random_fill(*this, RandomKind::Normal, mean_value, std_value, gen, "normal_");
}

Tensor& Tensor::add_(const Tensor& other, double alpha) {
  check_inplace_allowed("add_", *this);
  check_same_device_dtype("add_", {*this, other});
  Tensor term = other.detach().expand(shape());
  if (alpha != 1.0) term = mul(term, alpha);
  backend(device(), "add_").binary(BinaryOp::Add, *this, term, *this);
  return *this;
}

Tensor& Tensor::add_(double value) {
  check_inplace_allowed("add_", *this);
  backend(device(), "add_").unary(UnaryOp::AddScalar, *this, value, *this);
  return *this;
}

Tensor& Tensor::mul_(double factor) {
  check_inplace_allowed("mul_", *this);
  backend(device(), "mul_").unary(UnaryOp::MulScalar, *this, factor, *this);
  return *this;
}

void Tensor::set_data(const Tensor& source) const {
  check_defined("set_data", source, "source");
  EFFNET_CHECK(is_leaf(), "set_data: ", str(), " is not a leaf");
  TensorImpl& t = *impl_;
  EFFNET_CHECK(!t.requires_grad || is_floating(source.dtype()), "set_data: ", str(),
               " requires grad, so its new data must be floating point, got ", source.str());
  t.storage = source.storage();
  t.shape = source.shape();
  t.strides = source.strides();
  t.offset = source.offset();
  t.dtype = source.dtype();
  t.grad = Tensor();
}

// ---------------------------------------------------------------- autograd

bool Tensor::requires_grad() const { return checked().requires_grad; }

Tensor& Tensor::requires_grad_(bool on) {
  EFFNET_CHECK(is_leaf(), "requires_grad_: ", str(), " is the result of an op (", checked().grad_fn->name(),
               "); only leaves can be marked; use detach() first");
  EFFNET_CHECK(!on || is_floating(dtype()), "requires_grad_: ", str(), " is not floating point");
  impl_->requires_grad = on;
  if (!on) impl_->grad_accumulator.reset();
  return *this;
}

const Tensor& Tensor::grad() const { return checked().grad; }

void Tensor::set_grad(const Tensor& g) const {
  EFFNET_CHECK(!g.defined() || g.shape() == shape(), "set_grad: gradient ", g.str(), " does not match ", str());
  impl_->grad = g;
}

const std::shared_ptr<autograd::Node>& Tensor::grad_fn() const { return checked().grad_fn; }
int Tensor::output_nr() const { return checked().output_nr; }
bool Tensor::is_leaf() const { return checked().grad_fn == nullptr; }

void Tensor::backward(const Tensor& grad_output, bool retain_graph) const {
  Tensor g = grad_output;
  if (!g.defined()) {
    EFFNET_CHECK(numel() == 1, "backward: ", str(), " is not a single value; pass the gradient of the output");
    g = ones(shape(), TensorOptions(dtype(), device()));
  }
  autograd::backward({*this}, {g}, retain_graph);
}

Tensor Tensor::sum(const std::vector<int64_t>& dims, bool keepdim) const { return effnet::sum(*this, dims, keepdim); }
Tensor Tensor::mean(const std::vector<int64_t>& dims, bool keepdim) const {
  return effnet::mean(*this, dims, keepdim);
}

}  // namespace effnet
