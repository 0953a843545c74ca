// Image decoding (see decode.h): format sniffing, JPEG through TurboJPEG, PNG/BMP/GIF through
// stb_image with the checks and fix-ups that make it agree with Pillow, PGM/PPM by hand.
#include "data/decode.h"

#include <fcntl.h>
#include <stb_image.h>
#include <sys/stat.h>
#include <turbojpeg.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <memory>
#include <utility>

#include "engine/core/printable.h"
#include "engine/io/user_files.h"

namespace data {

namespace {

uint16_t le16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | (p[1] << 8)); }
uint32_t le32(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) | (static_cast<uint32_t>(p[1]) << 8) |
         (static_cast<uint32_t>(p[2]) << 16) | (static_cast<uint32_t>(p[3]) << 24);
}

// Refuses empty images and images over the pixel limit, from the header's size alone.
void check_size(const std::string& name, ImageFormat format, int64_t width, int64_t height,
                int64_t max_pixels) {
  ENGINE_CHECK(width > 0 && height > 0, name, ": ", format_name(format), " image is ", width, "x",
               height, " (no pixels)");
  // A forged header's width * height can pass 64 bits: checked as it is computed.
  int64_t pixels = 0;
  const bool overflows = __builtin_mul_overflow(width, height, &pixels);
  ENGINE_CHECK(!overflows && pixels <= max_pixels, name, ": ", format_name(format), " image is ",
               width, "x", height, " (", overflows ? "over 2^63" : std::to_string(pixels),
               " pixels), over the limit of ", max_pixels, " pixels");
}

// --- JPEG ---------------------------------------------------------------------------------

// One TurboJPEG decompressor per thread, created on first use.
tjhandle jpeg_decompressor() {
  struct Handle {
    tjhandle handle = tjInitDecompress();
    ~Handle() {
      if (handle) tjDestroy(handle);
    }
  };
  thread_local Handle instance;
  ENGINE_CHECK(instance.handle,
               "TurboJPEG: cannot create a decompressor: ", tjGetErrorStr2(nullptr));
  return instance.handle;
}

// Pillow's MULDIV255: a * b / 255 with its rounding.
inline int muldiv255(int a, int b) {
  const int t = a * b + 128;
  return ((t >> 8) + t) >> 8;
}

Image decode_jpeg(const uint8_t* bytes, size_t size, const std::string& name, int64_t max_pixels) {
  tjhandle tj = jpeg_decompressor();
  int width = 0, height = 0, subsampling = 0, colorspace = 0;
  if (tjDecompressHeader3(tj, bytes, size, &width, &height, &subsampling, &colorspace) != 0)
    engine::fail(name, ": cannot read the JPEG header: ", tjGetErrorStr2(tj));
  // TurboJPEG reports success with a 0x0 size when the data ends before a frame header.
  ENGINE_CHECK(width > 0 && height > 0, name,
               ": cannot read the JPEG header: no frame header (corrupt or truncated file)");
  check_size(name, ImageFormat::Jpeg, width, height, max_pixels);
  const bool cmyk = colorspace == TJCS_CMYK || colorspace == TJCS_YCCK;
  Image image(width, height);
  std::vector<uint8_t> cmyk_pixels(cmyk ? static_cast<size_t>(width) * height * 4
                                        : 0);  // (H, W, 4)
  uint8_t* target = cmyk ? cmyk_pixels.data() : image.pixels.data();
  if (tjDecompress2(tj, bytes, size, target, width, 0, height, cmyk ? TJPF_CMYK : TJPF_RGB, 0) !=
      0) {
    // libjpeg warns and carries on at corrupt data (Pillow accepts the result too), but running
    // out of data is a truncated file, which Pillow refuses.
    const std::string message = tjGetErrorStr2(tj);
    if (tjGetErrorCode(tj) != TJERR_WARNING || message.find("Premature end") != std::string::npos)
      engine::fail(name, ": cannot decode the JPEG: ", message);
  }
  if (cmyk) {
    // Pillow reads 4-component JPEGs as inverted (Adobe) CMYK, then converts each channel as
    // nk - nk * c / 255 with nk = 255 - k; with the inversion, nk is the stored K.
    const uint8_t* in = cmyk_pixels.data();
    uint8_t* out = image.pixels.data();
    for (size_t i = 0; i < static_cast<size_t>(width) * height; ++i, in += 4, out += 3) {
      const int nk = in[3];
      for (int c = 0; c < 3; ++c) out[c] = static_cast<uint8_t>(nk - muldiv255(255 - in[c], nk));
    }
  }
  return image;
}

