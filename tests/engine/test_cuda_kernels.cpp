// CUDA kernels against the CPU kernels where the op tests' small shapes do not reach: the warp
// and block paths and the two-pass reductions (long rows), NaN and ties in max / min / argmax,
// softmax of -inf rows, LayerNorm's weight and bias gradients over many row blocks, scatter_add
// with duplicate indices, broadcast indices, random draws (bitwise equal to the CPU's for uniform
// and integer draws and randperm), the multi-tensor AdamW (bitwise) and squared norm.
#include <cmath>
#include <cstring>
#include <limits>

#include "test_cuda_util.h"

namespace {

using namespace engine;
using CudaKernels = cuda_test::CudaTest;

const Device cpu = Device::cpu();

// The raw bytes of a tensor's values (row-major, on the host), so NaNs, signed zeros and the
// last bits compare exactly.
std::vector<unsigned char> bits_of(const Tensor& t) {
  const Tensor host = t.to(Device::cpu()).contiguous();
  std::vector<unsigned char> bytes(host.numel() * dtype_size(host.dtype()));
  if (!bytes.empty()) std::memcpy(bytes.data(), host.raw_data(), bytes.size());
  return bytes;
}

std::vector<View> views_of(const std::vector<Tensor>& tensors) {
  std::vector<View> views;
  for (const Tensor& t : tensors) views.push_back(t.view());
  return views;
}

TEST_F(CudaKernels, ReductionsMatchTheCpuInEveryShapeAndDtype) {
  Generator gen(4);
  // Short rows (one chunk), long rows (two passes), many short rows, one huge row.
  for (const Shape& shape :
       {Shape{3, 5}, Shape{7, 5000}, Shape{2, 100003}, Shape{40000, 3}, Shape{1, 300000}}) {
    const Tensor x = randn(shape, gen), g = x.to(gpu);
    const std::string where = shape_str(shape);
    EXPECT_ALL_CLOSE(sum(g, {1}), sum(x, {1}), 1e-6, 1e-6) << where;
    EXPECT_ALL_CLOSE(sum(g, {0}), sum(x, {0}), 1e-6, 1e-6) << where;
    EXPECT_ALL_CLOSE(sum(g), sum(x), 1e-6, 1e-6) << where;
    EXPECT_EQ(bits_of(amax(g, {1})), bits_of(amax(x, {1}))) << where;
    EXPECT_EQ(bits_of(amin(g, {0})), bits_of(amin(x, {0}))) << where;
    EXPECT_EQ(argmax(g, 1).to_vector<int64_t>(), argmax(x, 1).to_vector<int64_t>()) << where;
    const Tensor x64 = x.to(DType::F64);
    EXPECT_ALL_CLOSE(sum(x64.to(gpu), {1}), sum(x64, {1}), 1e-12, 1e-12) << where;
    const Tensor ints = randint(-1000, 1000, shape, gen);
    EXPECT_EQ(sum(ints.to(gpu), {1}).to_vector<int64_t>(), sum(ints, {1}).to_vector<int64_t>())
        << where;
    EXPECT_EQ(amax(ints.to(DType::I32).to(gpu)).to_vector<int32_t>(),
              amax(ints.to(DType::I32)).to_vector<int32_t>());
    EXPECT_EQ(argmax(ints.to(gpu), 0).to_vector<int64_t>(), argmax(ints, 0).to_vector<int64_t>())
        << where;
  }
}

TEST_F(CudaKernels, MaxMinArgmaxKeepTheFirstExtremeAndPropagateNan) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  // Ties, NaN after a larger value, signed zeros (the first of equal values wins).
  const Tensor x =
      from_vector<float>({1, 3, 3, 2, /**/ 9, nan, 5, nan, /**/ -0.0f, 0.0f, -1, -2}, {3, 4});
  EXPECT_EQ(argmax(x.to(gpu), 1).to_vector<int64_t>(), std::vector<int64_t>({1, 1, 0}));
  EXPECT_EQ(bits_of(amax(x.to(gpu), {1})), bits_of(amax(x, {1})));
  EXPECT_EQ(bits_of(amin(x.to(gpu), {1})), bits_of(amin(x, {1})));
  EXPECT_TRUE(std::signbit(amax(x.to(gpu), {1}).to_vector<float>()[2]));
  // The same in a long row that takes two passes: the first NaN (index 7000) wins.
  std::vector<float> row(10000, 0.0f);
  row[100] = row[200] = 5.0f;
  row[7000] = row[9000] = nan;
  const Tensor long_row = from_vector(row, {1, 10000});
  EXPECT_EQ(argmax(long_row.to(gpu), 1).to_vector<int64_t>(), std::vector<int64_t>({7000}));
  row[7000] = row[9000] = 1.0f;
  const Tensor ties = from_vector(row, {1, 10000});
  EXPECT_EQ(argmax(ties.to(gpu), 1).to_vector<int64_t>(), std::vector<int64_t>({100}));
  EXPECT_EQ(bits_of(amin(long_row.to(gpu), {1})), bits_of(amin(long_row, {1})));
}

