// Image decoding to 8-bit RGB, pixel for pixel what Pillow 9.4's Image.open(f).convert("RGB")
// gives: JPEG through libjpeg-turbo (the decoder Pillow uses; accurate DCT, fancy upsampling),
// PNG, BMP and GIF (first frame) through stb_image, binary PGM/PPM by hand. The format comes from
// the file's first bytes, never its name. No EXIF rotation (the reference applies none).
//
// Conversions, as Pillow does them (checked against Pillow on generated files):
//  - gray replicates; palette images look their indices up; alpha is dropped, not composited;
//  - 16-bit PNG: RGB, RGBA and gray+alpha keep the high byte of each sample; 16-bit PPM rounds
//    v * 255 / 65535; 16-bit gray (PNG and PGM) opens in Pillow as mode "I", whose conversion
//    clips (v > 255 becomes 255) instead of scaling;
//  - GIF: the first frame; its transparent index shows its palette colour (Pillow ignores
//    transparency in convert("RGB")), and the screen outside the frame takes the colour of the
//    transparent index, or of index 0 when there is none;
//  - CMYK/YCCK JPEG: Pillow assumes Adobe's inverted CMYK and converts with
//    R = K - K * (255 - C) / 255 (its rounding), done the same way here;
//  - a truncated JPEG is an error (Pillow: "image file is truncated"); libjpeg's warnings about
//    corrupt but complete data are not (Pillow decodes those too).
// Known differences, all rare: 16-bit (5-5-5) BMPs are scaled by bit replication (Pillow
// truncates v * 255 / 31); RLE BMPs, plain-text PNM and PNM maxvals other than 255 and 65535
// are refused (Pillow reads them); PNG chunk CRCs are not checked (Pillow checks those of the
// header chunks).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "data/image.h"

namespace data {

// Pillow's Image.MAX_IMAGE_PIXELS: larger images are refused before any pixel is allocated.
constexpr int64_t kDefaultMaxPixels = 89478485;

enum class ImageFormat { Unknown, Jpeg, Png, Bmp, Gif, Pnm };

const char* format_name(ImageFormat format);
// The format from the magic number at the start of `bytes`.
ImageFormat detect_format(const uint8_t* bytes, size_t size);

// Decodes an image held in memory; `name` (usually the path) starts every error message.
// Errors: unknown format, corrupt or truncated data, a 0x0 image, more than max_pixels pixels
// (checked from the header, before decoding).
Image decode_image(const uint8_t* bytes, size_t size, const std::string& name,
                   int64_t max_pixels = kDefaultMaxPixels);

// The whole file, or an error naming the path.
std::vector<uint8_t> read_file(const std::string& path);

// read_file + decode_image.
Image read_image(const std::string& path, int64_t max_pixels = kDefaultMaxPixels);

}  // namespace data
