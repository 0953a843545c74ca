// Pillow-exact resizing (see resize.h). The coefficient arithmetic follows Pillow's
// precompute_coeffs / normalize_coeffs_8bpc expression by expression, so the doubles, and hence
// the fixed-point coefficients, are bit-identical; the passes sum integers, so their order is free.
#include "data/resize.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <memory>
#include <unordered_map>
#include <vector>

namespace data {

namespace {

constexpr int kPrecisionBits = 32 - 8 - 2;  // Pillow's PRECISION_BITS

std::atomic<bool> simd_allowed{true};

#if defined(__x86_64__)
bool use_avx2() {
  static const bool have_avx2 = __builtin_cpu_supports("avx2");
  return have_avx2 && simd_allowed.load(std::memory_order_relaxed);
}
#endif

// Pillow's filters, in its operation order.
double bilinear_filter(double x) {
  if (x < 0.0) x = -x;
  if (x < 1.0) return 1.0 - x;
  return 0.0;
}

double bicubic_filter(double x) {
  constexpr double a = -0.5;
  if (x < 0.0) x = -x;
  if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
  if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
  return 0.0;
}

// One axis of a convolution resize: output i sums count[i] input samples from start[i] with
// the fixed-point weights k[i * ksize ...].
struct AxisFilter {
  int ksize = 0;
  std::vector<int> start;  // (out)
  std::vector<int> count;  // (out)
  std::vector<int32_t> k;  // (out, ksize)
};

AxisFilter make_axis_filter(int in_size, int out_size, Resample resample) {
  const double support_1 = resample == Resample::Bicubic ? 2.0 : 1.0;
  double (*filter)(double) = resample == Resample::Bicubic ? bicubic_filter : bilinear_filter;
  const double scale = static_cast<double>(static_cast<float>(in_size) - 0.0f) / out_size;
  const double filterscale = scale < 1.0 ? 1.0 : scale;
  const double support = support_1 * filterscale;
  AxisFilter axis;
  axis.ksize = static_cast<int>(std::ceil(support)) * 2 + 1;
  axis.start.resize(out_size);
  axis.count.resize(out_size);
  axis.k.assign(static_cast<size_t>(out_size) * axis.ksize, 0);
  std::vector<double> weights(axis.ksize);
  for (int xx = 0; xx < out_size; ++xx) {
    const double center = 0.0 + (xx + 0.5) * scale;
    const double ss = 1.0 / filterscale;
    int xmin = static_cast<int>(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    int xmax = static_cast<int>(center + support + 0.5);
    if (xmax > in_size) xmax = in_size;
    xmax -= xmin;
    double ww = 0.0;
    for (int x = 0; x < xmax; ++x) {
      const double w = filter((x + xmin - center + 0.5) * ss);
      weights[x] = w;
      ww += w;
    }
    int32_t* k = &axis.k[static_cast<size_t>(xx) * axis.ksize];
    for (int x = 0; x < xmax; ++x) {
      const double w = ww != 0.0 ? weights[x] / ww : weights[x];
      k[x] = static_cast<int32_t>(w < 0 ? -0.5 + w * (1 << kPrecisionBits)
                                        : 0.5 + w * (1 << kPrecisionBits));
    }
    axis.start[xx] = xmin;
    axis.count[xx] = xmax;
  }
  return axis;
}

// The filter for (in_size -> out_size), computed once per thread and kept.
const AxisFilter& axis_filter(int in_size, int out_size, Resample resample) {
  thread_local std::unordered_map<uint64_t, std::unique_ptr<AxisFilter>> cache;
  const uint64_t key = (static_cast<uint64_t>(in_size) << 34) |
                       (static_cast<uint64_t>(out_size) << 2) | static_cast<uint64_t>(resample);
  auto it = cache.find(key);
  if (it == cache.end()) {
    if (cache.size() >= 1024) cache.clear();  // bounded: image sizes in a dataset vary
    it = cache
             .emplace(key,
                      std::make_unique<AxisFilter>(make_axis_filter(in_size, out_size, resample)))
             .first;
  }
  return *it->second;
}

inline uint8_t clip8(int32_t v) {
  if (v >= (1 << kPrecisionBits << 8)) return 255;
  if (v <= 0) return 0;
  return static_cast<uint8_t>(v >> kPrecisionBits);
}

// One row of the horizontal pass: output pixels [x0, x0 + n) of a row.
void horizontal_row(const uint8_t* in, const AxisFilter& axis, int x0, int n, uint8_t* out) {
  for (int i = 0; i < n; ++i) {
    const int xx = x0 + i;
    const uint8_t* p = in + 3 * axis.start[xx];
    const int32_t* k = &axis.k[static_cast<size_t>(xx) * axis.ksize];
    int32_t s0 = 1 << (kPrecisionBits - 1), s1 = s0, s2 = s0;
    for (int t = 0; t < axis.count[xx]; ++t) {
      s0 += p[3 * t] * k[t];
      s1 += p[3 * t + 1] * k[t];
      s2 += p[3 * t + 2] * k[t];
    }
    out[3 * i] = clip8(s0);
    out[3 * i + 1] = clip8(s1);
    out[3 * i + 2] = clip8(s2);
  }
}

#if defined(__x86_64__)
// dst[j * dst_stride + i] = src[i * src_stride + j] for an 8x8 block of bytes (SSE2).
inline void transpose_8x8(const uint8_t* src, ptrdiff_t src_stride, uint8_t* dst,
                          ptrdiff_t dst_stride) {
  __m128i r[8];
  for (int i = 0; i < 8; ++i)
    r[i] = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(src + i * src_stride));
  const __m128i a0 = _mm_unpacklo_epi8(r[0], r[1]), a1 = _mm_unpacklo_epi8(r[2], r[3]);
  const __m128i a2 = _mm_unpacklo_epi8(r[4], r[5]), a3 = _mm_unpacklo_epi8(r[6], r[7]);
  const __m128i b0 = _mm_unpacklo_epi16(a0, a1), b1 = _mm_unpackhi_epi16(a0, a1);  // rows 0-3
  const __m128i b2 = _mm_unpacklo_epi16(a2, a3), b3 = _mm_unpackhi_epi16(a2, a3);  // rows 4-7
  const __m128i columns[4] = {_mm_unpacklo_epi32(b0, b2), _mm_unpackhi_epi32(b0, b2),
                              _mm_unpacklo_epi32(b1, b3), _mm_unpackhi_epi32(b1, b3)};
  for (int j = 0; j < 4; ++j) {
    _mm_storel_epi64(reinterpret_cast<__m128i*>(dst + 2 * j * dst_stride), columns[j]);
    _mm_storel_epi64(reinterpret_cast<__m128i*>(dst + (2 * j + 1) * dst_stride),
                     _mm_unpackhi_epi64(columns[j], columns[j]));
  }
}

// clip8 on 8 lanes: clamping to [0, 2^30 - 1] before the shift gives 0 and 255 at the ends.
__attribute__((target("avx2"))) inline __m256i clip8_avx2(__m256i v) {
  const __m256i top = _mm256_set1_epi32((1 << kPrecisionBits << 8) - 1);
  return _mm256_srai_epi32(_mm256_min_epi32(_mm256_max_epi32(v, _mm256_setzero_si256()), top),
                           kPrecisionBits);
}

// 8 rows of `bytes` bytes (row i at rows + i * stride) to columns: byte j of row i goes to
// columns[8 * j + i].
void rows_to_columns(const uint8_t* rows, ptrdiff_t stride, int bytes, uint8_t* columns) {
  int j = 0;
  for (; j + 8 <= bytes; j += 8) transpose_8x8(rows + j, stride, columns + 8 * j, 8);
  for (; j < bytes; ++j)
    for (int i = 0; i < 8; ++i) columns[8 * j + i] = rows[i * stride + j];
}

// The inverse of rows_to_columns.
void columns_to_rows(const uint8_t* columns, int bytes, uint8_t* rows, ptrdiff_t stride) {
  int j = 0;
  for (; j + 8 <= bytes; j += 8) transpose_8x8(columns + 8 * j, 8, rows + j, stride);
  for (; j < bytes; ++j)
    for (int i = 0; i < 8; ++i) rows[i * stride + j] = columns[8 * j + i];
}

// The horizontal pass on 8 rows at once, one row per 32-bit lane: the rows' bytes are
// transposed so that 8 rows of one input byte are contiguous, summed tap by tap, and
// transposed back. Output pixels [x0, x0 + n) of rows in[0..8) go to out[0..8).
__attribute__((target("avx2"))) void horizontal_8_rows_avx2(const uint8_t* in, ptrdiff_t in_stride,
                                                            const AxisFilter& axis, int x0, int n,
                                                            uint8_t* out, ptrdiff_t out_stride) {
  const int first = 3 * axis.start[x0];
  const int end = 3 * (axis.start[x0 + n - 1] + axis.count[x0 + n - 1]);
  thread_local std::vector<uint8_t> columns, results;  // (bytes, 8)
  columns.resize(static_cast<size_t>(end - first) * 8);
  results.resize(static_cast<size_t>(3 * n) * 8);
  rows_to_columns(in + first, in_stride, end - first, columns.data());
  const __m256i half = _mm256_set1_epi32(1 << (kPrecisionBits - 1));
  const __m256i low_bytes =
      _mm256_setr_epi8(0, 4, 8, 12, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, 0, 4, 8, 12, -1,
                       -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1);
  for (int i = 0; i < n; ++i) {
    const int xx = x0 + i;
    const uint8_t* p = columns.data() + 8 * (3 * axis.start[xx] - first);
    const int32_t* k = &axis.k[static_cast<size_t>(xx) * axis.ksize];
    __m256i sum[3] = {half, half, half};
    for (int t = 0; t < axis.count[xx]; ++t, p += 24) {
      const __m256i w = _mm256_set1_epi32(k[t]);
      for (int c = 0; c < 3; ++c) {
        const __m256i v =
            _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p + 8 * c)));
        sum[c] = _mm256_add_epi32(sum[c], _mm256_mullo_epi32(v, w));
      }
    }
    for (int c = 0; c < 3; ++c) {
      const __m256i bytes =
          _mm256_shuffle_epi8(clip8_avx2(sum[c]), low_bytes);  // 4 bytes at the start of each half
      const uint32_t lo = static_cast<uint32_t>(_mm256_extract_epi32(bytes, 0));
      const uint32_t hi = static_cast<uint32_t>(_mm256_extract_epi32(bytes, 4));
      const uint64_t eight = lo | (static_cast<uint64_t>(hi) << 32);
      std::memcpy(results.data() + 8 * (3 * i + c), &eight, 8);
    }
  }
  columns_to_rows(results.data(), 3 * n, out, out_stride);
}
#endif

