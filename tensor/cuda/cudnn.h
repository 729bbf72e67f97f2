// Small helpers shared by the cuDNN-backed kernels (conv.cpp, batch_norm.cpp): RAII descriptors and the
// blend factors of cuDNN's "out = alpha result + beta out", which are double for double data and float
// otherwise.
#pragma once

#include <cudnn.h>

#include "tensor/cuda/check.h"

namespace effnet::cuda {

template <class Handle, cudnnStatus_t (*kCreate)(Handle*), cudnnStatus_t (*kDestroy)(Handle)>
class CudnnDescriptor {
 public:
  CudnnDescriptor() { EFFNET_CUDNN_CHECK(kCreate(&handle_)); }
  // Destroying a valid descriptor does not fail, and a destructor must not throw.
  ~CudnnDescriptor() { (void)kDestroy(handle_); }
  CudnnDescriptor(const CudnnDescriptor&) = delete;
  CudnnDescriptor& operator=(const CudnnDescriptor&) = delete;
  Handle get() const { return handle_; }

 private:
  Handle handle_ = nullptr;
};

using TensorDescriptor =
    CudnnDescriptor<cudnnTensorDescriptor_t, cudnnCreateTensorDescriptor, cudnnDestroyTensorDescriptor>;
using FilterDescriptor =
    CudnnDescriptor<cudnnFilterDescriptor_t, cudnnCreateFilterDescriptor, cudnnDestroyFilterDescriptor>;
using ConvolutionDescriptor = CudnnDescriptor<cudnnConvolutionDescriptor_t, cudnnCreateConvolutionDescriptor,
                                              cudnnDestroyConvolutionDescriptor>;

constexpr float kOneF = 1, kZeroF = 0;
constexpr double kOneD = 1, kZeroD = 0;

}  // namespace effnet::cuda
