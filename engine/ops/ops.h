// Every tensor op, declared once. Each op checks its inputs (errors name the op, shapes and
// dtypes), runs the device's kernels, and records its backward when an input requires grad.
// Implementations live in engine/ops/<group>.cpp, one file per group below.
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

#include "engine/autograd/autograd.h"
#include "engine/autograd/grad_mode.h"
#include "engine/core/tensor.h"
#include "engine/random/generator.h"

namespace engine {

// --- creation (creation.cpp) ---
Tensor zeros(const Shape& shape, DType dtype = DType::F32, Device device = Device::cpu());
Tensor ones(const Shape& shape, DType dtype = DType::F32, Device device = Device::cpu());
Tensor full(const Shape& shape, double value, DType dtype = DType::F32,
            Device device = Device::cpu());
Tensor zeros_like(const Tensor& like);
Tensor ones_like(const Tensor& like);
Tensor full_like(const Tensor& like, double value);
Tensor scalar_tensor(double value, DType dtype = DType::F32, Device device = Device::cpu());
// [start, end) in steps of `step`; the count is ceil((end - start) / step).
Tensor arange(double start, double end, double step = 1.0, DType dtype = DType::I64,
              Device device = Device::cpu());
Tensor arange(int64_t end, DType dtype = DType::I64, Device device = Device::cpu());
// A tensor holding `values` (row-major) with the given shape.
template <typename T>
Tensor from_vector(const std::vector<T>& values, const Shape& shape, Device device = Device::cpu());

// --- random (random.cpp); counter-based, so reproducible across runs and thread counts ---
Tensor rand(const Shape& shape, Generator& gen, double low = 0.0, double high = 1.0,
            DType dtype = DType::F32, Device device = Device::cpu());
Tensor randn(const Shape& shape, Generator& gen, double mean = 0.0, double std = 1.0,
             DType dtype = DType::F32, Device device = Device::cpu());
Tensor randint(int64_t low, int64_t high, const Shape& shape, Generator& gen,
               Device device = Device::cpu());                              // i64 in [low, high)
Tensor randperm(int64_t n, Generator& gen, Device device = Device::cpu());  // i64

// --- views: share storage, no copy (view.cpp) ---
Tensor reshape(const Tensor& x,
               Shape shape);  // one -1 allowed; copies only if strides forbid a view
Tensor view_as_shape(const Tensor& x, Shape shape);  // like reshape, but throws instead of copying
Tensor permute(const Tensor& x, const Shape& dims);
Tensor transpose(const Tensor& x, int64_t dim0, int64_t dim1);
Tensor slice(const Tensor& x, int64_t dim, int64_t start, int64_t end, int64_t step = 1);
Tensor narrow(const Tensor& x, int64_t dim, int64_t start, int64_t length);
Tensor select(const Tensor& x, int64_t dim, int64_t index);  // removes `dim`
Tensor expand(const Tensor& x, const Shape& shape);          // -1 keeps a size
Tensor unsqueeze(const Tensor& x, int64_t dim);
Tensor squeeze(const Tensor& x, int64_t dim);
Tensor flatten(const Tensor& x, int64_t start_dim = 0, int64_t end_dim = -1);
Tensor contiguous(const Tensor& x);
std::vector<Tensor> chunk(const Tensor& x, int64_t chunks, int64_t dim);

// --- copies and conversions (convert.cpp) ---
Tensor clone(const Tensor& x);
Tensor to_dtype(const Tensor& x, DType dtype);     // differentiable between float dtypes
Tensor to_device(const Tensor& x, Device device);  // differentiable

// --- joining (join.cpp) ---
Tensor cat(const std::vector<Tensor>& tensors, int64_t dim);
Tensor stack(const std::vector<Tensor>& tensors, int64_t dim);

// --- indexing (index.cpp); indices are i64 ---
Tensor index_select(const Tensor& x, int64_t dim, const Tensor& index);
Tensor gather(const Tensor& x, int64_t dim, const Tensor& index);
// x with src added at `index` along `dim` (out of place).
Tensor scatter_add(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& src);
Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b);  // cond: bool, broadcast
Tensor masked_fill(const Tensor& x, const Tensor& mask, double value);