// One row of the vertical pass: bytes [begin, end) of the output row from `taps` input rows.
void vertical_row(const uint8_t* const* rows, const int32_t* k, int taps, int begin, int end,
                  uint8_t* out) {
  for (int j = begin; j < end; ++j) {
    int32_t sum = 1 << (kPrecisionBits - 1);
    for (int t = 0; t < taps; ++t) sum += rows[t][j] * k[t];
    out[j] = clip8(sum);
  }
}

#if defined(__x86_64__)
// vertical_row for 32 bytes at a time, sums in registers across the taps. Returns how many
// bytes it did.
__attribute__((target("avx2"))) int vertical_row_avx2(const uint8_t* const* rows, const int32_t* k,
                                                      int taps, int n, uint8_t* out) {
  const __m256i half = _mm256_set1_epi32(1 << (kPrecisionBits - 1));
  const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
  int j = 0;
  for (; j + 32 <= n; j += 32) {
    __m256i sum[4] = {half, half, half, half};
    for (int t = 0; t < taps; ++t) {
      const __m256i w = _mm256_set1_epi32(k[t]);
      const uint8_t* row = rows[t] + j;
      for (int q = 0; q < 4; ++q) {
        const __m256i v =
            _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(row + 8 * q)));
        sum[q] = _mm256_add_epi32(sum[q], _mm256_mullo_epi32(v, w));
      }
    }
    for (int q = 0; q < 4; ++q) sum[q] = clip8_avx2(sum[q]);
    // The packs interleave 4-byte groups across the 128-bit halves; the permute restores order.
    const __m256i bytes = _mm256_packus_epi16(_mm256_packus_epi32(sum[0], sum[1]),
                                              _mm256_packus_epi32(sum[2], sum[3]));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + j),
                        _mm256_permutevar8x32_epi32(bytes, order));
  }
  return j;
}
#endif

