// Tensor basics: factories, metadata, views (shared storage, exact values), copies and casts, in-place
// fills, the random fills and their statistics, and (suites *Cuda) host <-> device movement and CPU/CUDA
// agreement of the random fills.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "tensor/int_divider.h"
#include "tensor/ops.h"
#include "tensor/philox.h"
#include "tensor/random.h"
#include "tensor/tensor.h"
#include "tests/test_util.h"

namespace effnet {
namespace {

using Values = std::vector<double>;

Values iota_values(int64_t n, double start = 0.0) {
  Values v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) v[static_cast<size_t>(i)] = start + static_cast<double>(i);
  return v;
}

// The raw bytes of a tensor's elements in row-major order (brought to the CPU): "exact" comparisons
// without a detour through double, which would lose int64 values above 2^53.
std::vector<unsigned char> host_bytes(const Tensor& t) {
  Tensor host = t.cpu().contiguous();
  const auto* p = static_cast<const unsigned char*>(host.data_ptr());
  return std::vector<unsigned char>(p, p + host.numel() * static_cast<int64_t>(element_size(host.dtype())));
}

struct Moments {
  double mean = 0.0;
  double variance = 0.0;  // unbiased
};

Moments moments(const Values& v) {
  double sum = 0.0;
  for (double x : v) sum += x;
  const double mean_value = sum / static_cast<double>(v.size());
  double squares = 0.0;
  for (double x : v) squares += (x - mean_value) * (x - mean_value);
  return {mean_value, squares / static_cast<double>(v.size() - 1)};
}

// ================================================================ factories

TEST(Tensor, ZerosOnesFull) {
  Tensor z = zeros({2, 3});
  EXPECT_EQ(z.dtype(), kFloat32);
  EXPECT_EQ(z.device(), Device::cpu());
  EXPECT_EQ(z.to_vector(), Values(6, 0.0));

  Tensor o = ones({4}, kFloat64);
  EXPECT_EQ(o.dtype(), kFloat64);
  EXPECT_EQ(o.to_vector(), Values(4, 1.0));

  Tensor f = full({3, 1}, -7.0, kInt64);
  EXPECT_EQ(f.dtype(), kInt64);
  EXPECT_EQ(f.shape(), (Shape{3, 1}));
  EXPECT_EQ(f.to_vector(), Values(3, -7.0));

  EXPECT_EQ(full({2}, 0.1, kFloat32).to_vector(), Values(2, static_cast<double>(0.1f)));
}

TEST(Tensor, FromVectorKeepsRowMajorOrderAndConverts) {
  Tensor t = from_vector({1, 2, 3, 4, 5, 6}, {2, 3});
  EXPECT_EQ(t.shape(), (Shape{2, 3}));
  EXPECT_EQ(t.to_vector(), (Values{1, 2, 3, 4, 5, 6}));
  // Element (1, 0) is the fourth value.
  EXPECT_EQ(t.select(0, 1).select(0, 0).item(), 4.0);

  EXPECT_EQ(from_vector({0.1}, {1}, kFloat64).item(), 0.1);
  EXPECT_EQ(from_vector({0.1}, {1}, kFloat32).item(), static_cast<double>(0.1f));
  EXPECT_EQ(from_vector({-2.75, 3.5}, {2}, kInt64).to_vector(), (Values{-2, 3}));
}

TEST(Tensor, Arange) {
  Tensor a = arange(5);
  EXPECT_EQ(a.shape(), (Shape{5}));
  EXPECT_EQ(a.dtype(), kFloat32);
  EXPECT_EQ(a.to_vector(), (Values{0, 1, 2, 3, 4}));

  Tensor i = arange(4, kInt64);
  EXPECT_EQ(i.dtype(), kInt64);
  EXPECT_EQ(i.to_vector(), (Values{0, 1, 2, 3}));

  EXPECT_EQ(arange(0).numel(), 0);
}

TEST(Tensor, ScalarTensorIsZeroDimensional) {
  Tensor s = scalar_tensor(3.5, kFloat64);
  EXPECT_EQ(s.dim(), 0);
  EXPECT_TRUE(s.shape().empty());
  EXPECT_TRUE(s.strides().empty());
  EXPECT_EQ(s.numel(), 1);
  EXPECT_TRUE(s.is_contiguous());
  EXPECT_EQ(s.item(), 3.5);
  EXPECT_EQ(s.str(), "Tensor[] float64 cpu");
}

TEST(Tensor, LikeFactoriesCopyShapeDtypeDeviceButNotData) {
  Tensor base = arange(6, kFloat64).view({2, 3}).transpose(0, 1);  // [3, 2], not contiguous
  for (const Tensor& t : {empty_like(base), zeros_like(base), ones_like(base)}) {
    EXPECT_EQ(t.shape(), (Shape{3, 2}));
    EXPECT_EQ(t.dtype(), kFloat64);
    EXPECT_EQ(t.device(), Device::cpu());
    EXPECT_TRUE(t.is_contiguous());
    EXPECT_NE(t.storage(), base.storage());
  }
  EXPECT_EQ(zeros_like(base).to_vector(), Values(6, 0.0));
  EXPECT_EQ(ones_like(base).to_vector(), Values(6, 1.0));
}

TEST(Tensor, EmptyTensorsWithAZeroSize) {
  Tensor t = zeros({0, 3});
  EXPECT_EQ(t.numel(), 0);
  EXPECT_EQ(t.dim(), 2);
  EXPECT_TRUE(t.to_vector().empty());
  EXPECT_EQ(t.reshape({3, 0}).shape(), (Shape{3, 0}));
}

// ================================================================ metadata

TEST(Tensor, Metadata) {
  Tensor t = zeros({2, 3, 4}, kFloat64);
  EXPECT_EQ(t.shape(), (Shape{2, 3, 4}));
  EXPECT_EQ(t.strides(), (Shape{12, 4, 1}));
  EXPECT_EQ(t.offset(), 0);
  EXPECT_EQ(t.numel(), 24);
  EXPECT_EQ(t.dim(), 3);
  EXPECT_EQ(t.size(0), 2);
  EXPECT_EQ(t.size(-1), 4);
  EXPECT_TRUE(t.is_contiguous());
  EXPECT_FALSE(t.is_cuda());
  EXPECT_EQ(t.str(), "Tensor[2, 3, 4] float64 cpu");
  EXPECT_EQ(zeros({5}, kInt64).str(), "Tensor[5] int64 cpu");
  EXPECT_EQ(Tensor().str(), "Tensor(undefined)");
  EXPECT_FALSE(Tensor().defined());
}

TEST(Tensor, IsContiguousIgnoresStridesOfSizeOneDims) {
  Tensor t = zeros({3, 4});
  EXPECT_FALSE(t.transpose(0, 1).is_contiguous());
  EXPECT_TRUE(t.unsqueeze(1).is_contiguous());
  EXPECT_TRUE(t.slice(0, 1, 2).is_contiguous());      // a [1, 4] row
  EXPECT_FALSE(t.slice(1, 0, 4, 2).is_contiguous());  // every other column
  EXPECT_FALSE(t.slice(1, 2, 3).transpose(0, 1).is_contiguous());  // [1, 3] with stride 4
}

TEST(Tensor, DataChecksTheDtype) {
  Tensor t = from_vector({1.5, 2.5}, {2}, kFloat64);
  EXPECT_EQ(t.data<double>()[1], 2.5);
  EXPECT_THROW(t.data<float>(), Error);
}

// ================================================================ views

TEST(Tensor, ViewSharesStorageBothWays) {
  Tensor a = arange(6);
  Tensor v = a.view({2, 3});
  EXPECT_EQ(v.storage(), a.storage());
  EXPECT_EQ(v.shape(), (Shape{2, 3}));
  EXPECT_EQ(v.strides(), (Shape{3, 1}));

  v.select(0, 1).fill_(9.0);  // write through the view
  EXPECT_EQ(a.to_vector(), (Values{0, 1, 2, 9, 9, 9}));
  a.mul_(2.0);  // write through the base
  EXPECT_EQ(v.to_vector(), (Values{0, 2, 4, 18, 18, 18}));
}

TEST(Tensor, ViewInfersOneMinusOne) {
  Tensor a = arange(12);
  EXPECT_EQ(a.view({-1, 4}).shape(), (Shape{3, 4}));
  EXPECT_EQ(a.view({2, -1, 2}).shape(), (Shape{2, 3, 2}));
  EXPECT_EQ(a.reshape({-1}).shape(), (Shape{12}));
}

TEST(Tensor, ViewOfAStridedButCompatibleTensor) {
  // Every other element: stride 2, not contiguous, but splitting its only dim needs no copy.
  Tensor base = arange(12);
  Tensor evens = base.slice(0, 0, 12, 2);
  Tensor v = evens.view({2, 3});
  EXPECT_EQ(v.storage(), base.storage());
  EXPECT_EQ(v.strides(), (Shape{6, 2}));
  EXPECT_EQ(v.to_vector(), (Values{0, 2, 4, 6, 8, 10}));

  // A permuted tensor can still split its innermost (contiguous) dim.
  Tensor p = arange(24).view({2, 3, 4}).permute({1, 0, 2});  // [3, 2, 4], strides [4, 12, 1]
  Tensor split = p.view({3, 2, 2, 2});
  EXPECT_EQ(split.storage(), p.storage());
  EXPECT_EQ(split.strides(), (Shape{4, 12, 2, 1}));
  EXPECT_EQ(split.to_vector(), p.contiguous().to_vector());
}

TEST(Tensor, ViewOfANonViewableTensorThrows) {
  Tensor t = arange(6).view({2, 3}).transpose(0, 1);
  EXPECT_THROW(t.view({6}), Error);
  Tensor p = arange(24).view({2, 3, 4}).permute({1, 0, 2});
  EXPECT_THROW(p.view({6, 4}), Error);  // dims 0 and 1 of p are not adjacent in memory
}

TEST(Tensor, ReshapeOfANonViewableTensorCopies) {
  Tensor base = arange(6).view({2, 3});
  Tensor t = base.transpose(0, 1);  // [[0, 3], [1, 4], [2, 5]]
  Tensor r = t.reshape({6});
  EXPECT_NE(r.storage(), base.storage());
  EXPECT_TRUE(r.is_contiguous());
  EXPECT_EQ(r.to_vector(), (Values{0, 3, 1, 4, 2, 5}));
  r.fill_(-1.0);
  EXPECT_EQ(base.to_vector(), (Values{0, 1, 2, 3, 4, 5}));

  // An expanded (stride 0) tensor flattens by copying the repeated values.
  Tensor e = from_vector({1, 2}, {2, 1}).expand({2, 3}).reshape({6});
  EXPECT_EQ(e.to_vector(), (Values{1, 1, 1, 2, 2, 2}));
}

TEST(Tensor, ReshapeIsAViewWhenPossible) {
  Tensor base = arange(6);
  Tensor r = base.reshape({3, 2});
  EXPECT_EQ(r.storage(), base.storage());
  r.select(0, 0).fill_(7.0);
  EXPECT_EQ(base.to_vector(), (Values{7, 7, 2, 3, 4, 5}));

  // Not contiguous, but splitting a strided dim needs no copy.
  Tensor evens = arange(12).slice(0, 0, 12, 2);
  Tensor split = evens.reshape({3, 2});
  EXPECT_EQ(split.storage(), evens.storage());
  EXPECT_EQ(split.strides(), (Shape{4, 2}));
  EXPECT_EQ(split.to_vector(), (Values{0, 2, 4, 6, 8, 10}));
}

TEST(Tensor, Permute) {
  Tensor base = arange(24).view({2, 3, 4});  // element (i, j, k) = 12 i + 4 j + k
  Tensor p = base.permute({2, 0, 1});        // p(k, i, j) = base(i, j, k)
  EXPECT_EQ(p.shape(), (Shape{4, 2, 3}));
  EXPECT_EQ(p.strides(), (Shape{1, 12, 4}));
  EXPECT_EQ(p.storage(), base.storage());
  EXPECT_FALSE(p.is_contiguous());
  EXPECT_EQ(p.to_vector(), (Values{0, 4, 8, 12, 16, 20,   //
                                   1, 5, 9, 13, 17, 21,   //
                                   2, 6, 10, 14, 18, 22,  //
                                   3, 7, 11, 15, 19, 23}));
  EXPECT_EQ(base.permute({-3, -2, -1}).to_vector(), base.to_vector());

  p.select(0, 3).fill_(-1.0);  // every base element with k = 3
  EXPECT_EQ(base.select(2, 3).to_vector(), Values(6, -1.0));
  EXPECT_EQ(base.select(2, 2).to_vector(), (Values{2, 6, 10, 14, 18, 22}));
}

TEST(Tensor, Transpose) {
  Tensor base = arange(6).view({2, 3});
  Tensor t = base.transpose(0, 1);
  EXPECT_EQ(t.shape(), (Shape{3, 2}));
  EXPECT_EQ(t.strides(), (Shape{1, 3}));
  EXPECT_EQ(t.to_vector(), (Values{0, 3, 1, 4, 2, 5}));
  EXPECT_EQ(base.transpose(-1, -2).to_vector(), t.to_vector());
  EXPECT_EQ(t.transpose(0, 1).to_vector(), base.to_vector());
}

TEST(Tensor, SliceWithSteps) {
  Tensor a = arange(10);
  Tensor s = a.slice(0, 1, 8, 3);
  EXPECT_EQ(s.shape(), (Shape{3}));
  EXPECT_EQ(s.strides(), (Shape{3}));
  EXPECT_EQ(s.offset(), 1);
  EXPECT_EQ(s.to_vector(), (Values{1, 4, 7}));
  EXPECT_EQ(a.slice(0, 0, 10, 4).to_vector(), (Values{0, 4, 8}));
  EXPECT_EQ(a.slice(0, 1, 9, 4).to_vector(), (Values{1, 5}));  // 9 is excluded
}

TEST(Tensor, SliceWithNegativeAndOutOfRangeBounds) {
  Tensor a = arange(10);
  EXPECT_EQ(a.slice(0, -4, -1).to_vector(), (Values{6, 7, 8}));
  EXPECT_EQ(a.slice(0, -3, 10).to_vector(), (Values{7, 8, 9}));
  EXPECT_EQ(a.slice(0, -100, 100, 4).to_vector(), (Values{0, 4, 8}));  // clamped like Python
  EXPECT_EQ(a.slice(0, 5, 2).numel(), 0);                              // empty, not negative
  EXPECT_EQ(a.slice(0, 12, 20).numel(), 0);
}

TEST(Tensor, SliceAlongAnInnerDimSharesStorage) {
  Tensor m = arange(12).view({3, 4});
  Tensor cols = m.slice(1, 1, 4, 2);  // columns 1 and 3
  EXPECT_EQ(cols.shape(), (Shape{3, 2}));
  EXPECT_EQ(cols.strides(), (Shape{4, 2}));
  EXPECT_EQ(cols.to_vector(), (Values{1, 3, 5, 7, 9, 11}));

  cols.fill_(-1.0);
  EXPECT_EQ(m.to_vector(), (Values{0, -1, 2, -1, 4, -1, 6, -1, 8, -1, 10, -1}));
  EXPECT_EQ(m.slice(-1, -1, 4).to_vector(), (Values{-1, -1, -1}));
}

TEST(Tensor, Select) {
  Tensor m = arange(12).view({3, 4});
  Tensor row = m.select(0, 1);
  EXPECT_EQ(row.shape(), (Shape{4}));
  EXPECT_EQ(row.to_vector(), (Values{4, 5, 6, 7}));
  EXPECT_EQ(m.select(1, -1).to_vector(), (Values{3, 7, 11}));
  EXPECT_EQ(m.select(-1, 0).to_vector(), (Values{0, 4, 8}));

  m.select(1, 2).fill_(100.0);
  EXPECT_EQ(m.to_vector(), (Values{0, 1, 100, 3, 4, 5, 100, 7, 8, 9, 100, 11}));
  EXPECT_EQ(m.select(0, 2).select(0, 2).item(), 100.0);  // selecting down to a 0-D tensor
}

TEST(Tensor, ExpandUsesStrideZeroAndSharesStorage) {
  Tensor column = from_vector({1, 2, 3}, {3, 1});
  Tensor e = column.expand({2, 3, 4});  // new leading dim, size-1 dim grown
  EXPECT_EQ(e.shape(), (Shape{2, 3, 4}));
  EXPECT_EQ(e.strides(), (Shape{0, 1, 0}));
  EXPECT_EQ(e.storage(), column.storage());
  Values expected;
  for (int rep = 0; rep < 2; ++rep) {
    for (double v : {1.0, 2.0, 3.0}) expected.insert(expected.end(), 4, v);
  }
  EXPECT_EQ(e.to_vector(), expected);

  column.select(0, 1).fill_(-5.0);  // every copy of element 1 changes
  EXPECT_EQ(e.select(0, 1).select(0, 1).to_vector(), Values(4, -5.0));

  EXPECT_EQ(from_vector({7, 8}, {2}).expand({3, 2}).to_vector(), (Values{7, 8, 7, 8, 7, 8}));
  EXPECT_EQ(from_vector({7, 8}, {2}).expand({3, 2}).strides(), (Shape{0, 1}));
}

TEST(Tensor, SqueezeAndUnsqueeze) {
  Tensor t = arange(6).view({2, 1, 3});
  Tensor s = t.squeeze(1);
  EXPECT_EQ(s.shape(), (Shape{2, 3}));
  EXPECT_EQ(s.storage(), t.storage());
  EXPECT_EQ(t.squeeze(-2).shape(), (Shape{2, 3}));
  EXPECT_EQ(t.unsqueeze(0).shape(), (Shape{1, 2, 1, 3}));
  EXPECT_EQ(t.unsqueeze(-1).shape(), (Shape{2, 1, 3, 1}));
  EXPECT_EQ(t.unsqueeze(3).shape(), (Shape{2, 1, 3, 1}));
  EXPECT_EQ(t.unsqueeze(0).storage(), t.storage());
  EXPECT_EQ(s.unsqueeze(1).to_vector(), t.to_vector());

  // On a non-contiguous tensor too.
  Tensor tt = arange(6).view({2, 3}).transpose(0, 1).unsqueeze(1);  // [3, 1, 2]
  EXPECT_EQ(tt.shape(), (Shape{3, 1, 2}));
  EXPECT_EQ(tt.to_vector(), (Values{0, 3, 1, 4, 2, 5}));
  EXPECT_EQ(tt.squeeze(1).to_vector(), (Values{0, 3, 1, 4, 2, 5}));
}

TEST(Tensor, Flatten) {
  Tensor t = arange(24).view({2, 3, 4});
  EXPECT_EQ(t.flatten().shape(), (Shape{24}));
  EXPECT_EQ(t.flatten(1).shape(), (Shape{2, 12}));
  EXPECT_EQ(t.flatten(0, 1).shape(), (Shape{6, 4}));
  EXPECT_EQ(t.flatten(-2, -1).shape(), (Shape{2, 12}));
  EXPECT_EQ(t.flatten().storage(), t.storage());
  EXPECT_EQ(scalar_tensor(2.0).flatten().shape(), (Shape{1}));

  Tensor p = arange(6).view({2, 3}).transpose(0, 1);
  EXPECT_EQ(p.flatten().to_vector(), (Values{0, 3, 1, 4, 2, 5}));
}

// ================================================================ copies and conversions

TEST(Tensor, ContiguousOfAPermutedTensorIsRowMajor) {
  Tensor base = arange(24).view({2, 3, 4});
  Tensor p = base.permute({1, 2, 0});  // p(j, k, i) = 12 i + 4 j + k
  Tensor c = p.contiguous();
  EXPECT_TRUE(c.is_contiguous());
  EXPECT_EQ(c.shape(), (Shape{3, 4, 2}));
  EXPECT_EQ(c.strides(), (Shape{8, 2, 1}));
  EXPECT_NE(c.storage(), base.storage());
  const float* data = c.data<float>();  // read memory directly, not through to_vector()
  for (int j = 0; j < 3; ++j) {
    for (int k = 0; k < 4; ++k) {
      for (int i = 0; i < 2; ++i) {
        EXPECT_EQ(data[j * 8 + k * 2 + i], static_cast<float>(12 * i + 4 * j + k)) << j << ", " << k << ", " << i;
      }
    }
  }
}

TEST(Tensor, ContiguousOfAContiguousTensorIsItself) {
  Tensor t = arange(4);
  EXPECT_EQ(t.contiguous().impl(), t.impl());
}

TEST(Tensor, CloneIsIndependent) {
  Tensor a = arange(4, kFloat64);
  Tensor c = a.clone();
  EXPECT_NE(c.storage(), a.storage());
  EXPECT_EQ(c.dtype(), kFloat64);
  EXPECT_EQ(c.to_vector(), a.to_vector());
  c.fill_(5.0);
  EXPECT_EQ(a.to_vector(), (Values{0, 1, 2, 3}));
  a.fill_(-1.0);
  EXPECT_EQ(c.to_vector(), Values(4, 5.0));

  Tensor t = arange(6).view({2, 3}).transpose(0, 1).clone();
  EXPECT_TRUE(t.is_contiguous());
  EXPECT_EQ(t.to_vector(), (Values{0, 3, 1, 4, 2, 5}));
}

TEST(Tensor, ToDtypeFloat32Float64) {
  Tensor f32 = from_vector({1.5, -2.25, 0.1, 1e30}, {4}, kFloat32);
  Tensor f64 = f32.to(kFloat64);
  EXPECT_EQ(f64.dtype(), kFloat64);
  EXPECT_EQ(f64.to_vector(), f32.to_vector());  // widening is exact

  Tensor d = from_vector({0.1, 1.0 / 3.0, -1e-40}, {3}, kFloat64);
  Tensor narrowed = d.to(kFloat32);  // rounds to nearest, keeps float32 denormals
  EXPECT_EQ(narrowed.dtype(), kFloat32);
  EXPECT_EQ(narrowed.to_vector(), (Values{static_cast<double>(0.1f), static_cast<double>(1.0f / 3.0f),
                                          static_cast<double>(static_cast<float>(-1e-40))}));
  EXPECT_EQ(f32.to(kFloat32).impl(), f32.impl());  // same dtype: no copy
}

TEST(Tensor, ToInt64TruncatesTowardZero) {
  Tensor f = from_vector({2.9, -2.9, 0.5, -0.5, 7.0, -7.0, 1e12 + 0.75}, {7}, kFloat64);
  Tensor i = f.to(kInt64);
  EXPECT_EQ(i.dtype(), kInt64);
  const int64_t* p = i.data<int64_t>();
  EXPECT_EQ(std::vector<int64_t>(p, p + 7), (std::vector<int64_t>{2, -2, 0, 0, 7, -7, 1000000000000}));
  EXPECT_EQ(from_vector({-3.99, 3.99}, {2}, kFloat32).to(kInt64).to_vector(), (Values{-3, 3}));
}

TEST(Tensor, ToFromInt64) {
  Tensor i = from_vector({-3, 5, 1099511627776.0 /* 2^40 */}, {3}, kInt64);
  EXPECT_EQ(i.to(kFloat64).to_vector(), (Values{-3, 5, 1099511627776.0}));
  EXPECT_EQ(i.to(kFloat32).to_vector(), (Values{-3, 5, 1099511627776.0}));  // powers of two are exact
  // int64 -> float64 -> int64 round trip on a non-contiguous view.
  Tensor m = arange(6, kInt64).view({2, 3}).transpose(0, 1);
  EXPECT_EQ(m.to(kFloat64).to(kInt64).to_vector(), (Values{0, 3, 1, 4, 2, 5}));
}

TEST(Tensor, CopyBroadcastsAndCasts) {
  Tensor dst = zeros({2, 3}, kFloat64);
  dst.copy_(from_vector({1, 2, 3}, {3}, kFloat32));  // row broadcast
  EXPECT_EQ(dst.to_vector(), (Values{1, 2, 3, 1, 2, 3}));
  dst.copy_(from_vector({-1, 0.5}, {2, 1}, kFloat64));  // column broadcast
  EXPECT_EQ(dst.to_vector(), (Values{-1, -1, -1, 0.5, 0.5, 0.5}));
  dst.copy_(scalar_tensor(4.0, kInt64));
  EXPECT_EQ(dst.to_vector(), Values(6, 4.0));

  Tensor ints = zeros({2}, kInt64);
  ints.copy_(from_vector({1.7, -1.7}, {2}, kFloat32));
  EXPECT_EQ(ints.to_vector(), (Values{1, -1}));
}

TEST(Tensor, CopyIntoANonContiguousDestination) {
  Tensor base = zeros({2, 3});
  base.transpose(0, 1).copy_(from_vector({1, 2, 3, 4, 5, 6}, {3, 2}));
  EXPECT_EQ(base.to_vector(), (Values{1, 3, 5, 2, 4, 6}));

  Tensor row = zeros({2, 4}, kFloat64);
  row.slice(1, 0, 4, 2).copy_(from_vector({7, 8}, {2}, kInt64));
  EXPECT_EQ(row.to_vector(), (Values{7, 0, 8, 0, 7, 0, 8, 0}));
}

TEST(Tensor, FillAddMulInPlace) {
  Tensor a = ones({2, 3});
  a.add_(from_vector({1, 2, 3}, {3}), 2.0);  // a += 2 * [1, 2, 3], broadcast over rows
  EXPECT_EQ(a.to_vector(), (Values{3, 5, 7, 3, 5, 7}));
  a.add_(ones({2, 3}));
  EXPECT_EQ(a.to_vector(), (Values{4, 6, 8, 4, 6, 8}));
  a.mul_(-0.5);
  EXPECT_EQ(a.to_vector(), (Values{-2, -3, -4, -2, -3, -4}));
  a.select(1, 1).fill_(0.25);
  EXPECT_EQ(a.to_vector(), (Values{-2, 0.25, -4, -2, 0.25, -4}));
  a.zero_();
  EXPECT_EQ(a.to_vector(), Values(6, 0.0));

  Tensor& same = a.fill_(1.0).mul_(3.0);  // the in-place calls return *this
  EXPECT_EQ(&same, &a);
  EXPECT_EQ(a.to_vector(), Values(6, 3.0));
}

TEST(Tensor, InPlaceOnAStridedView) {
  Tensor m = zeros({3, 3}, kFloat64);
  Tensor diag_like = m.transpose(0, 1).slice(0, 0, 3, 2);  // rows 0 and 2 of m^T = columns 0 and 2 of m
  diag_like.add_(from_vector({1, 2, 3}, {3}, kFloat64));
  diag_like.mul_(10.0);
  EXPECT_EQ(m.to_vector(), (Values{10, 0, 10, 20, 0, 20, 30, 0, 30}));
}

TEST(Tensor, Item) {
  EXPECT_EQ(scalar_tensor(-1.25).item(), -1.25);
  EXPECT_EQ(full({1, 1, 1}, 6.0, kInt64).item(), 6.0);
  EXPECT_EQ(arange(10, kFloat64).select(0, 7).item(), 7.0);
}

TEST(Tensor, DetachSharesDataAndDropsGrad) {
  Tensor x = ones({2}, kFloat64);
  x.requires_grad_();
  mul(x, 3.0).sum().backward();
  ASSERT_TRUE(x.grad().defined());

  Tensor d = x.detach();
  EXPECT_EQ(d.storage(), x.storage());
  EXPECT_FALSE(d.requires_grad());
  EXPECT_FALSE(d.grad().defined());
  EXPECT_TRUE(d.is_leaf());
  d.fill_(4.0);  // allowed: d takes no part in autograd
  EXPECT_EQ(x.to_vector(), (Values{4, 4}));

  Tensor y = mul(x, 2.0);
  ASSERT_NE(y.grad_fn(), nullptr);
  Tensor yd = y.detach();
  EXPECT_EQ(yd.grad_fn(), nullptr);
  EXPECT_FALSE(yd.requires_grad());
  EXPECT_EQ(yd.storage(), y.storage());
}

// ================================================================ random (CPU)

TEST(Random, SameSeedGivesSameNumbers) {
  Generator g1(42), g2(42);
  Tensor a = empty({1000});
  Tensor b = empty({1000});
  a.uniform_(0.0, 1.0, &g1);
  b.uniform_(0.0, 1.0, &g2);
  EXPECT_EQ(a.to_vector(), b.to_vector());

  Tensor n1 = empty({1000}, kFloat64), n2 = empty({1000}, kFloat64);
  n1.normal_(0.0, 1.0, &g1);
  n2.normal_(0.0, 1.0, &g2);
  EXPECT_EQ(n1.to_vector(), n2.to_vector());
}

TEST(Random, DefaultGeneratorIsReproducibleAfterManualSeed) {
  manual_seed(1234);
  const Values first = rand({500}).to_vector();
  const Values first_normal = randn({500}, kFloat64).to_vector();
  manual_seed(1234);
  EXPECT_EQ(rand({500}).to_vector(), first);
  EXPECT_EQ(randn({500}, kFloat64).to_vector(), first_normal);
  EXPECT_NE(rand({500}).to_vector(), first);  // the stream moves on
}

TEST(Random, DifferentSeedsGiveDifferentNumbers) {
  Generator g1(1), g2(2);
  Tensor a = empty({1000}, kFloat64), b = empty({1000}, kFloat64);
  a.uniform_(0.0, 1.0, &g1);
  b.uniform_(0.0, 1.0, &g2);
  const Values va = a.to_vector(), vb = b.to_vector();
  int equal = 0;
  for (size_t i = 0; i < va.size(); ++i) equal += va[i] == vb[i];
  EXPECT_EQ(equal, 0);  // 53-bit samples: a coincidence has probability ~1000 * 2^-53
}

TEST(Random, ConsecutiveFillsContinueTheStream) {
  // A fill of n elements uses counters [offset, offset + n): two fills of 10 equal one fill of 20.
  Generator split(9), whole(9);
  Tensor a = empty({10}, kFloat64), b = empty({10}, kFloat64), c = empty({20}, kFloat64);
  a.uniform_(0.0, 1.0, &split);
  EXPECT_EQ(split.offset(), 10u);
  b.uniform_(0.0, 1.0, &split);
  EXPECT_EQ(split.offset(), 20u);
  c.uniform_(0.0, 1.0, &whole);
  Values ab = a.to_vector();
  const Values vb = b.to_vector();
  ab.insert(ab.end(), vb.begin(), vb.end());
  EXPECT_EQ(ab, c.to_vector());

  Generator jumped(9);
  jumped.set_offset(13);
  Tensor one = empty({1}, kFloat64);
  one.uniform_(0.0, 1.0, &jumped);
  EXPECT_EQ(one.item(), c.to_vector()[13]);
}

TEST(Random, IndependentGenerators) {
  Generator g1(5), g2(5);
  const uint64_t default_offset = default_generator().offset();
  Tensor a = empty({100}), b = empty({100}), c = empty({100});
  a.uniform_(0.0, 1.0, &g1);
  c.uniform_(0.0, 1.0, &g1);  // g1 moves on ...
  b.uniform_(0.0, 1.0, &g2);  // ... g2 does not notice
  EXPECT_EQ(b.to_vector(), a.to_vector());
  EXPECT_NE(c.to_vector(), a.to_vector());
  EXPECT_EQ(g1.offset(), 200u);
  EXPECT_EQ(g2.offset(), 100u);
  EXPECT_EQ(default_generator().offset(), default_offset);  // explicit generators leave the default alone

  g1.manual_seed(5);  // reseeding restarts the stream
  EXPECT_EQ(g1.offset(), 0u);
  Tensor again = empty({100});
  again.uniform_(0.0, 1.0, &g1);
  EXPECT_EQ(again.to_vector(), a.to_vector());
}

// Statistics of n = 100000 samples. Tolerances are 5 standard errors: for a correct generator a check fails
// with probability below 6e-7 (two-sided normal tail beyond 5 sigma), so a failure means a real bias. The
// seeds are fixed, so the tests are deterministic anyway.
constexpr int64_t kSamples = 100000;

TEST(Random, UniformRangeMeanVarianceAndHistogram) {
  const double low = -2.0, high = 3.0, width = high - low;
  const double n = static_cast<double>(kSamples);
  for (DType dtype : {kFloat32, kFloat64}) {
    SCOPED_TRACE(dtype_name(dtype));
    Generator g(7);
    Tensor t = empty({kSamples}, dtype);
    t.uniform_(low, high, &g);
    const Values v = t.to_vector();

    for (double x : v) {
      ASSERT_GE(x, low);
      ASSERT_LT(x, high);
    }
    // U(low, high): mean (low + high) / 2, variance w^2 / 12, fourth central moment w^4 / 80.
    // SE(mean) = sqrt(w^2 / 12 / n) ~ 0.0046.
    // SE(sample variance) ~ sqrt((mu4 - sigma^4) / n) = sqrt(w^4 (1/80 - 1/144) / n) = w^2 / sqrt(180 n) ~ 0.0059.
    const Moments m = moments(v);
    EXPECT_NEAR(m.mean, (low + high) / 2, 5 * std::sqrt(width * width / 12 / n));
    EXPECT_NEAR(m.variance, width * width / 12, 5 * width * width / std::sqrt(180 * n));

    // Ten equal bins: each count is Binomial(n, 0.1), SE = sqrt(n * 0.1 * 0.9) ~ 95.
    std::vector<int64_t> bins(10, 0);
    for (double x : v) ++bins[std::min<size_t>(9, static_cast<size_t>((x - low) / width * 10))];
    const double bin_se = std::sqrt(n * 0.1 * 0.9);
    for (size_t k = 0; k < bins.size(); ++k) {
      EXPECT_NEAR(static_cast<double>(bins[k]), n / 10, 5 * bin_se) << "bin " << k;
    }
  }
}

TEST(Random, NormalMeanStdAndOneSigmaMass) {
  const double mu = 3.0, sigma = 2.0;
  const double n = static_cast<double>(kSamples);
  for (DType dtype : {kFloat32, kFloat64}) {
    SCOPED_TRACE(dtype_name(dtype));
    Generator g(11);
    Tensor t = empty({kSamples}, dtype);
    t.normal_(mu, sigma, &g);
    const Values v = t.to_vector();
    for (double x : v) ASSERT_TRUE(std::isfinite(x));

    // SE(mean) = sigma / sqrt(n) ~ 0.0063; SE(sample std) ~ sigma / sqrt(2 (n - 1)) ~ 0.0045.
    const Moments m = moments(v);
    EXPECT_NEAR(m.mean, mu, 5 * sigma / std::sqrt(n));
    EXPECT_NEAR(std::sqrt(m.variance), sigma, 5 * sigma / std::sqrt(2 * (n - 1)));

    // The shape, not only two moments: P(|x - mu| < sigma) = erf(1 / sqrt 2) ~ 0.6827; the observed
    // fraction's SE is sqrt(p (1 - p) / n) ~ 0.0015.
    const double p = std::erf(1.0 / std::sqrt(2.0));
    double inside = 0;
    for (double x : v) inside += std::abs(x - mu) < sigma ? 1.0 : 0.0;
    EXPECT_NEAR(inside / n, p, 5 * std::sqrt(p * (1 - p) / n));
  }
}

TEST(Random, UniformFloat32NeverReachesHigh) {
  // With seed 1, counter 8418514 gives the largest float32 sample, u = 1 - 2^-24 (found by a search over
  // philox::generate). Scaled to [1, 2), 1 + u is halfway between the floats 2 - 2^-23 and 2, and rounding
  // it to the nearest float gives 2: the excluded upper bound.
  constexpr uint64_t kSeed = 1, kCounter = 8418514;
  ASSERT_EQ(philox::generate(kSeed, kCounter).w[0] >> 8, 0xFFFFFFu);
  Generator g(kSeed);
  g.set_offset(kCounter);
  Tensor t = empty({1}, kFloat32);
  t.uniform_(1.0, 2.0, &g);
  // Regression: the fill used to compute low + (high - low) * u in double and round it to float afterwards,
  // returning exactly `high`; uniform_ promises [low, high).
  EXPECT_LT(t.item(), 2.0);
  EXPECT_GE(t.item(), 1.0);
}

TEST(Random, Float32AndFloat64UniformFillsAgree) {
  // Both conversions take the leading bits of the same Philox word, so the float32 sample is the float64
  // one truncated to 24 bits: u differs by less than 2^-24, the value by less than 2^-23 over a range of
  // width 2, plus half a float32 ulp (2^-25) of rounding.
  Generator g32(21), g64(21);
  Tensor f = empty({10000}, kFloat32), d = empty({10000}, kFloat64);
  f.uniform_(-1.0, 1.0, &g32);
  d.uniform_(-1.0, 1.0, &g64);
  const Values vf = f.to_vector(), vd = d.to_vector();
  for (size_t i = 0; i < vf.size(); ++i) ASSERT_NEAR(vf[i], vd[i], std::ldexp(1.0, -22)) << "element " << i;
}

TEST(Random, Float32AndFloat64NormalFillsAgree) {
  // Both are Box-Muller on the same Philox words, so they should agree to float precision; the float32
  // rounding of u1 near 1 is amplified by the log, hence a relative tolerance of 1e-4.
  Generator g32(22), g64(22);
  Tensor f = empty({10000}, kFloat32), d = empty({10000}, kFloat64);
  f.normal_(0.0, 1.0, &g32);
  d.normal_(0.0, 1.0, &g64);
  const Values vf = f.to_vector(), vd = d.to_vector();
  int64_t mismatches = 0;
  for (size_t i = 0; i < vf.size(); ++i) mismatches += std::abs(vf[i] - vd[i]) > 1e-4 * std::max(1.0, std::abs(vd[i]));
  // Regression: sample_normal() used to take u2 from word 1 for float32 but from words 2 and 3 for
  // float64, so the two dtypes drew unrelated numbers from the same seed.
  EXPECT_EQ(mismatches, 0);
}

TEST(Random, UniformIntoANonContiguousTarget) {
  // A transposed target: element i in the target's row-major order gets counter offset + i.
  Generator g(31), reference(31);
  Tensor base = zeros({4, 6}, kFloat64);
  Tensor target = base.transpose(0, 1);  // [6, 4]
  target.uniform_(0.0, 1.0, &g);
  Tensor expected = empty({6, 4}, kFloat64);
  expected.uniform_(0.0, 1.0, &reference);
  EXPECT_EQ(target.to_vector(), expected.to_vector());
  EXPECT_EQ(g.offset(), 24u);
}

TEST(Random, UniformIntoASlicedTargetLeavesTheRestAlone) {
  Generator g(32), reference(32);
  Tensor base = full({3, 6}, -1.0);
  base.slice(1, 1, 6, 2).uniform_(5.0, 6.0, &g);  // columns 1, 3, 5
  Tensor expected = empty({3, 3});
  expected.uniform_(5.0, 6.0, &reference);
  const Values v = base.to_vector(), e = expected.to_vector();
  for (int r = 0; r < 3; ++r) {
    for (int c = 0; c < 6; ++c) {
      const double got = v[static_cast<size_t>(r * 6 + c)];
      if (c % 2 == 0) {
        EXPECT_EQ(got, -1.0) << r << ", " << c;
      } else {
        EXPECT_EQ(got, e[static_cast<size_t>(r * 3 + c / 2)]) << r << ", " << c;
      }
    }
  }
}

// ================================================================ CUDA: data movement

// Element counts just over 16 MiB of data: more than two 8 MiB pinned staging chunks, and not a multiple
// of any chunk or block size.
constexpr int64_t kBigFloat32 = (int64_t{16} << 20) / 4 + 123457;
constexpr int64_t kBigFloat64 = (int64_t{16} << 20) / 8 + 123457;

// Distinct, full-precision values of `dtype` (int64: large integers up to 2^60).
Tensor varied_tensor(int64_t n, DType dtype, uint64_t seed) {
  Generator g(seed);
  Tensor d = empty({n}, kFloat64);
  d.uniform_(-1.0, 1.0, &g);
  if (dtype == kInt64) return mul(d, std::ldexp(1.0, 60)).to(kInt64);
  return d.to(dtype);
}

TEST(TensorCuda, RoundTripIsExact) {
  EFFNET_REQUIRE_CUDA_OR_SKIP();
  for (DType dtype : {kFloat32, kFloat64, kInt64}) {
    for (int64_t n : {int64_t{1}, int64_t{1000}, dtype == kFloat32 ? kBigFloat32 : kBigFloat64}) {
      SCOPED_TRACE(::testing::Message() << dtype_name(dtype) << " n=" << n);
      Tensor host = varied_tensor(n, dtype, 100 + static_cast<uint64_t>(n));
      Tensor device = host.cuda();
      EXPECT_TRUE(device.is_cuda());
      EXPECT_EQ(device.device(), Device::cuda(0));
      EXPECT_EQ(device.dtype(), dtype);
      EXPECT_EQ(device.shape(), host.shape());
      Tensor back = device.cpu();
      EXPECT_EQ(back.device(), Device::cpu());
      EXPECT_TRUE(host_bytes(back) == host_bytes(host));
    }
  }
}

TEST(TensorCuda, RoundTripOfNonContiguousSources) {
  EFFNET_REQUIRE_CUDA_OR_SKIP();
  for (DType dtype : {kFloat32, kFloat64, kInt64}) {
    SCOPED_TRACE(dtype_name(dtype));
    const int64_t rows = 2003, cols = (dtype == kFloat32 ? kBigFloat32 : kBigFloat64) / rows;
    Tensor host = varied_tensor(rows * cols, dtype, 7).view({rows, cols});
    Tensor host_t = host.transpose(0, 1);
    const std::vector<unsigned char> expected = host_bytes(host_t);  // row-major bytes of the transpose

    Tensor from_view = host_t.cuda();  // CPU view -> CUDA
    EXPECT_EQ(from_view.shape(), (Shape{cols, rows}));
    EXPECT_TRUE(host_bytes(from_view) == expected);

    Tensor device_t = host.cuda().transpose(0, 1);  // CUDA view -> CPU
    EXPECT_FALSE(device_t.is_contiguous());
    EXPECT_TRUE(host_bytes(device_t.cpu()) == expected);

    Tensor stepped = host.slice(1, 1, cols, 3).cuda();  // a strided slice
    EXPECT_TRUE(host_bytes(stepped) == host_bytes(host.slice(1, 1, cols, 3)));
  }
}

TEST(TensorCuda, PinnedHostTensorsRoundTrip) {
  EFFNET_REQUIRE_CUDA_OR_SKIP();
  for (int64_t n : {int64_t{1000}, kBigFloat32}) {
    SCOPED_TRACE(n);
    TensorOptions pinned(kFloat32);
    pinned.pinned = true;
    Tensor source = empty({n}, pinned);
    ASSERT_TRUE(source.storage()->pinned());
    source.copy_(varied_tensor(n, kFloat32, 3));
    const std::vector<unsigned char> expected = host_bytes(source);

    Tensor device = source.cuda();
    Tensor back = empty({n}, pinned);
    back.copy_(device);  // device -> pinned host
    EXPECT_TRUE(host_bytes(back) == expected);
    EXPECT_TRUE(host_bytes(device.cpu()) == expected);  // device -> pageable host
  }
}

TEST(TensorCuda, PinnedSourceCanBeDroppedRightAfterTheCopy) {
  EFFNET_REQUIRE_CUDA_OR_SKIP();
  // Host to device returns once the copy is queued; dropping the pinned source at once and allocating a new
  // one of the same size must not let the next fill overwrite bytes that are still being copied.
  TensorOptions pinned(kFloat32);
  pinned.pinned = true;
  std::vector<Tensor> on_device;
  for (int k = 0; k < 4; ++k) {
    Tensor source = full({kBigFloat32}, static_cast<double>(k), pinned);
    on_device.push_back(source.cuda());
  }
  for (int k = 0; k < 4; ++k) {
    const Values v = on_device[static_cast<size_t>(k)].to_vector();
    EXPECT_EQ(std::count(v.begin(), v.end(), static_cast<double>(k)), kBigFloat32) << "copy " << k;
  }
}

TEST(TensorCuda, CopyFromCudaIntoANonContiguousCpuDestination) {
  EFFNET_REQUIRE_CUDA_OR_SKIP();
  Tensor base = zeros({4, 6}, kFloat64);
  Tensor source = from_vector(iota_values(24), {6, 4}, TensorOptions(kFloat64, Device::cuda()));
  base.transpose(0, 1).copy_(source);
  EXPECT_EQ(base.transpose(0, 1).to_vector(), iota_values(24));
  EXPECT_EQ(base.select(0, 1).to_vector(), (Values{1, 5, 9, 13, 17, 21}));
}

TEST(TensorCuda, CopyFromCpuIntoANonContiguousCudaDestinationBroadcastsAndCasts) {
  EFFNET_REQUIRE_CUDA_OR_SKIP();
  Tensor base = zeros({3, 8}, TensorOptions(kFloat32, Device::cuda()));
  base.slice(1, 1, 8, 2).copy_(from_vector({1, 2, 3, 4}, {4}, kFloat64));  // [4] float64 -> [3, 4] float32 view
  EXPECT_TRUE(base.is_cuda());
  const Values row{0, 1, 0, 2, 0, 3, 0, 4};
  Values expected;
  for (int r = 0; r < 3; ++r) expected.insert(expected.end(), row.begin(), row.end());
  EXPECT_EQ(base.to_vector(), expected);

  Tensor ints = zeros({2, 3}, TensorOptions(kInt64, Device::cuda()));
  ints.transpose(0, 1).copy_(from_vector({1.9, -1.9, 2.5, -2.5, 3.1, -3.1}, {3, 2}, kFloat32));
  EXPECT_EQ(ints.to_vector(), (Values{1, 2, 3, -1, -2, -3}));
}

TEST(TensorCuda, LargeCopyIntoANonContiguousCudaDestination) {
  EFFNET_REQUIRE_CUDA_OR_SKIP();
  const int64_t rows = 4099, cols = kBigFloat64 / rows;
  Tensor host = varied_tensor(rows * cols, kFloat64, 17).view({cols, rows});
  Tensor device = empty({rows, cols}, TensorOptions(kFloat64, Device::cuda()));
  device.transpose(0, 1).copy_(host);
  EXPECT_TRUE(host_bytes(device.transpose(0, 1)) == host_bytes(host));
}

// ================================================================ CUDA: random fills match the CPU's

TEST(RandomCuda, UniformMatchesCpuBitForBit) {
  EFFNET_REQUIRE_CUDA_OR_SKIP();
  for (DType dtype : {kFloat32, kFloat64}) {
    SCOPED_TRACE(dtype_name(dtype));
    Generator g_cpu(77), g_gpu(77);
    for (int fill = 0; fill < 2; ++fill) {  // the second fill starts at a non-zero offset
      Tensor cpu = empty({1000003}, dtype);
      Tensor gpu = empty({1000003}, TensorOptions(dtype, Device::cuda()));
      cpu.uniform_(-1.5, 2.5, &g_cpu);
      gpu.uniform_(-1.5, 2.5, &g_gpu);
      EXPECT_TRUE(host_bytes(gpu) == host_bytes(cpu)) << "fill " << fill;
    }
    EXPECT_EQ(g_gpu.offset(), g_cpu.offset());
  }
}

TEST(RandomCuda, UniformIntoNonContiguousCudaTargetMatchesCpu) {
  EFFNET_REQUIRE_CUDA_OR_SKIP();
  Generator g_cpu(78), g_gpu(78);
  Tensor cpu = zeros({300, 500});
  Tensor gpu = zeros({300, 500}, TensorOptions(kFloat32, Device::cuda()));
  cpu.transpose(0, 1).slice(0, 0, 500, 3).uniform_(0.0, 1.0, &g_cpu);
  gpu.transpose(0, 1).slice(0, 0, 500, 3).uniform_(0.0, 1.0, &g_gpu);
  EXPECT_TRUE(host_bytes(gpu) == host_bytes(cpu));
}

// One unit in the last place of `x` stored as `dtype`.
double ulp(double x, DType dtype) {
  if (dtype == kFloat32) {
    const float f = static_cast<float>(std::abs(x));
    return static_cast<double>(std::nextafter(f, std::numeric_limits<float>::infinity()) - f);
  }
  return std::nextafter(std::abs(x), std::numeric_limits<double>::infinity()) - std::abs(x);
}

TEST(RandomCuda, NormalMatchesCpu) {
  EFFNET_REQUIRE_CUDA_OR_SKIP();
  // The two sides evaluate log, cos and sqrt with different libm implementations (a few ulps apart), so
  // the standard normal sample z agrees to 1e-6 relative. A value is mean + std * z rounded to the dtype:
  // the tolerance is 1e-6 of std * |z| (relative error of z; measuring it relative to the value itself
  // would be wrong where mean + std * z cancels) plus one ulp of the value for the final rounding.
  struct Params {
    double mean, std;
  };
  for (DType dtype : {kFloat32, kFloat64}) {
    for (Params p : {Params{0.0, 1.0}, Params{0.5, 2.0}}) {
      SCOPED_TRACE(::testing::Message() << dtype_name(dtype) << " mean " << p.mean << " std " << p.std);
      Generator g_cpu(79), g_gpu(79);
      Tensor cpu = empty({1000003}, dtype);
      Tensor gpu = empty({1000003}, TensorOptions(dtype, Device::cuda()));
      cpu.normal_(p.mean, p.std, &g_cpu);
      gpu.normal_(p.mean, p.std, &g_gpu);
      const Values vc = cpu.to_vector(), vg = gpu.to_vector();
      int64_t bad = 0;
      for (size_t i = 0; i < vc.size(); ++i) {
        const double tolerance = 1e-6 * std::abs(vc[i] - p.mean) + ulp(vc[i], dtype);
        if (std::abs(vg[i] - vc[i]) > tolerance && ++bad <= 5) {
          ADD_FAILURE() << "element " << i << ": cpu " << vc[i] << " cuda " << vg[i];
        }
      }
      EXPECT_EQ(bad, 0);
    }
  }
}

TEST(RandomCuda, DefaultGeneratorMatchesCpu) {
  EFFNET_REQUIRE_CUDA_OR_SKIP();
  manual_seed(2024);
  const std::vector<unsigned char> cpu = host_bytes(rand({4097}));
  manual_seed(2024);
  Tensor gpu = rand({4097}, Device::cuda());
  EXPECT_TRUE(gpu.is_cuda());
  EXPECT_TRUE(host_bytes(gpu) == cpu);
}

// IntDivider (the CUDA batch-norm kernels' channel lookup) against the / operator: every divisor up to 1000
// and many around powers of two and at the top of the range, each with dividends at the edges and spread over
// the whole 32-bit range.
TEST(IntDivider, EqualsIntegerDivision) {
  std::vector<uint32_t> divisors;
  for (uint32_t d = 1; d <= 1000; ++d) divisors.push_back(d);
  for (int bit = 10; bit < 32; ++bit) {
    for (int64_t delta = -2; delta <= 2; ++delta) divisors.push_back(static_cast<uint32_t>((int64_t{1} << bit) + delta));
  }
  for (uint32_t d : {36100u, 12544u, 1632u, 2688u, 0x7FFFFFFFu, 0xFFFFFFFEu, 0xFFFFFFFFu}) divisors.push_back(d);
  int64_t wrong = 0;
  for (uint32_t d : divisors) {
    const IntDivider divider(d);
    std::vector<uint32_t> dividends{0, 1, d - 1, d, d + 1, 2 * d - 1, 0x7FFFFFFFu, 0x80000000u, 0xFFFFFFFEu, 0xFFFFFFFFu};
    for (uint64_t k = 0; k < 50; ++k) {
      for (uint32_t w : philox::generate(d, k).w) dividends.push_back(w);
    }
    for (uint32_t n : dividends) {
      if (divider.divide(n) != n / d || divider.remainder(n) != n % d) {
        if (++wrong <= 5) ADD_FAILURE() << n << " / " << d << ": " << divider.divide(n);
      }
    }
  }
  EXPECT_EQ(wrong, 0);
}

}  // namespace
}  // namespace effnet
