// Spiral data, the two-layer MLP and its training loop (see smoke.h).
#include "train/tools/smoke.h"

#include <cmath>
#include <iomanip>
#include <string>

#include "nn/layers.h"
#include "nn/lr_schedule.h"

namespace train {

using namespace engine;

namespace {

constexpr int64_t kClasses = 3;

struct Dataset {
  Tensor points;  // (n, 2) f32
  Tensor labels;  // (n) i64
};

// Three interleaved spiral arms: arm c at radius r in (0, 1] has angle c * 2pi/3 + 4r, plus noise.
Dataset make_spiral(int64_t per_class, Generator& gen) {
  const int64_t n = per_class * kClasses;
  const Tensor radius = rand({n}, gen, 0.05, 1.0);
  const Tensor noise = randn({n}, gen, 0.0, 0.2);
  std::vector<float> r = radius.to_vector<float>(), e = noise.to_vector<float>();
  std::vector<float> xy(2 * n);
  std::vector<int64_t> y(n);
  for (int64_t i = 0; i < n; ++i) {
    y[i] = i / per_class;
    const double angle = static_cast<double>(y[i]) * 2.0 * M_PI / kClasses + 4.0 * r[i] + e[i];
    xy[2 * i] = static_cast<float>(r[i] * std::sin(angle));
    xy[2 * i + 1] = static_cast<float>(r[i] * std::cos(angle));
  }
  return {from_vector(xy, {n, 2}), from_vector(y, {n})};
}

double accuracy(const nn::MLP& model, const Dataset& data) {
  NoGradGuard no_grad;
  const Tensor predicted = argmax(model.forward(data.points), 1);
  return sum(to_dtype(eq(predicted, data.labels), DType::F32)).item<float>() /
         static_cast<double>(data.labels.numel());
}

}  // namespace

SmokeResult run_smoke(const SmokeOptions& options, std::ostream& log) {
  ENGINE_CHECK(
      options.epochs > 0 && options.batch > 0 && options.hidden > 0 && options.points_per_class > 0,
      "smoke: epochs, batch, hidden and points must be positive");
  Generator data_gen(options.seed, 0), init_gen(options.seed, 1), order_gen(options.seed, 2);
  const Dataset train_set = make_spiral(options.points_per_class, data_gen);
  const Dataset test_set = make_spiral(options.points_per_class / 2, data_gen);
  nn::MLP model(2, options.hidden, kClasses, nn::Activation::Relu, nn::Init::random(init_gen));

  const int64_t n = train_set.labels.numel();
  const int64_t steps_per_epoch = n / options.batch;
  ENGINE_CHECK(steps_per_epoch > 0, "smoke: batch ", options.batch, " is larger than the ", n,
               " training points");
  nn::AdamW optimizer({nn::ParamGroup{model.parameters(), options.lr, 1e-4}});
  nn::OneCycleOptions schedule;
  schedule.total_steps = options.epochs * steps_per_epoch;
  schedule.pct_start = 0.1;
  nn::OneCycleLR scheduler(optimizer, {options.lr}, schedule);

  log << "smoke: 2-layer MLP (2 -> " << options.hidden << " -> " << kClasses << ") on a "
      << kClasses << "-arm spiral, " << n << " training points, " << options.epochs << " epochs\n";
  SmokeResult result;
  for (int64_t epoch = 0; epoch < options.epochs; ++epoch) {
    const Tensor order = randperm(n, order_gen);
    double loss_sum = 0;
    for (int64_t step = 0; step < steps_per_epoch; ++step) {
      const Tensor index = narrow(order, 0, step * options.batch, options.batch);
      const Tensor logits = model.forward(index_select(train_set.points, 0, index));
      const Tensor loss = cross_entropy(logits, index_select(train_set.labels, 0, index));
      optimizer.zero_grad();
      loss.backward();
      nn::clip_grad_norm(model.parameters(), 1.0);
      optimizer.step();
      scheduler.step();
      loss_sum += loss.item<float>();
    }
    const double epoch_loss = loss_sum / static_cast<double>(steps_per_epoch);
    result.epoch_losses.push_back(epoch_loss);
    if ((epoch + 1) % 5 == 0 || epoch == 0) {
      const int bar = static_cast<int>(std::lround(std::min(1.2, epoch_loss) * 40));
      log << "epoch " << std::setw(3) << epoch + 1 << "  loss " << std::fixed
          << std::setprecision(4) << epoch_loss << "  " << std::string(bar, '#') << "\n";
    }
  }
  result.train_accuracy = accuracy(model, train_set);
  result.test_accuracy = accuracy(model, test_set);
  log << std::setprecision(1) << "train accuracy " << 100 * result.train_accuracy
      << "%, test accuracy " << 100 * result.test_accuracy << "%\n";
  return result;
}

}  // namespace train