void convolve_window(const ImageView& in, int out_width, int out_height, Resample resample,
                     const Window& window, uint8_t* out, ptrdiff_t out_stride) {
  const bool horizontal = out_width != in.width;
  const bool vertical = out_height != in.height;
  const AxisFilter* v_axis = vertical ? &axis_filter(in.height, out_height, resample) : nullptr;
  // Input rows the vertical pass reads for the window's rows.
  int row_first = window.y, row_end = window.y + window.height;
  if (vertical) {
    row_first = v_axis->start[window.y];
    const int last = window.y + window.height - 1;
    row_end = v_axis->start[last] + v_axis->count[last];
  }
  // The horizontal pass over those rows, 8-bit like Pillow's intermediate image.
  ImageView source;
  if (horizontal) {
    const AxisFilter& h_axis = axis_filter(in.width, out_width, resample);
    const int rows = row_end - row_first;
    const ptrdiff_t stride = 3 * static_cast<ptrdiff_t>(window.width);
    thread_local std::vector<uint8_t> temp;  // (rows, window.width, 3), reused
    temp.resize(rows * stride);
    int y = 0;
#if defined(__x86_64__)
    if (use_avx2())
      for (; y + 8 <= rows; y += 8)
        horizontal_8_rows_avx2(in.row(row_first + y), in.stride, h_axis, window.x, window.width,
                               temp.data() + y * stride, stride);
#endif
    for (; y < rows; ++y)
      horizontal_row(in.row(row_first + y), h_axis, window.x, window.width,
                     temp.data() + y * stride);
    source = {temp.data(), window.width, rows, stride};
  } else {
    source = in.crop(window.x, row_first, window.width, row_end - row_first);
  }
  const int row_bytes = 3 * window.width;
  if (!vertical) {
    for (int y = 0; y < window.height; ++y)
      std::memcpy(out + y * out_stride, source.row(y), row_bytes);
    return;
  }
  std::vector<const uint8_t*> rows(v_axis->ksize);
  for (int y = 0; y < window.height; ++y) {
    const int yy = window.y + y;
    const int taps = v_axis->count[yy];
    const int32_t* k = &v_axis->k[static_cast<size_t>(yy) * v_axis->ksize];
    for (int t = 0; t < taps; ++t) rows[t] = source.row(v_axis->start[yy] - row_first + t);
    int done = 0;
#if defined(__x86_64__)
    if (use_avx2()) done = vertical_row_avx2(rows.data(), k, taps, row_bytes, out + y * out_stride);
#endif
    vertical_row(rows.data(), k, taps, done, row_bytes, out + y * out_stride);
  }
}

