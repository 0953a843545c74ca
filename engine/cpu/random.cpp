// CPU random fills: element i of the output is drawn from Philox counter (offset + i) of the
// (seed, stream) pair, so the values are the same for any thread count (and on CUDA).
#include <cmath>

#include "engine/core/threading.h"
#include "engine/cpu/cpu_backend.h"
#include "engine/kernels/dispatch.h"
#include "engine/random/philox.h"

namespace engine::cpu {

void CpuBackend::random(RandomKind kind, const View& out, const RandomParams& params) {
  ENGINE_CHECK(out.is_contiguous(), "random: output must be contiguous");
  auto fill_with = [&](auto tag, auto draw) {
    using T = decltype(tag);
    T* data = out.ptr<T>();
    parallel_for(out.numel(), 4096, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i)
        data[i] = draw(philox_draw(params.seed, params.stream, params.offset + i));
    });
  };
  if (kind == RandomKind::Integer) {
    ENGINE_CHECK(out.dtype == DType::I64, "random: integers are drawn as i64");
    const uint64_t range = static_cast<uint64_t>(params.b - params.a);
    const int64_t low = static_cast<int64_t>(params.a);
    fill_with(int64_t{},
              [=](const Philox4& r) { return low + static_cast<int64_t>(philox_below(r, range)); });
    return;
  }
  dispatch_floating(out.dtype, "random", [&](auto tag) {
    using T = decltype(tag);
    const double a = params.a, b = params.b;
    if (kind == RandomKind::Normal) {
      fill_with(T{}, [=](const Philox4& r) { return static_cast<T>(a + b * philox_normal(r)); });
    } else {
      const T below_high = std::nextafter(static_cast<T>(b), static_cast<T>(a));
      fill_with(T{}, [=](const Philox4& r) {
        const T v = static_cast<T>(a + (b - a) * philox_uniform(r));
        return v < static_cast<T>(b) ? v : below_high;  // rounding must not reach b
      });
    }
  });
}

}  // namespace engine::cpu
