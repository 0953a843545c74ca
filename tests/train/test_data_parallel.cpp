// The data-parallel helpers of the training loop with a stand-in for a second rank (a
// Communicator whose sums add what the other rank would hold): gradients averaged, a parameter
// that no rank touched left without a gradient (as in one process), one touched only elsewhere
// reduced as zeros, and a rank holding other weights refused naming it.
#include "test_util.h"
#include "train/loop/data_parallel.h"

namespace {

using namespace engine;
using testing_util::expect_error;

// Rank 0 of two, where the other rank holds `other_flags` in a host sum, the same tensors as this
// rank in a tensor sum, and `other_fingerprint` in a gather.
class TwoRanks : public Communicator {
 public:
  std::vector<double> other_flags;
  double other_fingerprint = 0;
  bool same_fingerprint = true;

  int rank() const override { return 0; }
  int size() const override { return 2; }
  int local_rank() const override { return 0; }
  std::string describe() const override { return "two ranks (stand-in)"; }
  bool is_distributed() const override { return true; }
  void all_reduce_sum(const std::vector<Tensor>& tensors) override {
    for (const Tensor& t : tensors) {
      Tensor x = t;
      mul_(x, 2.0);
    }
  }
  void all_reduce_sum(std::vector<double>& values) override {
    for (size_t i = 0; i < values.size(); ++i) values[i] += other_flags.at(i);
  }
  std::vector<double> all_gather(double value) override {
    return {value, same_fingerprint ? value : other_fingerprint};
  }
  void barrier() override {}
  [[noreturn]] void abort(int code) override { std::exit(code); }
};

TEST(DataParallel, GradientsAreAveragedAndUntouchedParametersKeepNone) {
  Tensor touched = ones({3}).requires_grad_(true);
  Tensor untouched = ones({2}).requires_grad_(true);
  Tensor elsewhere = ones({4}).requires_grad_(true);
  touched.set_grad(from_vector<float>({1, 2, 3}, {3}));
  TwoRanks ranks;
  ranks.other_flags = {1, 0, 1};  // the other rank has gradients for `touched` and `elsewhere`
  train::average_gradients({touched, untouched, elsewhere}, ranks);
  EXPECT_EQ(touched.grad().to_vector<float>(), std::vector<float>({1, 2, 3}));  // (2 g) / 2
  EXPECT_FALSE(untouched.grad().defined());  // no rank touched it: the optimizer skips it
  ASSERT_TRUE(elsewhere.grad().defined());   // reduced as zeros here
  EXPECT_EQ(elsewhere.grad().to_vector<float>(), std::vector<float>(4, 0.0f));
}

TEST(DataParallel, RanksHoldingOtherWeightsAreRefused) {
  const Tensor w = from_vector<float>({0.5f, -1.0f}, {2});
  TwoRanks ranks;
  train::check_same_weights({w}, ranks, "at a checkpoint");  // the same fingerprint: fine
  ranks.same_fingerprint = false;
  ranks.other_fingerprint = 42.0;
  expect_error(
      [&] { train::check_same_weights({w}, ranks, "at a checkpoint"); },
      {"train: rank 1 holds other weights than rank 0 at a checkpoint (fingerprint 42 vs"});
}

}  // namespace