// Pillow's ImagingScaleAffine source coordinates: from a0 / 2, adding a0 each step, truncated
// (negative: -1); -1 also marks coordinates past the input.
std::vector<int> nearest_sources(int in_size, int out_size) {
  const double a0 = static_cast<double>(static_cast<float>(in_size) - 0.0f) / out_size;
  std::vector<int> sources(out_size);
  double position = 0.0 + a0 * 0.5;
  for (int x = 0; x < out_size; ++x) {
    const int source = position < 0.0 ? -1 : static_cast<int>(position);
    sources[x] = source < in_size ? source : -1;
    position += a0;
  }
  return sources;
}

void nearest_window(const ImageView& in, int out_width, int out_height, const Window& window,
                    uint8_t* out, ptrdiff_t out_stride) {
  const std::vector<int> xs = nearest_sources(in.width, out_width);
  const std::vector<int> ys = nearest_sources(in.height, out_height);
  for (int y = 0; y < window.height; ++y) {
    uint8_t* o = out + y * out_stride;
    const int sy = ys[window.y + y];
    for (int x = 0; x < window.width; ++x, o += 3) {
      const int sx = xs[window.x + x];
      if (sy < 0 || sx < 0) {
        o[0] = o[1] = o[2] = 0;  // Pillow fills what maps outside the input with black
      } else {
        std::memcpy(o, in.row(sy) + 3 * sx, 3);
      }
    }
  }
}

}  // namespace

Resample parse_resample(const std::string& name) {
  if (name == "nearest") return Resample::Nearest;
  if (name == "bilinear") return Resample::Bilinear;
  if (name == "bicubic") return Resample::Bicubic;
  engine::fail("resample: unknown filter '", name, "' (nearest, bilinear or bicubic)");
}

void set_resize_simd(bool enabled) { simd_allowed.store(enabled, std::memory_order_relaxed); }

const char* resample_name(Resample resample) {
  switch (resample) {
    case Resample::Nearest:
      return "nearest";
    case Resample::Bilinear:
      return "bilinear";
    case Resample::Bicubic:
      return "bicubic";
  }
  return "?";
}

void resize_window(const ImageView& in, int out_width, int out_height, Resample resample,
                   const Window& window, uint8_t* out, ptrdiff_t out_stride) {
  ENGINE_CHECK(in.width > 0 && in.height > 0 && out_width > 0 && out_height > 0,
               "resize: ", in.width, "x", in.height, " to ", out_width, "x", out_height,
               ": sizes must be positive");
  ENGINE_CHECK(window.x >= 0 && window.y >= 0 && window.width > 0 && window.height > 0 &&
                   window.x + window.width <= out_width && window.y + window.height <= out_height,
               "resize: window (", window.x, ", ", window.y, ") ", window.width, "x", window.height,
               " is not inside the ", out_width, "x", out_height, " output");
  if (resample == Resample::Nearest && (out_width != in.width || out_height != in.height)) {
    nearest_window(in, out_width, out_height, window, out, out_stride);
  } else {
    convolve_window(in, out_width, out_height, resample, window, out, out_stride);
  }
}

Image resize(const ImageView& in, int out_width, int out_height, Resample resample) {
  Image out(out_width, out_height);
  resize_window(in, out_width, out_height, resample, {0, 0, out_width, out_height},
                out.pixels.data(), 3 * static_cast<ptrdiff_t>(out_width));
  return out;
}

}  // namespace data
