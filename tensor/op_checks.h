// Argument checks shared by the op implementations (tensor/ops_*.cpp). Each names the op and the
// offending tensors in its message.
#pragma once

#include <string>
#include <vector>

#include "tensor/tensor.h"

namespace effnet {

void check_defined(const char* op, const Tensor& t, const char* arg = "input");
// Same device and dtype for all operands of an op.
void check_same_device_dtype(const char* op, const std::vector<Tensor>& operands);
void check_floating(const char* op, const Tensor& t);
// Refuses an in-place write into a tensor that takes part in autograd while grad mode is on.
void check_inplace_allowed(const char* op, const Tensor& t);
// Sorted, de-duplicated, normalized reduction dims (empty input = all dims).
std::vector<int64_t> normalize_dims(const char* op, const std::vector<int64_t>& dims, int64_t ndim);

}  // namespace effnet
