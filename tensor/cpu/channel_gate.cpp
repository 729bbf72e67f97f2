// The backward of a per-channel gate y = x gate_nc (tensor/backend.h has the contract), on the CPU:
//
//   N batch, C channels, HW = H W values per plane (n, c)
//
// One pass per plane writes grad_x = grad_y gate_nc and sums the products grad_y x in double (SIMD partial
// sums, a fixed order). 16-bit and channels-last operands run on float32 row-major copies (adapt.h).
#include "tensor/cpu/adapt.h"
#include "tensor/cpu/kernels.h"
#include "tensor/cpu/loops.h"
#include "tensor/elementwise_math.h"

namespace effnet::cpu {

void channel_gate_backward(const Tensor& grad_y, const Tensor& x, const Tensor& gate, const Tensor& grad_x,
                           const Tensor& grad_gate) {
  if (needs_adapting(grad_y) || needs_adapting(x) || needs_adapting(gate) || needs_adapting(grad_x)) {
    const Tensor dx = adapted_like(grad_x), dgate = adapted_like(grad_gate);
    channel_gate_backward(adapted(grad_y), adapted(x), adapted(gate), dx, dgate);
    copy(grad_x, dx);
    copy(grad_gate, dgate);
    return;
  }
  with_floating_type(x.dtype(), "channel_gate_backward", [&](auto tag) {
    using T = decltype(tag);
    const int64_t planes = x.size(0) * x.size(1), hw = x.size(2) * x.size(3);
    const T* gy = grad_y.data<T>();
    const T* in = x.data<T>();
    const T* g = gate.data<T>();
    T* gx = grad_x.data<T>();
    T* gg = grad_gate.data<T>();
#pragma omp parallel for schedule(static) if (x.numel() > 2 * kChunk)
    for (int64_t p = 0; p < planes; ++p) {
      const T scale = g[p];
      const T* dy = gy + p * hw;
      const T* src = in + p * hw;
      T* dst = gx + p * hw;
      double sum = 0;
#pragma omp simd reduction(+ : sum)
      for (int64_t k = 0; k < hw; ++k) {
        dst[k] = dy[k] * scale;
        sum += static_cast<double>(dy[k]) * src[k];
      }
      gg[p] = static_cast<T>(sum);
    }
  });
}

}  // namespace effnet::cpu
