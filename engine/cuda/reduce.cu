// CUDA reductions over the trailing dimensions of a contiguous input (sum, max, min, argmax) and
// the squared norm of a list of tensors. Each row is cut into chunks of kReduceChunk elements;
// one warp reduces a chunk (lanes in a fixed stride order, then a shuffle butterfly), and a
// second pass reduces each row's chunk results in order. The order depends only on the shape,
// so results are deterministic. Sums of floating types run in double and of integers in i64, as
// on the CPU; max / min / argmax keep the first extreme with NaN as the extreme, so they equal
// the CPU's bit for bit.
#include "engine/cuda/cuda_kernels.cuh"
#include "engine/kernels/dispatch.h"

namespace engine::cuda {

namespace {

constexpr int64_t kReduceChunk = 4096;

template <typename T>
struct SumOp {
  using State = std::conditional_t<std::is_floating_point_v<T>, double, int64_t>;
  __device__ State identity() const { return 0; }
  __device__ State lift(T v, int64_t) const { return static_cast<State>(v); }
  __device__ State combine(State a, State b) const { return a + b; }
  __device__ void write(void* out, int64_t row, State s) const {
    static_cast<T*>(out)[row] = static_cast<T>(s);
  }
};

// Max, Min or ArgMax over (value, index) pairs: NaN beats numbers, a better value beats a worse
// one, and ties go to the lower index. That is commutative and associative, so any reduction
// tree gives the CPU loop's answer: the first NaN, else the first extreme.
template <typename T>
struct PickOp {
  using State = Pick<T>;
  ReduceOp op;
  __device__ State identity() const { return State{T(0), -1}; }
  __device__ State lift(T v, int64_t i) const { return State{v, i}; }
  __device__ State combine(const State& a, const State& b) const {
    if (a.index < 0) return b;
    if (b.index < 0) return a;
    const bool a_nan = a.value != a.value, b_nan = b.value != b.value;
    if (a_nan != b_nan) return a_nan ? a : b;
    if (!a_nan) {
      const bool a_better = op == ReduceOp::Min ? a.value < b.value : a.value > b.value;
      const bool b_better = op == ReduceOp::Min ? b.value < a.value : b.value > a.value;
      if (a_better) return a;
      if (b_better) return b;
    }
    return a.index < b.index ? a : b;
  }
  __device__ void write(void* out, int64_t row, const State& s) const {
    if (op == ReduceOp::ArgMax)
      static_cast<int64_t*>(out)[row] = s.index;
    else
      static_cast<T*>(out)[row] = s.value;
  }
};

// One warp per item = (row, chunk) of a (rows, width) input. kFromPartials: `in` holds the
// states of an earlier pass. With one chunk per row the result is written to `out`, otherwise
// the chunk's state to partial[item].
template <bool kFromPartials, typename R, typename In>
__global__ void reduce_rows_kernel(R r, const In* in, int64_t rows, int64_t width, int64_t chunks,
                                   int64_t chunk_len, typename R::State* partial, void* out) {
  using S = typename R::State;
  using Group = RowGroup<kWarp>;
  const auto combine = [&r](const S& a, const S& b) { return r.combine(a, b); };
  const int64_t items = rows * chunks;
  for (int64_t item = Group::first_row(); item < items; item += Group::row_step()) {
    const int64_t row = item / chunks, begin = (item % chunks) * chunk_len;
    const int64_t end = begin + chunk_len < width ? begin + chunk_len : width;
    const In* line = in + row * width;
    S s = r.identity();
    for (int64_t i = begin + Group::lane(); i < end; i += kWarp) {
      if constexpr (kFromPartials)
        s = r.combine(s, line[i]);
      else
        s = r.combine(s, r.lift(line[i], i));
    }
    s = group_allreduce<kWarp>(s, combine, static_cast<S*>(nullptr));
    if (Group::lane() == 0) {
      if (chunks == 1)
        r.write(out, row, s);
      else
        partial[item] = s;
    }
  }
}

// Reduces each row of a contiguous (rows, width) input into out[row] (width > 0).
template <typename R, typename T>
void reduce_rows(Backend& backend, const R& r, const T* in, void* out, int64_t rows,
                 int64_t width) {
  using S = typename R::State;
  const int64_t chunks = (width + kReduceChunk - 1) / kReduceChunk;
  if (chunks == 1) {
    reduce_rows_kernel<false><<<RowGroup<kWarp>::grid(rows), kThreads>>>(
        r, in, rows, width, 1, width, static_cast<S*>(nullptr), out);
    CUDA_CHECK_LAUNCH();
    return;
  }
  DataPtr partial = backend.allocate(rows * chunks * sizeof(S));  // (rows, chunks)
  S* states = static_cast<S*>(partial.get());
  reduce_rows_kernel<false><<<RowGroup<kWarp>::grid(rows * chunks), kThreads>>>(
      r, in, rows, width, chunks, kReduceChunk, states, nullptr);
  CUDA_CHECK_LAUNCH();
  reduce_rows_kernel<true><<<RowGroup<kWarp>::grid(rows), kThreads>>>(
      r, states, rows, chunks, 1, chunks, static_cast<S*>(nullptr), out);
  CUDA_CHECK_LAUNCH();
}

// partial[c] = sum of squares of chunk c, one block per chunk.
template <typename T>
__global__ void squared_norm_kernel(const Chunk<const T, 1>* chunks, int64_t count,
                                    double* partial) {
  __shared__ double shared[kThreads / kWarp];
  for (int64_t c = blockIdx.x; c < count; c += gridDim.x) {  // uniform over the block
    const Chunk<const T, 1> chunk = chunks[c];
    double acc = 0;
    for (int64_t i = threadIdx.x; i < chunk.length; i += blockDim.x) {
      const double v = chunk.ptr[0][i];
      acc += v * v;
    }
    acc = group_allreduce<kThreads>(acc, Plus{}, shared);
    if (threadIdx.x == 0) partial[c] = acc;
  }
}

}  // namespace

void CudaBackend::reduce(ReduceOp op, const View& out, const View& in, int reduced_dims) {
  activate();
  ENGINE_CHECK(in.is_contiguous(), "reduce: input must be contiguous");
  int64_t width = 1;
  for (size_t d = in.shape.size() - reduced_dims; d < in.shape.size(); ++d) width *= in.shape[d];
  const int64_t rows = out.numel();
  if (rows == 0) return;
  dispatch_numeric(in.dtype, "reduce", [&](auto tag) {
    using T = decltype(tag);
    if (width == 0) {
      ENGINE_CHECK(op == ReduceOp::Sum, "reduce: max/min/argmax of an empty dimension");
      fill(out, 0.0);
      return;
    }
    if (op == ReduceOp::Sum)
      reduce_rows(*this, SumOp<T>{}, in.ptr<T>(), out.data, rows, width);
    else
      reduce_rows(*this, PickOp<T>{op}, in.ptr<T>(), out.data, rows, width);
  });
}

double CudaBackend::squared_norm(const std::vector<View>& tensors) {
  activate();
  // Chunk tables per dtype, their partial sums side by side in one buffer, then one ordered
  // sum of all partials and one copy to the host.
  std::vector<Chunk<const float, 1>> f32;
  std::vector<Chunk<const double, 1>> f64;
  for (const View& t : tensors) {
    ENGINE_CHECK(t.is_contiguous(), "squared_norm: tensors must be contiguous, got shape ",
                 shape_str(t.shape), " with strides ", shape_str(t.strides));
    dispatch_floating(t.dtype, "squared_norm", [&](auto tag) {
      using T = decltype(tag);
      const std::vector<Chunk<const T, 1>> chunks =
          make_chunks<const T, 1>({{t.ptr<const T>()}}, {t.numel()});
      if constexpr (std::is_same_v<T, float>)
        f32.insert(f32.end(), chunks.begin(), chunks.end());
      else
        f64.insert(f64.end(), chunks.begin(), chunks.end());
    });
  }
  const int64_t total = static_cast<int64_t>(f32.size() + f64.size());
  if (total == 0) return 0.0;
  DataPtr partial = allocate(total * sizeof(double));  // (total chunks)
  double* partials = static_cast<double*>(partial.get());
  auto launch = [&](const auto& chunks, double* into) {
    if (chunks.empty()) return;
    const DataPtr table = upload(*this, chunks);
    using C = typename std::decay_t<decltype(chunks)>::value_type;
    squared_norm_kernel<<<grid_for(chunks.size(), 1), kThreads>>>(
        static_cast<const C*>(table.get()), static_cast<int64_t>(chunks.size()), into);
    CUDA_CHECK_LAUNCH();
  };
  launch(f32, partials);
  launch(f64, partials + f32.size());
  DataPtr result = allocate(sizeof(double));
  reduce_rows(*this, SumOp<double>{}, partials, result.get(), 1, total);
  double host = 0;
  CUDA_CHECK(cudaMemcpy(&host, result.get(), sizeof(double), cudaMemcpyDeviceToHost));
  return host;
}

}  // namespace engine::cuda
