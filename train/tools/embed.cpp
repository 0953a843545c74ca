// Batched feature extraction with progress output.
#include "train/tools/embed.h"

#include <chrono>

#include "engine/io/npy.h"
#include "models/clip_checkpoint.h"
#include "train/common/finite_images.h"

namespace train {

using namespace engine;

void run_embed(const EmbedOptions& options, std::ostream& progress) {
  ENGINE_CHECK(options.head.empty() == options.logits_out.empty(),
               "embed: --head and --logits-out go together");
  ENGINE_CHECK(options.batch > 0, "embed: --batch must be positive");
  const Tensor images = load_npy(options.input);
  ENGINE_CHECK(images.dtype() == DType::F32 && images.dim() == 4 && images.shape()[1] == 3,
               options.input, ": expected float32 images (N, 3, H, W), got ",
               dtype_name(images.dtype()), " ", shape_str(images.shape()));
  ENGINE_CHECK(images.shape()[2] == images.shape()[3], options.input, ": images are ",
               images.shape()[2], "x", images.shape()[3], ", expected square images");
  check_finite_images(images, options.input);
  Tensor head;
  if (!options.head.empty()) {
    head = load_npy(options.head);
    ENGINE_CHECK(head.dtype() == DType::F32 && head.dim() == 2, options.head,
                 ": expected a float32 (classes, dim) head, got ", dtype_name(head.dtype()), " ",
                 shape_str(head.shape()));
  }
  const auto model = models::load_visual_tower(options.weights, images.shape()[2]);
  if (head.defined())
    ENGINE_CHECK(head.shape()[1] == model->config().output_dim, options.head, ": head dim ",
                 head.shape()[1], " does not match the model's output dim ",
                 model->config().output_dim);
  model->eval();

  NoGradGuard no_grad;
  const int64_t n = images.shape()[0];
  std::vector<Tensor> pieces;
  const auto start = std::chrono::steady_clock::now();
  for (int64_t begin = 0; begin < n; begin += options.batch) {
    const int64_t count = std::min(options.batch, n - begin);
    pieces.push_back(model->forward(narrow(images, 0, begin, count)).features);
    if (n > options.batch) {
      const double seconds =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      progress << "embed: " << begin + count << "/" << n << " images, "
               << static_cast<int64_t>((begin + count) / std::max(seconds, 1e-9)) << " images/s\n";
    }
  }
  const Tensor features = n > 0 ? cat(pieces, 0) : zeros({0, model->config().output_dim});
  save_npy(options.out, features);
  if (head.defined())
    save_npy(options.logits_out, matmul(l2_normalize(features, -1), transpose(head, 0, 1)));
}

}  // namespace train