// --- stb_image formats ----------------------------------------------------------------------

// An empty IEND chunk: length, type, CRC.
const uint8_t kPngEnd[12] = {0, 0, 0, 0, 'I', 'E', 'N', 'D', 0xAE, 0x42, 0x60, 0x82};

// stb_image's reason for the last failure, made printable: some quote the file's bytes (an
// unknown PNG chunk's type) and some are empty.
std::string stb_reason() {
  const char* reason = stbi_failure_reason();
  return reason && reason[0] ? engine::printable(reason) : "corrupt or truncated data";
}

struct StbFree {
  void operator()(void* p) const { stbi_image_free(p); }
};

// Uncompressed BMP data must fit in the file: stb_image reads zeros past the end, where Pillow
// reports a truncated file.
void check_bmp_length(const uint8_t* bytes, size_t size, const std::string& name, int64_t width,
                      int64_t height) {
  const bool os2 = le32(bytes + 14) == 12;  // BITMAPCOREHEADER: no compression field
  ENGINE_CHECK(os2 || size >= 34, name, ": truncated BMP header");
  const int64_t bits = le16(bytes + (os2 ? 24 : 28));
  const uint32_t compression = os2 ? 0 : le32(bytes + 30);
  ENGINE_CHECK(compression != 1 && compression != 2, name,
               ": run-length encoded BMPs are not supported");
  const int64_t needed = le32(bytes + 10) + (width * bits + 31) / 32 * 4 * height;
  ENGINE_CHECK(needed <= static_cast<int64_t>(size), name, ": truncated BMP: ", size,
               " bytes, the pixels need ", needed);
}

// The first frame of a GIF as Pillow sees it: where it lies on the screen, the palette it uses,
// and the index that fills the screen around it.
struct GifFrame {
  int left = 0, top = 0, width = 0, height = 0;
  const uint8_t* palette = nullptr;  // (entries, 3)
  int palette_entries = 0;
  int fill_index = 0;  // the transparent index, or 0
};

// Walks the GIF blocks up to the end of the first frame's data (which must be in the file) and
// clears the transparency flags in `bytes` so that stb_image paints transparent pixels with their
// palette colour, as Pillow's convert("RGB") does.
GifFrame prepare_gif(std::vector<uint8_t>& bytes, const std::string& name) {
  const size_t size = bytes.size();
  auto need = [&](size_t end) { ENGINE_CHECK(end <= size, name, ": truncated GIF"); };
  need(13);
  GifFrame frame;
  size_t at = 13;
  if (bytes[10] & 0x80) {
    frame.palette = bytes.data() + at;
    frame.palette_entries = 2 << (bytes[10] & 7);
    at += 3 * frame.palette_entries;
  }
  auto skip_sub_blocks = [&] {
    for (;;) {
      need(at + 1);
      const uint8_t length = bytes[at++];
      if (length == 0) return;
      at += length;
    }
  };
  for (;;) {
    need(at + 1);
    const uint8_t block = bytes[at++];
    if (block == 0x21) {  // extension: label, then sub-blocks
      need(at + 1);
      const uint8_t label = bytes[at++];
      if (label == 0xF9) {  // graphic control: size 4, flags, delay (2), transparent index
        need(at + 5);
        frame.fill_index = (bytes[at + 1] & 1) ? bytes[at + 4] : 0;
        bytes[at + 1] &= static_cast<uint8_t>(~1u);
      }
      skip_sub_blocks();
    } else if (block == 0x2C) {  // image descriptor: the first frame
      need(at + 9);
      frame.left = le16(&bytes[at]);
      frame.top = le16(&bytes[at + 2]);
      frame.width = le16(&bytes[at + 4]);
      frame.height = le16(&bytes[at + 6]);
      const uint8_t flags = bytes[at + 8];
      at += 9;
      if (flags & 0x80) {
        frame.palette = bytes.data() + at;
        frame.palette_entries = 2 << (flags & 7);
        at += 3 * frame.palette_entries;
      }
      need(at + 1);
      ++at;  // LZW minimum code size
      skip_sub_blocks();
      return frame;
    } else {
      engine::fail(name, ": GIF has no image before ",
                   block == 0x3B ? "its end" : "an unknown block (corrupt file)");
    }
  }
}