TEST_F(CudaKernels, SoftmaxOfInfiniteRowsAndWideRowsMatchesTheCpu) {
  const float inf = std::numeric_limits<float>::infinity();
  const Tensor special = from_vector<float>(
      {-inf, -inf, -inf, /**/ 0, 1, 2, /**/ inf, 0, 1, /**/ -inf, 3, -inf}, {4, 3});
  for (bool log : {false, true}) {
    const Tensor expected = log ? log_softmax(special, -1) : softmax(special, -1);
    const Tensor got = log ? log_softmax(special.to(gpu), -1) : softmax(special.to(gpu), -1);
    EXPECT_ALL_CLOSE(got, expected, 1e-6, 1e-7)
        << (log ? "log_softmax" : "softmax");  // NaN where NaN
    EXPECT_TRUE(std::isnan(got.to_vector<float>()[0]));
  }
  Generator gen(6);
  for (const Shape& shape : {Shape{1000, 10}, Shape{5, 3000}}) {  // a warp per row, a block per row
    for (bool log : {false, true}) {
      const Tensor x = randn(shape, gen), cot = randn(shape, gen);
      Tensor xc = x.clone().requires_grad_(true), xg = x.to(gpu).requires_grad_(true);
      const Tensor yc = log ? log_softmax(xc, -1) : softmax(xc, -1);
      const Tensor yg = log ? log_softmax(xg, -1) : softmax(xg, -1);
      EXPECT_TRUE(cuda_test::close_at_scale(yg, yc, 1e-5)) << shape_str(shape);
      EXPECT_TRUE(cuda_test::close_at_scale(grad({yg}, {xg}, {cot.to(gpu)})[0],
                                            grad({yc}, {xc}, {cot})[0], 1e-5))
          << shape_str(shape);
    }
  }
}

TEST_F(CudaKernels, LayerNormAndItsParameterGradientsMatchTheCpu) {
  Generator gen(7);
  // 3000 rows span many row blocks of the weight / bias reduction; 2048 columns take the block
  // path.
  for (const Shape& shape : {Shape{3000, 64}, Shape{7, 2048}, Shape{2, 3, 5}}) {
    const int64_t C = shape.back();
    for (bool affine : {true, false}) {
      const Tensor x = randn(shape, gen, 0.5, 2.0), cot = randn(shape, gen);
      const Tensor w = randn({C}, gen), b = randn({C}, gen);
      auto run = [&](Device device) {
        std::vector<Tensor> leaves = {x.to(device).clone().requires_grad_(true)};
        if (affine) {
          leaves.push_back(w.to(device).clone().requires_grad_(true));
          leaves.push_back(b.to(device).clone().requires_grad_(true));
        }
        const Tensor y =
            layer_norm(leaves[0], affine ? leaves[1] : Tensor(), affine ? leaves[2] : Tensor());
        std::vector<Tensor> out = grad({y}, leaves, {cot.to(device)});
        out.insert(out.begin(), y);
        return out;
      };
      const std::vector<Tensor> expected = run(cpu), got = run(gpu);
      for (size_t k = 0; k < expected.size(); ++k)
        EXPECT_TRUE(cuda_test::close_at_scale(got[k], expected[k], 1e-5))
            << shape_str(shape) << (affine ? " affine" : "") << ", output " << k
            << " (y, dx, dw, db)";
    }
  }
}

TEST_F(CudaKernels, IndexingMatchesTheCpuWithDuplicatesAndBroadcastIndices) {
  Generator gen(8);
  const Tensor x = randn({6, 5, 4}, gen);
  const Tensor rows = from_vector<int64_t>({5, 0, 5, 2}, {4});
  // index_select on a non-contiguous input, gather with a broadcast (stride 0) index.
  const Tensor xt = permute(x, {2, 0, 1});
  EXPECT_EQ(index_select(xt.to(gpu), 1, rows.to(gpu)).to(cpu).to_vector<float>(),
            index_select(xt, 1, rows).to_vector<float>());
  const Tensor broadcast = expand(from_vector<int64_t>({3, 1, 1}, {1, 3, 1}), {6, 3, 4});
  EXPECT_EQ(gather(x.to(gpu), 1, broadcast.to(gpu)).to(cpu).to_vector<float>(),
            gather(x, 1, broadcast).to_vector<float>());
  // scatter_add with every source position landing in one of two slots.
  const Tensor index = remainder(randint(0, 1000, {6, 300, 4}, gen), full({}, 2, DType::I64));
  const Tensor src = randn({6, 300, 4}, gen);
  EXPECT_TRUE(cuda_test::close_at_scale(scatter_add(x.to(gpu), 1, index.to(gpu), src.to(gpu)),
                                        scatter_add(x, 1, index, src), 1e-5));
  const Tensor counts = zeros({6, 5, 4}, DType::I64);
  const Tensor ones_src = ones({6, 300, 4}, DType::I64);
  EXPECT_EQ(
      scatter_add(counts.to(gpu), 1, index.to(gpu), ones_src.to(gpu)).to(cpu).to_vector<int64_t>(),
      scatter_add(counts, 1, index, ones_src).to_vector<int64_t>());
  const Tensor small = zeros({2, 3}, DType::I32);
  const Tensor small_index = from_vector<int64_t>({2, 2, 0, 1, 1, 1}, {2, 3});
  const Tensor small_src = full({2, 3}, 7, DType::I32);
  EXPECT_EQ(scatter_add(small.to(gpu), 1, small_index.to(gpu), small_src.to(gpu))
                .to(cpu)
                .to_vector<int32_t>(),
            scatter_add(small, 1, small_index, small_src).to_vector<int32_t>());
}

