// Results do not depend on the number of threads: every heavy CPU kernel, run with 1 and with 2
// threads on inputs large enough to be split, gives bitwise-identical outputs and gradients.
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
  for (const Tensor& t : {loss, s, x.grad(), w.grad(), m.grad(), sum(x, {0, 1}), amax(x, {2})})
    out.values.push_back(t.to_vector<float>());
  return out;
}

TEST(Threads, ResultsAreBitwiseIdenticalForOneAndTwoThreads) {
  const int before = get_num_threads();
  set_num_threads(1);
  const Outputs one = run_everything();
  set_num_threads(2);
  const Outputs two = run_everything();
  set_num_threads(before);
  ASSERT_EQ(one.values.size(), two.values.size());
  for (size_t i = 0; i < one.values.size(); ++i) EXPECT_EQ(one.values[i], two.values[i]) << "output " << i;
}

}  // namespace
