// MMCAM (the efficient form through gradient hooks, and the plain reference) and GradCAM.
#include "train/method/cam.h"

namespace train {

using namespace engine;

CamMethod parse_cam_method(const std::string& name) {
  if (name == "mmcam") return CamMethod::MMCAM;
  if (name == "gradcam") return CamMethod::GradCAM;
  fail("unknown CAM method '", name, "' (expected mmcam or gradcam)");
}

const char* cam_method_name(CamMethod method) {
  return method == CamMethod::MMCAM ? "mmcam" : "gradcam";
}

Tensor class_score(const Tensor& logits, const Tensor& labels) {
  return sum(gather(logits, 1, unsqueeze(labels, 1)));
}

// Why the fused form is exact. Only row 0 of R (the class token's relevance) is used, and
// R = (I + A_L) ... (I + A_1), so row 0 is r = e_0 (I + A_L) ... (I + A_1): start from e_0 and
// apply r <- r + r @ A_l for l = L down to 1. A_l needs G_l, the complete gradient of the score
// with respect to layer l's attention probabilities P_l, and the hooks below run at exactly the
// right moments because of two guarantees of the backward engine (engine/autograd/backward.cpp,
// run): (1) a tensor's hook runs once, with its gradient fully summed, when the node that made
// it is taken from the ready queue, which happens only after every node that consumed it has
// run; (2) P_{l+1} is computed from P_l (through layer l's attention output and the residual
// stream), so P_{l+1}'s node consumes P_l's node transitively and runs first. Hence the hooks
// fire for l = L, L-1, ..., 1: the order of the product. Asking grad() only for P_1 stops the
// backward there, and grad() never writes the parameters' .grad().
Tensor mmcam(const models::VisionOutput& forward, const Tensor& score) {
  const std::vector<Tensor>& probs = forward.attention;  // per layer (N, heads, T, T)
  ENGINE_CHECK(!probs.empty(), "mmcam: the forward did not keep the attention probabilities");
  const int64_t N = probs[0].shape()[0], T = probs[0].shape()[2];
  // r (N, 1, T) starts as e_0: the class token's row of the identity.
  Tensor r = zeros({N, 1, T}, probs[0].dtype(), probs[0].device());
  Tensor class_entry = narrow(r, 2, 0, 1);
  fill_(class_entry, 1.0);
  // The hooks refer to r: they are removed however grad() ends.
  struct Hooks {
    std::vector<HookHandle> handles;
    ~Hooks() {
      for (HookHandle& h : handles) h.remove();
    }
  } hooks;
  for (const Tensor& p : probs) {
    hooks.handles.push_back(p.register_hook([&r, saved = p.detach()](const Tensor& g) {
      const Tensor a = mean(relu(mul(g, saved)), {1});  // A_l (N, T, T)
      r = add(r, matmul(r, a));
      return Tensor();
    }));
  }
  grad({score}, {probs.front()}, {}, /*retain_graph=*/true);
  return reshape(narrow(r, 2, 1, T - 1), {N, T - 1});
}

Tensor mmcam_reference(const models::VisionOutput& forward, const Tensor& score) {
  const std::vector<Tensor>& probs = forward.attention;  // per layer (N, heads, T, T)
  ENGINE_CHECK(!probs.empty(), "mmcam: the forward did not keep the attention probabilities");
  const std::vector<Tensor> grads = grad({score}, probs, {}, /*retain_graph=*/true);  // G_l
  NoGradGuard no_grad;
  const int64_t N = probs[0].shape()[0], T = probs[0].shape()[2];
  const Tensor identity = to_dtype(eq(unsqueeze(arange(T, DType::I64, probs[0].device()), 1),
                                      unsqueeze(arange(T, DType::I64, probs[0].device()), 0)),
                                   probs[0].dtype());                // (T, T)
  Tensor R = contiguous(expand(unsqueeze(identity, 0), {N, T, T}));  // (N, T, T)
  for (size_t l = 0; l < probs.size(); ++l) {
    const Tensor A = mean(relu(mul(grads[l], probs[l].detach())), {1});  // (N, T, T)
    R = add(R, matmul(A, R));
  }
  return reshape(narrow(select(R, 1, 0), 1, 1, T - 1), {N, T - 1});  // row 0, patch columns
}

Tensor gradcam(const models::VisionOutput& forward, const Tensor& score) {
  const Tensor& a = forward.last_ln1;  // (N, T, C)
  ENGINE_CHECK(a.defined(), "gradcam: the forward did not keep the last block's ln_1 output");
  const Tensor g = grad({score}, {a}, {}, /*retain_graph=*/true)[0];
  NoGradGuard no_grad;
  const Tensor weights = sum(g, {1}, true);  // (N, 1, C): summed over tokens
  const int64_t T = a.shape()[1];
  const Tensor patches = narrow(a.detach(), 1, 1, T - 1);  // (N, P, C)
  return relu(sum(mul(patches, weights), {2}));            // (N, P)
}

Tensor compute_cam(CamMethod method, const models::Classifier& model, const Tensor& images,
                   const Tensor& labels) {
  models::VisionForwardOptions options;
  options.keep_attention = method == CamMethod::MMCAM;
  options.keep_last_ln1 = method == CamMethod::GradCAM;
  // The CAM needs a graph from the score back to the activations, whatever the caller's mode;
  // grad() never touches the parameters' .grad().
  GradModeGuard with_grad(true);
  const models::VisionOutput out = model.visual->forward(images, options);
  const Tensor score = class_score(model.head->forward(out.features), labels);
  return (method == CamMethod::MMCAM ? mmcam(out, score) : gradcam(out, score)).detach();
}

Tensor normalize_cam(const Tensor& cam) { return div(cam, add(amax(cam, {1}, true), 1e-8)); }

}  // namespace train
