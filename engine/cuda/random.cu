// CUDA random fills: element i is drawn from Philox counter (offset + i) of (seed, stream) with
// the functions of engine/random/philox.h, exactly as on the CPU (engine/cpu/random.cpp).
// Uniform and integer draws are bitwise equal to the CPU's (the affine map is rounded step by
// step, never fused); normal draws go through the device's log / cos and may differ from the
// CPU's in the last bit.
#include "engine/cuda/cuda_kernels.cuh"
#include "engine/kernels/dispatch.h"
#include "engine/random/philox.h"

namespace engine::cuda {

namespace {

// a + scale * u with a separately rounded product (no fused multiply-add, as on the CPU).
__device__ __forceinline__ double affine(double a, double scale, double u) {
  return __dadd_rn(a, __dmul_rn(scale, u));
}

template <typename T>
struct UniformDraw {
  double a, b;
  T below_high;  // the largest T below b: rounding must not reach b
  __device__ T operator()(const Philox4& r) const {
    const T v = static_cast<T>(affine(a, b - a, philox_uniform(r)));
    return v < static_cast<T>(b) ? v : below_high;
  }
};

template <typename T>
struct NormalDraw {
  double mean, std;
  __device__ T operator()(const Philox4& r) const {
    return static_cast<T>(affine(mean, std, philox_normal(r)));
  }
};

struct IntegerDraw {
  int64_t low;
  uint64_t range;
  __device__ int64_t operator()(const Philox4& r) const {
    return low + static_cast<int64_t>(philox_below(r, range));
  }
};

template <typename T, typename Draw>
__global__ void random_kernel(T* out, int64_t n, RandomParams params, Draw draw) {
  for (int64_t i = global_thread(); i < n; i += grid_threads())
    out[i] =
        draw(philox_draw(params.seed, params.stream, params.offset + static_cast<uint64_t>(i)));
}

}  // namespace

void CudaBackend::random(RandomKind kind, const View& out, const RandomParams& params) {
  activate();
  ENGINE_CHECK(out.is_contiguous(), "random: output must be contiguous");
  const int64_t n = out.numel();
  auto fill_with = [&](auto* data, const auto& draw) {
    if (n == 0) return;
    random_kernel<<<grid_for(n), kThreads>>>(data, n, params, draw);
    CUDA_CHECK_LAUNCH();
  };
  if (kind == RandomKind::Integer) {
    ENGINE_CHECK(out.dtype == DType::I64, "random: integers are drawn as i64");
    fill_with(out.ptr<int64_t>(), IntegerDraw{static_cast<int64_t>(params.a),
                                              static_cast<uint64_t>(params.b - params.a)});
    return;
  }
  dispatch_floating(out.dtype, "random", [&](auto tag) {
    using T = decltype(tag);
    if (kind == RandomKind::Normal) {
      fill_with(out.ptr<T>(), NormalDraw<T>{params.a, params.b});
    } else {
      const T below_high = std::nextafter(static_cast<T>(params.b), static_cast<T>(params.a));
      fill_with(out.ptr<T>(), UniformDraw<T>{params.a, params.b, below_high});
    }
  });
}

}  // namespace engine::cuda