TEST_F(CudaKernels, RandomDrawsEqualTheCpus) {
  for (DType dtype : {DType::F32, DType::F64}) {
    Generator on_cpu(11, 3), on_gpu(11, 3);
    on_cpu.set_offset(12345);
    on_gpu.set_offset(12345);
    const Tensor u = rand({1000, 37}, on_cpu, -2.0, 5.0, dtype);
    const Tensor ug = rand({1000, 37}, on_gpu, -2.0, 5.0, dtype, gpu);
    EXPECT_EQ(bits_of(ug), bits_of(u)) << dtype_name(dtype);
    const Tensor n = randn({1000, 37}, on_cpu, 1.0, 3.0, dtype);
    const Tensor ng = randn({1000, 37}, on_gpu, 1.0, 3.0, dtype, gpu);
    EXPECT_ALL_CLOSE(ng, n, dtype == DType::F64 ? 1e-12 : 1e-6, 1e-12) << dtype_name(dtype);
  }
  Generator on_cpu(12), on_gpu(12);
  EXPECT_EQ(randint(-5, 1 << 20, {4096}, on_cpu).to_vector<int64_t>(),
            randint(-5, 1 << 20, {4096}, on_gpu, gpu).to(cpu).to_vector<int64_t>());
  EXPECT_EQ(randperm(1000, on_cpu).to_vector<int64_t>(),
            randperm(1000, on_gpu, gpu).to(cpu).to_vector<int64_t>());
}

TEST_F(CudaKernels, MultiTensorAdamWEqualsTheCpuBitForBit) {
  Generator gen(13);
  for (DType dtype : {DType::F32, DType::F64}) {
    // Smaller than, equal to and larger than a chunk (65536 elements), and empty.
    const std::vector<Shape> shapes = {{3}, {1000}, {65536}, {200001}, {7, 5}, {0}};
    std::vector<Tensor> on_cpu[4], on_gpu[4];  // params, grads, exp_avgs, exp_avg_sqs
    for (const Shape& shape : shapes) {
      const Tensor p = randn(shape, gen, 0.0, 1.0, dtype);
      on_cpu[0].push_back(p);
      on_gpu[0].push_back(p.to(gpu).clone());
      for (int k : {1, 2, 3}) {
        on_cpu[k].push_back(zeros(shape, dtype));
        on_gpu[k].push_back(zeros(shape, dtype, gpu));
      }
    }
    for (int64_t step = 1; step <= 3; ++step) {
      for (size_t i = 0; i < shapes.size(); ++i) {
        on_cpu[1][i] = randn(shapes[i], gen, 0.0, 1e-2, dtype);
        on_gpu[1][i] = on_cpu[1][i].to(gpu);
      }
      const AdamWHyper hyper{3e-2, 0.9, 0.999, 1e-8, 0.1, step};
      backend_for(cpu).adamw_multi_step(views_of(on_cpu[0]), views_of(on_cpu[1]),
                                        views_of(on_cpu[2]), views_of(on_cpu[3]), hyper);
      backend_for(gpu).adamw_multi_step(views_of(on_gpu[0]), views_of(on_gpu[1]),
                                        views_of(on_gpu[2]), views_of(on_gpu[3]), hyper);
    }
    for (int k : {0, 2, 3})
      for (size_t i = 0; i < shapes.size(); ++i)
        EXPECT_EQ(bits_of(on_gpu[k][i]), bits_of(on_cpu[k][i]))
            << dtype_name(dtype) << " tensor " << i
            << (k == 0   ? " param"
                : k == 2 ? " exp_avg"
                         : " exp_avg_sq");
  }
}

TEST_F(CudaKernels, SquaredNormOfTensorListsMatchesTheCpu) {
  Generator gen(14);
  const std::vector<Tensor> tensors = {randn({3}, gen), randn({300000}, gen, 0.0, 1.0, DType::F64),
                                       randn({65536}, gen), zeros({0}),
                                       randn({17, 9}, gen, 0.0, 1.0, DType::F64)};
  std::vector<Tensor> on_gpu;
  for (const Tensor& t : tensors) on_gpu.push_back(t.to(gpu));
  const double expected = backend_for(cpu).squared_norm(views_of(tensors));
  EXPECT_NEAR(backend_for(gpu).squared_norm(views_of(on_gpu)), expected, 1e-12 * expected);
  double direct = 0;  // the definition, summed in f64 on the host
  for (const Tensor& t : tensors)
    for (double v : t.to(DType::F64).to_vector<double>()) direct += v * v;
  EXPECT_NEAR(expected, direct, 1e-12 * direct);
  EXPECT_EQ(backend_for(gpu).squared_norm({}), 0.0);
}

}  // namespace
