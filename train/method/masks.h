// Masks and fills (train/README.md, "Masks and fills"). A strategy is written like the reference,
// `ObjMaskSingleFill(0.3)`: a mask (RandMask(p): each patch with probability p; ObjMask(t): patches
// whose normalised CAM > t; CtxMask(t): CAM <= t) and a fill (SingleFill: masked pixels of image
// n come from image perm[n] of one random permutation; MultiFill: each masked patch of image n
// comes from image (n + k) mod N, k uniform in 1..N-1 per patch; NoFill: pixels unchanged, and
// the masked patches become attention key masks (Obj/Ctx) or are dropped MAE-style (Rand)).
// Patch masks cover whole patches: they expand to pixels by nearest neighbour.
#pragma once

#include <string>

#include "models/clip_vit.h"

namespace train {

using engine::Tensor;

enum class MaskKind { Rand, Obj, Ctx };
enum class FillKind { NoFill, SingleFill, MultiFill };

struct MaskStrategy {
  MaskKind mask = MaskKind::Obj;
  FillKind fill = FillKind::SingleFill;
  double parameter = 0.3;  // RandMask: probability; Obj/CtxMask: CAM threshold

  bool needs_cam() const { return mask != MaskKind::Rand; }
  std::string name() const;  // "ObjMaskSingleFill(0.3)"
};

// Parses the strategy language; anything else is an error that says what is accepted.
MaskStrategy parse_mask_strategy(const std::string& text);

// (N, P) bool, true = masked. normalized_cam (N, P) is used by Obj/CtxMask, ignored by RandMask,
// whose mask is drawn on `device` (the same draws as on the CPU).
Tensor patch_mask(const MaskStrategy& strategy, const Tensor& normalized_cam, int64_t images,
                  int64_t patches, engine::Generator& gen,
                  engine::Device device = engine::Device::cpu());

// (N, P) patch mask -> (N, 1, grid * patch, grid * patch) pixel mask.
Tensor expand_patch_mask(const Tensor& mask, int64_t grid, int64_t patch);

struct Counterfactual {
  Tensor images;                         // (N, 3, H, W): the counterfactual pixels
  models::VisionForwardOptions options;  // key mask or kept patches for NoFill
  Tensor source;                         // (N, P) i64: the image each patch's pixels come from
};

// SingleFill with a given permutation (N): masked pixels of image n come from image perm[n].
Tensor single_fill(const Tensor& images, const Tensor& mask, const Tensor& perm, int64_t grid);
// Pixels of patch p of image n come from the same patch of image source[n, p] (N, P).
Tensor fill_from_sources(const Tensor& images, const Tensor& source, int64_t grid);

// Builds the counterfactual batch for `mask` (N, P) over images (N, 3, H, W).
Counterfactual make_counterfactual(const MaskStrategy& strategy, const Tensor& images,
                                   const Tensor& mask, int64_t grid, engine::Generator& gen);

}  // namespace train
