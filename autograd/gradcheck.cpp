// The finite-difference gradient checker (see gradcheck.h for the math).
#include "autograd/gradcheck.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <sstream>

#include "autograd/grad_mode.h"
#include "autograd/node.h"
#include "tensor/ops.h"
#include "tensor/random.h"

namespace effnet::autograd {

namespace {

// A 0-d view of element `linear` (row-major position) of t.
Tensor element(const Tensor& t, int64_t linear) {
  int64_t offset = t.offset();
  for (int64_t k = t.dim() - 1; k >= 0; --k) {
    offset += (linear % t.size(k)) * t.strides()[k];
    linear /= t.size(k);
  }
  return make_tensor(t.storage(), {}, {}, offset, t.dtype());
}

std::string index_str(const Tensor& t, int64_t linear) {
  Shape idx(t.dim());
  for (int64_t k = t.dim() - 1; k >= 0; --k) {
    idx[k] = linear % t.size(k);
    linear /= t.size(k);
  }
  return shape_str(idx);
}

// The elements of an input to check: all of them, or a seeded sample.
std::vector<int64_t> elements_to_check(int64_t numel, int64_t limit, uint64_t seed) {
  std::vector<int64_t> all(numel);
  std::iota(all.begin(), all.end(), 0);
  if (limit <= 0 || numel <= limit) return all;
  Tensor keys = empty({numel}, kFloat64);
  Generator gen(seed);
  keys.uniform_(0.0, 1.0, &gen);
  const std::vector<double> k = keys.to_vector();
  std::partial_sort(all.begin(), all.begin() + limit, all.end(), [&k](int64_t a, int64_t b) { return k[a] < k[b]; });
  all.resize(limit);
  std::sort(all.begin(), all.end());
  return all;
}

// Restores the default generator when the check is over, whatever happens.
class GeneratorRestore {
 public:
  GeneratorRestore() : seed_(default_generator().seed()), offset_(default_generator().offset()) {}
  ~GeneratorRestore() {
    default_generator().manual_seed(seed_);
    default_generator().set_offset(offset_);
  }

 private:
  uint64_t seed_, offset_;
};

}  // namespace

GradcheckResult gradcheck(const std::function<std::vector<Tensor>()>& f, const std::vector<Tensor>& inputs,
                          const GradcheckOptions& options) {
  for (size_t i = 0; i < inputs.size(); ++i) {
    const Tensor& x = inputs[i];
    EFFNET_CHECK(x.defined() && x.dtype() == kFloat64, "gradcheck: input ", i, " is ", x.str(),
                 "; finite differences need float64");
    EFFNET_CHECK(x.requires_grad() && x.is_leaf(), "gradcheck: input ", i, " (", x.str(),
                 ") must be a leaf with requires_grad");
  }
  GeneratorRestore restore;

  // Analytic: one backward of sum_k <v_k, y_k>.
  manual_seed(options.seed);
  std::vector<Tensor> outputs = f();
  std::vector<Tensor> cotangents;
  Generator cotangent_gen(options.seed ^ 0x5DEECE66Dull);
  std::vector<Tensor> differentiable, their_cotangents;
  for (size_t k = 0; k < outputs.size(); ++k) {
    const Tensor& y = outputs[k];
    EFFNET_CHECK(y.dtype() == kFloat64, "gradcheck: output ", k, " is ", y.str(), "; expected float64");
    Tensor v = empty(y.shape(), TensorOptions(kFloat64, y.device()));
    v.normal_(0.0, 1.0, &cotangent_gen);
    cotangents.push_back(v);
    if (y.requires_grad()) {
      differentiable.push_back(y);
      their_cotangents.push_back(v);
    }
  }
  std::vector<Tensor> analytic(inputs.size());
  if (!differentiable.empty()) analytic = grad(differentiable, their_cotangents, inputs);

  // Numeric: central differences of the same projection.
  NoGradGuard no_grad;
  auto projection = [&]() {
    manual_seed(options.seed);
    const std::vector<Tensor> ys = f();
    double total = 0;
    for (size_t k = 0; k < ys.size(); ++k) total += sum(mul(ys[k], cotangents[k])).item();
    return total;
  };
  const double at_x = options.skip_kinks ? projection() : 0.0;

  GradcheckResult result;
  std::ostringstream report;
  int mismatches = 0;
  for (size_t i = 0; i < inputs.size(); ++i) {
    const Tensor& x = inputs[i];
    const std::vector<double> a = analytic[i].defined() ? analytic[i].to_vector()
                                                        : std::vector<double>(static_cast<size_t>(x.numel()), 0.0);
    for (int64_t j : elements_to_check(x.numel(), options.max_elements_per_input, options.seed + i)) {
      Tensor e = element(x, j);
      const double original = e.item();
      e.fill_(original + options.eps);
      const double plus = projection();
      e.fill_(original - options.eps);
      const double minus = projection();
      e.fill_(original);
      if (options.skip_kinks) {
        const double right = (plus - at_x) / options.eps, left = (at_x - minus) / options.eps;
        if (std::abs(right - left) > options.atol + options.rtol * (std::abs(right) + std::abs(left))) {
          ++result.skipped;
          continue;
        }
      }
      const double numeric = (plus - minus) / (2 * options.eps);
      const double error = std::abs(a[j] - numeric);
      ++result.checked;
      result.max_abs_error = std::max(result.max_abs_error, error);
      if (!(error <= options.atol + options.rtol * std::abs(numeric))) {
        result.ok = false;
        if (++mismatches <= 10) {
          report << "input " << i << " " << x.str() << " element " << index_str(x, j) << ": analytic " << a[j]
                 << ", numeric " << numeric << " (|diff| " << error << ")\n";
        }
      }
    }
  }
  if (mismatches > 10) report << "... " << mismatches - 10 << " more mismatches\n";
  report << "checked " << result.checked << " elements, skipped " << result.skipped
         << " at kinks, max |analytic - numeric| = " << result.max_abs_error;
  result.report = report.str();
  return result;
}

GradcheckResult gradcheck(const std::function<Tensor()>& f, const std::vector<Tensor>& inputs,
                          const GradcheckOptions& options) {
  return gradcheck(std::function<std::vector<Tensor>()>([&f]() { return std::vector<Tensor>{f()}; }), inputs,
                   options);
}

}  // namespace effnet::autograd