// Pixels of the screen outside the first frame take the fill index's colour.
void fill_around_gif_frame(Image& image, const GifFrame& frame) {
  uint8_t colour[3] = {0, 0, 0};
  if (frame.fill_index < frame.palette_entries)
    std::memcpy(colour, frame.palette + 3 * frame.fill_index, 3);
  for (int y = 0; y < image.height; ++y) {
    const bool row_inside = y >= frame.top && y < frame.top + frame.height;
    uint8_t* row = image.row(y);
    for (int x = 0; x < image.width; ++x)
      if (!row_inside || x < frame.left || x >= frame.left + frame.width)
        std::memcpy(row + 3 * x, colour, 3);
  }
}

// Width and height from the header, before stb_image sees the file: its own limits would
// otherwise answer first, and less clearly.
std::pair<int64_t, int64_t> stb_format_size(const uint8_t* bytes, size_t size, ImageFormat format,
                                            const std::string& name) {
  auto be32 = [&](size_t at) {
    return static_cast<int64_t>((uint32_t{bytes[at]} << 24) | (uint32_t{bytes[at + 1]} << 16) |
                                (uint32_t{bytes[at + 2]} << 8) | bytes[at + 3]);
  };
  switch (format) {
    case ImageFormat::Png:
      ENGINE_CHECK(size >= 24 && std::memcmp(bytes + 12, "IHDR", 4) == 0, name,
                   ": PNG has no IHDR header (corrupt or truncated)");
      return {be32(16), be32(20)};
    case ImageFormat::Gif:
      ENGINE_CHECK(size >= 10, name, ": truncated GIF header");
      return {le16(bytes + 6), le16(bytes + 8)};
    default: {
      ENGINE_CHECK(size >= 26, name, ": truncated BMP header");
      if (le32(bytes + 14) == 12) return {le16(bytes + 18), le16(bytes + 20)};  // OS/2 header
      const int64_t height = static_cast<int32_t>(le32(bytes + 22));  // negative: top-down rows
      return {static_cast<int32_t>(le32(bytes + 18)), height < 0 ? -height : height};
    }
  }
}

