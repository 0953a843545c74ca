// Strategy parsing, patch masks and the fills that make counterfactual images.
#include "train/method/masks.h"

#include <algorithm>
#include <regex>
#include <sstream>

namespace train {

using namespace engine;

std::string MaskStrategy::name() const {
  static const char* masks[] = {"RandMask", "ObjMask", "CtxMask"};
  static const char* fills[] = {"NoFill", "SingleFill", "MultiFill"};
  std::ostringstream out;
  out << masks[static_cast<int>(mask)] << fills[static_cast<int>(fill)] << "(" << parameter << ")";
  return out.str();
}

MaskStrategy parse_mask_strategy(const std::string& text) {
  static const std::regex pattern(
      R"((RandMask|ObjMask|CtxMask)(NoFill|SingleFill|MultiFill)\(([0-9]*\.?[0-9]+)\))");
  std::smatch m;
  ENGINE_CHECK(std::regex_match(text, m, pattern), "mask strategy '", text, "' is not of the form ",
               "{RandMask|ObjMask|CtxMask}{NoFill|SingleFill|MultiFill}(number), e.g. "
               "ObjMaskSingleFill(0.3)");
  MaskStrategy s;
  s.mask =
      m[1] == "RandMask" ? MaskKind::Rand : (m[1] == "ObjMask" ? MaskKind::Obj : MaskKind::Ctx);
  s.fill = m[2] == "NoFill" ? FillKind::NoFill
                            : (m[2] == "SingleFill" ? FillKind::SingleFill : FillKind::MultiFill);
  s.parameter = std::stod(m[3]);
  ENGINE_CHECK(s.parameter >= 0 && s.parameter <= 1, "mask strategy '", text,
               "': the parameter must lie in [0, 1]");
  return s;
}

Tensor patch_mask(const MaskStrategy& strategy, const Tensor& normalized_cam, int64_t images,
                  int64_t patches, Generator& gen, Device device) {
  if (strategy.mask == MaskKind::Rand)
    return lt(rand({images, patches}, gen, 0.0, 1.0, DType::F32, device), strategy.parameter);
  ENGINE_CHECK(normalized_cam.defined() && normalized_cam.shape() == Shape({images, patches}),
               "patch_mask: ", strategy.name(), " needs a (", images, ", ", patches, ") CAM");
  const Tensor above = gt(normalized_cam, strategy.parameter);
  return strategy.mask == MaskKind::Obj ? above : logical_not(above);
}

Tensor expand_patch_mask(const Tensor& mask, int64_t grid, int64_t patch) {
  const int64_t N = mask.shape()[0];
  const Tensor cells = reshape(mask, {N, 1, grid, 1, grid, 1});
  return reshape(expand(cells, {N, 1, grid, patch, grid, patch}),
                 {N, 1, grid * patch, grid * patch});
}

namespace {

// (N, C, H, W) <-> (N, P, C * patch * patch), patches in row-major grid order.
Tensor patchify(const Tensor& images, int64_t grid, int64_t patch) {
  const int64_t N = images.shape()[0], C = images.shape()[1];
  return reshape(permute(reshape(images, {N, C, grid, patch, grid, patch}), {0, 2, 4, 1, 3, 5}),
                 {N, grid * grid, C * patch * patch});
}

Tensor unpatchify(const Tensor& patches, int64_t channels, int64_t grid, int64_t patch) {
  const int64_t N = patches.shape()[0];
  return reshape(
      permute(reshape(patches, {N, grid, grid, channels, patch, patch}), {0, 3, 1, 4, 2, 5}),
      {N, channels, grid * patch, grid * patch});
}

// The kept patch indices (N, K), ascending, K = int(P * (1 - ratio)) (at least 1).
Tensor keep_random_patches(int64_t N, int64_t P, double ratio, Generator& gen) {
  const int64_t keep =
      std::max<int64_t>(1, static_cast<int64_t>(static_cast<double>(P) * (1.0 - ratio)));
  std::vector<int64_t> kept;
  for (int64_t n = 0; n < N; ++n) {
    std::vector<int64_t> order = randperm(P, gen).to_vector<int64_t>();
    std::sort(order.begin(), order.begin() + keep);
    kept.insert(kept.end(), order.begin(), order.begin() + keep);
  }
  return from_vector(kept, {N, keep});
}

}  // namespace

Tensor single_fill(const Tensor& images, const Tensor& mask, const Tensor& perm, int64_t grid) {
  const int64_t patch = images.shape()[2] / grid;
  return where(expand_patch_mask(mask, grid, patch), index_select(images, 0, perm), images);
}

Tensor fill_from_sources(const Tensor& images, const Tensor& source, int64_t grid) {
  const int64_t N = images.shape()[0], P = grid * grid, patch = images.shape()[2] / grid;
  const Tensor patches = patchify(images, grid, patch);  // (N, P, D)
  const Tensor taken = gather(patches, 0, expand(unsqueeze(source, 2), {N, P, patches.shape()[2]}));
  return unpatchify(taken, images.shape()[1], grid, patch);
}

Counterfactual make_counterfactual(const MaskStrategy& strategy, const Tensor& images,
                                   const Tensor& mask, int64_t grid, Generator& gen) {
  ENGINE_CHECK(
      images.dim() == 4 && images.shape()[2] == images.shape()[3] && images.shape()[2] % grid == 0,
      "make_counterfactual: images ", shape_str(images.shape()), " do not split into a ", grid, "x",
      grid, " grid of patches");
  const int64_t N = images.shape()[0], P = grid * grid;
  ENGINE_CHECK(mask.dtype() == DType::Bool && mask.shape() == Shape({N, P}),
               "make_counterfactual: ", "mask must be bool (", N, ", ", P, "), got ",
               dtype_name(mask.dtype()), " ", shape_str(mask.shape()));
  const Tensor own = expand(reshape(arange(N, DType::I64, images.device()), {N, 1}), {N, P});
  Counterfactual out;
  out.images = images;
  out.source = contiguous(own);
  switch (strategy.fill) {
    case FillKind::NoFill:
      if (strategy.mask == MaskKind::Rand)
        out.options.keep_patches =
            keep_random_patches(N, P, strategy.parameter, gen).to(images.device());
      else
        out.options.masked_patches = mask;
      break;
    case FillKind::SingleFill: {
      const Tensor perm =
          randperm(N, gen, images.device());  // a plain permutation, as the reference
      out.images = single_fill(images, mask, perm, grid);
      out.source = where(mask, expand(reshape(perm, {N, 1}), {N, P}), own);
      break;
    }
    case FillKind::MultiFill: {
      ENGINE_CHECK(N >= 2, "MultiFill needs a batch of at least 2 images, got ", N);
      const Tensor shift = randint(1, N, {N, P}, gen, images.device());  // k in 1..N-1
      const Tensor donor =
          remainder(add(own, shift), full({}, static_cast<double>(N), DType::I64, images.device()));
      out.source = where(mask, donor, own);
      out.images = fill_from_sources(images, out.source, grid);
      break;
    }
  }
  return out;
}

}  // namespace train
