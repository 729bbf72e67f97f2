// The CUDA kernel entry points that fill effnet::cuda_backend() (tensor/cuda/backend.cu). Each one keeps the
// contract of its field in tensor/backend.h, queues its work on the context stream of the operands' device
// and returns without waiting, except where a host buffer must be ready (copy_with_host to the CPU).
#pragma once

#include <cstdint>

#include "tensor/backend.h"
#include "tensor/tensor.h"

namespace effnet::cuda {

// elementwise.cu
void fill(const Tensor& dst, double value);
void copy(const Tensor& dst, const Tensor& src);
void random(const Tensor& dst, RandomKind kind, double a, double b, uint64_t seed, uint64_t offset);
void unary(UnaryOp op, const Tensor& x, double alpha, const Tensor& out);
void binary(BinaryOp op, const Tensor& a, const Tensor& b, const Tensor& out);

// reduce.cu
void reduce(ReduceOp op, const Tensor& x, const Tensor& out);
void argmax(const Tensor& x, int64_t dim, const Tensor& out);

// softmax.cu
void softmax(const Tensor& x, int64_t dim, bool log, const Tensor& out);
void softmax_backward(const Tensor& y, const Tensor& grad_y, int64_t dim, bool log, const Tensor& grad_x);

// matmul.cpp
void matmul(const Tensor& a, const Tensor& b, const Tensor& out);

// transfer.cpp
void copy_with_host(const Tensor& dst, const Tensor& src);
void synchronize(Device device);

}  // namespace effnet::cuda
