// Results do not depend on the number of threads: every heavy CPU kernel, run with 1, 2 and 3
// threads (which split the work differently) on inputs large enough to be split, including
// GEMMs of odd sizes that leave partial tiles, gives bitwise-identical outputs and gradients.
#include "engine/core/threading.h"
#include "test_util.h"

namespace {

using namespace engine;

struct Outputs {
  std::vector<std::vector<float>> values;
};

Outputs run_everything() {
  Generator gen(17);
  Tensor x = randn({64, 197, 96}, gen).requires_grad_(true);
  Tensor w = randn({96}, gen).requires_grad_(true);
  Tensor m = randn({96, 80}, gen).requires_grad_(true);
  const Tensor h = layer_norm(x, w, Tensor());
  const Tensor s = softmax(matmul(h, m), -1);
  const Tensor loss = add(sum(mul(s, s)), mean(exp(mul(x, 0.1))));
  loss.backward();
  Outputs out;
  // Odd sizes: partial register tiles and cache blocks in every dimension.
  Tensor a = randn({7, 131, 97}, gen).requires_grad_(true);
  Tensor b = randn({97, 203}, gen).requires_grad_(true);
  const Tensor odd = matmul(a, b);  // (7, 131, 203)
  sum(mul(odd, odd)).backward();
  for (const Tensor& t : {loss, s, x.grad(), w.grad(), m.grad(), sum(x, {0, 1}), amax(x, {2}), odd,
                          a.grad(), b.grad()})
    out.values.push_back(t.to_vector<float>());
  return out;
}

TEST(Threads, ResultsAreBitwiseIdenticalForOneTwoAndThreeThreads) {
  const int before = get_num_threads();
  set_num_threads(1);
  const Outputs one = run_everything();
  for (int threads : {2, 3}) {
    set_num_threads(threads);
    const Outputs many = run_everything();
    ASSERT_EQ(one.values.size(), many.values.size());
    for (size_t i = 0; i < one.values.size(); ++i)
      EXPECT_EQ(one.values[i], many.values[i])
          << "output " << i << " with " << threads << " threads";
  }
  set_num_threads(before);
}

}  // namespace