Image decode_with_stb(const uint8_t* bytes, size_t size, ImageFormat format,
                      const std::string& name, int64_t max_pixels) {
  const auto [header_width, header_height] = stb_format_size(bytes, size, format, name);
  check_size(name, format, header_width, header_height, max_pixels);
  ENGINE_CHECK(size <= INT32_MAX, name, ": file too large (", size, " bytes)");
  int length = static_cast<int>(size);
  if (format == ImageFormat::Bmp) check_bmp_length(bytes, size, name, header_width, header_height);
  int width = 0, height = 0, channels = 0;
  if (!stbi_info_from_memory(bytes, length, &width, &height, &channels))
    engine::fail(name, ": cannot read the ", format_name(format), " header: ", stb_reason());

  // Files stb_image needs changed: GIFs (see prepare_gif) and PNGs whose IEND chunk is missing
  // (Pillow stops after the image data; stb_image reads on and fails).
  std::vector<uint8_t> patched;
  GifFrame gif;
  if (format == ImageFormat::Gif) {
    patched.assign(bytes, bytes + size);
    gif = prepare_gif(patched, name);
  } else if (format == ImageFormat::Png && std::memcmp(bytes + size - 8, "IEND", 4) != 0) {
    patched.assign(bytes, bytes + size);
    patched.insert(patched.end(), kPngEnd, kPngEnd + sizeof(kPngEnd));
  }
  if (!patched.empty()) {
    bytes = patched.data();
    ENGINE_CHECK(patched.size() <= INT32_MAX, name, ": file too large");
    length = static_cast<int>(patched.size());
  }

  Image image(width, height);
  const size_t count = static_cast<size_t>(width) * height;
  int w = 0, h = 0, c = 0;
  if (format == ImageFormat::Png && stbi_is_16_bit_from_memory(bytes, length)) {
    // Gray (+ alpha) as one channel, colour (+ alpha) as three; Pillow keeps the high byte,
    // except for plain 16-bit gray, whose mode "I" clips on conversion.
    const int wanted = channels <= 2 ? 1 : 3;
    std::unique_ptr<uint16_t, StbFree> pixels(
        stbi_load_16_from_memory(bytes, length, &w, &h, &c, wanted));
    if (!pixels) engine::fail(name, ": cannot decode the PNG: ", stb_reason());
    const uint16_t* in = pixels.get();
    uint8_t* out = image.pixels.data();
    if (wanted == 3) {
      for (size_t i = 0; i < 3 * count; ++i) out[i] = static_cast<uint8_t>(in[i] >> 8);
    } else {
      for (size_t i = 0; i < count; ++i) {
        const uint16_t v = in[i];
        out[3 * i] = out[3 * i + 1] = out[3 * i + 2] =
            static_cast<uint8_t>(channels == 1 ? (v > 255 ? 255 : v) : v >> 8);
      }
    }
  } else {
    std::unique_ptr<uint8_t, StbFree> pixels(stbi_load_from_memory(bytes, length, &w, &h, &c, 3));
    if (!pixels)
      engine::fail(name, ": cannot decode the ", format_name(format), ": ", stb_reason());
    std::memcpy(image.pixels.data(), pixels.get(), 3 * count);
  }
  ENGINE_CHECK(w == width && h == height, name, ": decoded size ", w, "x", h,
               " differs from the header's ", width, "x", height);
  if (format == ImageFormat::Gif) fill_around_gif_frame(image, gif);
  return image;
}

// --- PGM / PPM (binary) ---------------------------------------------------------------------

bool is_pnm_space(uint8_t c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

Image decode_pnm(const uint8_t* bytes, size_t size, const std::string& name, int64_t max_pixels) {
  size_t at = 2;
  // The next header number, after whitespace and '#' comments.
  auto number = [&](const char* what) {
    for (;;) {
      while (at < size && is_pnm_space(bytes[at])) ++at;
      if (at >= size || bytes[at] != '#') break;
      while (at < size && bytes[at] != '\n' && bytes[at] != '\r') ++at;
    }
    ENGINE_CHECK(at < size && bytes[at] >= '0' && bytes[at] <= '9', name, ": PNM header has no ",
                 what);
    int64_t value = 0;
    while (at < size && bytes[at] >= '0' && bytes[at] <= '9') {
      value = value * 10 + (bytes[at++] - '0');
      ENGINE_CHECK(value <= INT32_MAX, name, ": PNM ", what, " is too large");
    }
    return value;
  };
  const bool colour = bytes[1] == '6';
  const int64_t width = number("width");
  const int64_t height = number("height");
  const int64_t maxval = number("maxval");
  ++at;  // the single whitespace byte before the samples
  check_size(name, ImageFormat::Pnm, width, height, max_pixels);
  ENGINE_CHECK(maxval == 255 || maxval == 65535, name, ": PNM maxval ", maxval,
               " is not supported (only 255 and 65535)");
  const int64_t sample_bytes = maxval == 255 ? 1 : 2;
  const int64_t channels = colour ? 3 : 1;
  const int64_t count = width * height;
  ENGINE_CHECK(at <= size && static_cast<int64_t>(size - at) >= count * channels * sample_bytes,
               name, ": truncated PNM: ", width, "x", height, " needs ",
               count * channels * sample_bytes, " bytes of samples");
  Image image(static_cast<int>(width), static_cast<int>(height));
  const uint8_t* in = bytes + at;
  uint8_t* out = image.pixels.data();
  for (int64_t i = 0; i < count * channels; ++i) {
    // 16-bit samples are big-endian: colour rounds v * 255 / 65535, gray clips (Pillow's mode "I").
    int v = in[i];
    if (sample_bytes == 2) {
      v = (in[2 * i] << 8) | in[2 * i + 1];
      v = colour ? (v * 255 + 32767) / 65535 : std::min(v, 255);
    }
    if (colour) {
      out[i] = static_cast<uint8_t>(v);
    } else {
      out[3 * i] = out[3 * i + 1] = out[3 * i + 2] = static_cast<uint8_t>(v);
    }
  }
  return image;
}

}  // namespace

