// Losses and L2 normalisation, composed from differentiable ops (their gradients follow).
#include "engine/ops/op_helpers.h"
#include "engine/ops/ops.h"

namespace engine {

using namespace ops_detail;

Tensor cross_entropy(const Tensor& logits, const Tensor& target, double label_smoothing) {
  check_defined("cross_entropy", logits, "logits");
  check_defined("cross_entropy", target, "target");
  check_rank("cross_entropy", logits, 2, "logits (N, C)");
  check_dtype("cross_entropy", target, DType::I64, "target");
  const int64_t N = logits.shape()[0], C = logits.shape()[1];
  ENGINE_CHECK(target.shape() == Shape{N}, "cross_entropy: target of shape ",
               shape_str(target.shape()), " does not match logits ", shape_str(logits.shape()));
  ENGINE_CHECK(label_smoothing >= 0 && label_smoothing <= 1, "cross_entropy: label_smoothing ",
               label_smoothing, " is outside [0, 1]");
  ENGINE_CHECK(N > 0, "cross_entropy: empty batch");
  const auto [lo, hi] = integer_range(target);
  ENGINE_CHECK(lo >= 0 && hi < C, "cross_entropy: target ", lo < 0 ? lo : hi,
               " is out of range for ", C, " classes (logits ", shape_str(logits.shape()), ")");
  const Tensor logp = log_softmax(logits, 1);                               // (N, C)
  const Tensor picked = squeeze(gather(logp, 1, unsqueeze(target, 1)), 1);  // (N)
  Tensor per_row = neg(picked);
  if (label_smoothing > 0)
    per_row = add(mul(per_row, 1.0 - label_smoothing), mul(mean(logp, {1}), -label_smoothing));
  return mean(per_row);
}

Tensor mse_loss(const Tensor& input, const Tensor& target) {
  check_defined("mse_loss", input);
  check_defined("mse_loss", target, "target");
  ENGINE_CHECK(input.shape() == target.shape(), "mse_loss: input of shape ",
               shape_str(input.shape()), " and target of shape ", shape_str(target.shape()),
               " differ");
  const Tensor diff = sub(input, target);
  return mean(mul(diff, diff));
}

Tensor kl_div_with_temperature(const Tensor& student_logits, const Tensor& teacher_logits,
                               double temperature) {
  check_defined("kl_div_with_temperature", student_logits, "student logits");
  check_defined("kl_div_with_temperature", teacher_logits, "teacher logits");
  check_rank("kl_div_with_temperature", student_logits, 2, "student logits (N, C)");
  ENGINE_CHECK(student_logits.shape() == teacher_logits.shape(),
               "kl_div_with_temperature: ", "student logits ", shape_str(student_logits.shape()),
               " and teacher logits ", shape_str(teacher_logits.shape()), " differ");
  ENGINE_CHECK(temperature > 0, "kl_div_with_temperature: temperature must be positive, got ",
               temperature);
  const double inv_t = 1.0 / temperature;
  const Tensor teacher_logp = log_softmax(mul(teacher_logits, inv_t), 1);  // (N, C)
  const Tensor student_logp = log_softmax(mul(student_logits, inv_t), 1);  // (N, C)
  const Tensor per_row = sum(mul(exp(teacher_logp), sub(teacher_logp, student_logp)), {1});
  return mul(mean(per_row), temperature * temperature);
}

Tensor l2_normalize(const Tensor& x, int64_t dim, double eps) {
  check_defined("l2_normalize", x);
  return div(x, clamp_min(norm(x, {dim}, true), eps));
}

}  // namespace engine