// --- elementwise with broadcasting (elementwise.cpp) ---
Tensor add(const Tensor& a, const Tensor& b);
Tensor sub(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, const Tensor& b);
Tensor div(const Tensor& a, const Tensor& b);
Tensor pow(const Tensor& a, const Tensor& b);
Tensor maximum(const Tensor& a, const Tensor& b);
Tensor minimum(const Tensor& a, const Tensor& b);
// Integer remainder with the sign of the divisor (Python's %); no gradient. Divisors must be
// non-zero.
Tensor remainder(const Tensor& a, const Tensor& b);
Tensor add(const Tensor& a, double b);
Tensor mul(const Tensor& a, double b);
Tensor pow(const Tensor& a, double exponent);
Tensor neg(const Tensor& x);
Tensor abs(const Tensor& x);
Tensor exp(const Tensor& x);
Tensor log(const Tensor& x);
Tensor sqrt(const Tensor& x);
Tensor rsqrt(const Tensor& x);
Tensor sigmoid(const Tensor& x);
Tensor tanh(const Tensor& x);
Tensor relu(const Tensor& x);
Tensor quick_gelu(const Tensor& x);  // x * sigmoid(1.702 x)
Tensor gelu(const Tensor& x);        // exact, erf-based
Tensor clamp(const Tensor& x, double low, double high);
Tensor clamp_min(const Tensor& x, double low);
// Comparisons and logic produce bool tensors and carry no gradient.
Tensor eq(const Tensor& a, const Tensor& b);
Tensor ne(const Tensor& a, const Tensor& b);
Tensor lt(const Tensor& a, const Tensor& b);
Tensor le(const Tensor& a, const Tensor& b);
Tensor gt(const Tensor& a, const Tensor& b);
Tensor ge(const Tensor& a, const Tensor& b);
Tensor eq(const Tensor& a, double b);
Tensor gt(const Tensor& a, double b);
Tensor lt(const Tensor& a, double b);
Tensor logical_and(const Tensor& a, const Tensor& b);
Tensor logical_or(const Tensor& a, const Tensor& b);
Tensor logical_not(const Tensor& a);

Tensor operator+(const Tensor& a, const Tensor& b);
Tensor operator-(const Tensor& a, const Tensor& b);
Tensor operator*(const Tensor& a, const Tensor& b);
Tensor operator/(const Tensor& a, const Tensor& b);
Tensor operator-(const Tensor& x);
Tensor operator+(const Tensor& a, double b);
Tensor operator+(double a, const Tensor& b);
Tensor operator-(const Tensor& a, double b);
Tensor operator-(double a, const Tensor& b);
Tensor operator*(const Tensor& a, double b);
Tensor operator*(double a, const Tensor& b);
Tensor operator/(const Tensor& a, double b);

// --- reductions (reduce.cpp); empty dims = all dims ---
Tensor sum(const Tensor& x, const Shape& dims = {}, bool keepdim = false);
Tensor mean(const Tensor& x, const Shape& dims = {}, bool keepdim = false);
Tensor amax(const Tensor& x, const Shape& dims = {}, bool keepdim = false);
Tensor amin(const Tensor& x, const Shape& dims = {}, bool keepdim = false);
// The smallest and largest value of a non-empty integer tensor, read back in one transfer (for
// range checks of indices and labels).
std::pair<int64_t, int64_t> integer_range(const Tensor& x);
Tensor argmax(const Tensor& x, int64_t dim, bool keepdim = false);           // i64, first maximum
Tensor norm(const Tensor& x, const Shape& dims = {}, bool keepdim = false);  // L2
// Sums a broadcast result back to `shape` (the backward of broadcasting).
Tensor sum_to(const Tensor& x, const Shape& shape);

// --- linear algebra (linalg.cpp) ---
// (..., M, K) @ (..., K, N) with broadcast batch dims; 1-D operands as in NumPy.
Tensor matmul(const Tensor& a, const Tensor& b);
// x (..., in) @ weight(out, in)^T + bias(out); bias may be undefined.
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias);

// --- neural-network ops (nn_ops.cpp) ---
Tensor softmax(const Tensor& x, int64_t dim);
Tensor log_softmax(const Tensor& x, int64_t dim);
// Normalises over the last dimension; weight/bias (C) may be undefined. Saves mean and rstd.
Tensor layer_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, double eps = 1e-5);
// Convolution whose stride equals its kernel and has no padding (a ViT patch embedding):
// x (N, C, H, W), weight (D, C, P, P), bias (D) or undefined -> (N, D, H/P, W/P).
Tensor conv2d_patch(const Tensor& x, const Tensor& weight, const Tensor& bias);

// --- losses (loss.cpp); all return the mean over the batch as a 0-d tensor ---
// logits (N, C), target i64 (N).
Tensor cross_entropy(const Tensor& logits, const Tensor& target, double label_smoothing = 0.0);
Tensor mse_loss(const Tensor& input, const Tensor& target);
// T^2 * KL(softmax(teacher / T) || softmax(student / T)), summed over classes, mean over rows.
Tensor kl_div_with_temperature(const Tensor& student_logits, const Tensor& teacher_logits,
                               double temperature);
// x / max(||x||_2 over dim, eps)
Tensor l2_normalize(const Tensor& x, int64_t dim = -1, double eps = 1e-12);

// --- in-place updates (inplace.cpp); refused on tensors that require grad while grad mode is
// on, and they bump the storage version so saved tensors detect the change ---
Tensor& fill_(Tensor& x, double value);
Tensor& zero_(Tensor& x);
Tensor& copy_(Tensor& dst, const Tensor& src);                 // src broadcast to dst
Tensor& add_(Tensor& x, const Tensor& y, double alpha = 1.0);  // x += alpha * y
Tensor& mul_(Tensor& x, double factor);

}  // namespace engine

#include "engine/ops/from_vector.h"