const char* format_name(ImageFormat format) {
  switch (format) {
    case ImageFormat::Jpeg:
      return "JPEG";
    case ImageFormat::Png:
      return "PNG";
    case ImageFormat::Bmp:
      return "BMP";
    case ImageFormat::Gif:
      return "GIF";
    case ImageFormat::Pnm:
      return "PNM";
    case ImageFormat::Unknown:
      break;
  }
  return "unknown";
}

ImageFormat detect_format(const uint8_t* bytes, size_t size) {
  auto starts_with = [&](const char* magic, size_t n) {
    return size >= n && std::memcmp(bytes, magic, n) == 0;
  };
  if (starts_with("\xFF\xD8\xFF", 3)) return ImageFormat::Jpeg;
  if (starts_with("\x89PNG\r\n\x1A\n", 8)) return ImageFormat::Png;
  if (starts_with("GIF87a", 6) || starts_with("GIF89a", 6)) return ImageFormat::Gif;
  if (starts_with("BM", 2)) return ImageFormat::Bmp;
  if ((starts_with("P5", 2) || starts_with("P6", 2)) && size > 2 && is_pnm_space(bytes[2]))
    return ImageFormat::Pnm;
  return ImageFormat::Unknown;
}

Image decode_image(const uint8_t* bytes, size_t size, const std::string& name, int64_t max_pixels) {
  ENGINE_CHECK(size > 0, name, ": empty file");
  const ImageFormat format = detect_format(bytes, size);
  switch (format) {
    case ImageFormat::Jpeg:
      return decode_jpeg(bytes, size, name, max_pixels);
    case ImageFormat::Png:
    case ImageFormat::Bmp:
    case ImageFormat::Gif:
      return decode_with_stb(bytes, size, format, name, max_pixels);
    case ImageFormat::Pnm:
      return decode_pnm(bytes, size, name, max_pixels);
    case ImageFormat::Unknown:
      break;
  }
  engine::fail(name, ": not an image this pipeline reads (JPEG, PNG, BMP, GIF, binary PGM/PPM)");
}

std::vector<uint8_t> read_file(const std::string& path) {
  const int fd = engine::open_input_file(path);
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  struct stat info;
  ENGINE_CHECK(::fstat(fd, &info) == 0, path, ": cannot read its size: ", std::strerror(errno));
  std::vector<uint8_t> bytes(static_cast<size_t>(info.st_size));
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::read(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    ENGINE_CHECK(n > 0, path, ": read failed after ", done, " of ", bytes.size(), " bytes",
                 n < 0 ? std::string(": ") + std::strerror(errno) : std::string());
    done += static_cast<size_t>(n);
  }
  return bytes;
}

Image read_image(const std::string& path, int64_t max_pixels) {
  const std::vector<uint8_t> bytes = read_file(path);
  return decode_image(bytes.data(), bytes.size(), path, max_pixels);
}

}  // namespace data
