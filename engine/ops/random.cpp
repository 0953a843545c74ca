// Random ops on the counter-based generator: each call takes a fresh block of draws.
#include <algorithm>
#include <numeric>

#include "engine/ops/op_helpers.h"
#include "engine/ops/ops.h"

namespace engine {

using namespace ops_detail;

namespace {
Tensor random_tensor(RandomKind kind, const Shape& shape, Generator& gen, double a, double b,
                     DType dtype, Device device) {
  Tensor out = Tensor::empty(shape, dtype, device);
  backend_of(out).random(kind, out.view(), gen.take(out.numel(), a, b));
  return out;
}
}  // namespace

Tensor rand(const Shape& shape, Generator& gen, double low, double high, DType dtype,
            Device device) {
  ENGINE_CHECK(low < high, "rand: low (", low, ") must be below high (", high, ")");
  return random_tensor(RandomKind::Uniform, shape, gen, low, high, dtype, device);
}

Tensor randn(const Shape& shape, Generator& gen, double mean, double std, DType dtype,
             Device device) {
  ENGINE_CHECK(std >= 0, "randn: std must be non-negative, got ", std);
  return random_tensor(RandomKind::Normal, shape, gen, mean, std, dtype, device);
}

Tensor randint(int64_t low, int64_t high, const Shape& shape, Generator& gen, Device device) {
  ENGINE_CHECK(low < high, "randint: low (", low, ") must be below high (", high, ")");
  return random_tensor(RandomKind::Integer, shape, gen, static_cast<double>(low),
                       static_cast<double>(high), DType::I64, device);
}

// The permutation that sorts n uniform keys (stable, so ties, if any, keep index order).
Tensor randperm(int64_t n, Generator& gen, Device device) {
  ENGINE_CHECK(n >= 0, "randperm: n must be non-negative, got ", n);
  const std::vector<double> keys =
      random_tensor(RandomKind::Uniform, {n}, gen, 0.0, 1.0, DType::F64, Device::cpu())
          .to_vector<double>();
  std::vector<int64_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](int64_t a, int64_t b) { return keys[a] < keys[b]; });
  return from_vector(order, {n}, device);
}

}  // namespace engine
