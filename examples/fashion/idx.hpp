// sknet: reading IDX files (the MNIST / Fashion-MNIST format), plain or gzip'd.
//
// Format: a big-endian u32 magic 0x000008NN, where 0x08 is the unsigned-byte type code and NN
// the number of dimensions; then NN big-endian u32 extents; then the uint8 values in C order and
// nothing else. Labels are 0x00000801 (count), images 0x00000803 (count, rows, cols).
//
// A file whose first two bytes are the gzip magic (1f 8b) is decompressed with zlib first, so
// users of this header must link zlib (CMake: ZLIB::ZLIB). It belongs to the Fashion-MNIST
// example (and its test), not to the installed library, which does not need zlib.
//
// Decompression stops as soon as the output passes the size the IDX header declares (header +
// the product of the extents, at most kMaxIdxBytes), so a small gzip bomb costs at most that
// much memory before it is rejected. Every malformed file throws sknet::FormatError naming the
// source and the broken rule: bad magic, wrong dimension count, truncated or oversized data,
// corrupt or truncated gzip stream.
#pragma once

#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <sknet/error.hpp>
#include <sknet/io/bytes.hpp>

namespace fashion {

using sknet::FormatError;

/// Images of an IDX file with magic 0x00000803: `pixels` holds count * rows * cols bytes, image
/// i at [i * rows * cols, (i + 1) * rows * cols), row-major.
struct IdxImages {
  std::size_t count = 0, rows = 0, cols = 0;
  std::vector<std::uint8_t> pixels;
  const std::uint8_t* image(std::size_t i) const { return pixels.data() + i * rows * cols; }
};

/// Any unsigned-byte IDX array: its extents and values.
struct IdxArray {
  std::vector<std::size_t> dims;
  std::vector<std::uint8_t> values;
};

/// Upper bound on the size an IDX header may declare (2 GiB).
constexpr std::size_t kMaxIdxBytes = std::size_t(1) << 31;

namespace idx_detail {

inline std::uint32_t load_be32(const unsigned char* p) {
  return (std::uint32_t(p[0]) << 24) | (std::uint32_t(p[1]) << 16) | (std::uint32_t(p[2]) << 8) | std::uint32_t(p[3]);
}

inline std::string hex32(std::uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%08X", static_cast<unsigned>(v));
  return buf;
}

inline bool is_gzip(const unsigned char* data, std::size_t size) {
  return size >= 2 && data[0] == 0x1f && data[1] == 0x8b;
}

/// The total size (header + data) the IDX header at the start of `p` declares: 0 while the
/// first `n` bytes do not hold the whole header yet; `stop` when they show a malformed header
/// (parse_idx then reports it from the bytes so far).
inline std::uint64_t idx_declared_size(const unsigned char* p, std::size_t n, bool& stop) {
  stop = false;
  if (n < 4) return 0;
  const unsigned ndim = p[3];
  if (p[0] != 0 || p[1] != 0 || p[2] != 0x08 || ndim == 0) {
    stop = true;
    return 0;
  }
  const std::size_t header = 4 + 4 * std::size_t(ndim);
  if (n < header) return 0;
  std::uint64_t total = 1;
  for (unsigned d = 0; d < ndim; ++d) {
    const std::uint64_t extent = load_be32(p + 4 + 4 * d);
    if (extent != 0 && total > (std::uint64_t(1) << 62) / extent) {
      stop = true;
      return 0;
    }
    total *= extent;
  }
  return total + header;
}

/// Inflates one gzip stream holding an IDX file (trailing garbage after the stream is an
/// error). Stops with a FormatError as soon as the output passes the size the IDX header
/// declares, so at most that size plus one byte is ever decompressed.
inline std::vector<unsigned char> gunzip(const unsigned char* data, std::size_t size, const std::string& source,
                                         std::uint64_t max_bytes = kMaxIdxBytes) {
  z_stream zs;
  std::memset(&zs, 0, sizeof zs);
  if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK) throw FormatError(source + ": cannot initialise zlib");
  std::unique_ptr<z_stream, int (*)(z_stream*)> guard(&zs, &inflateEnd);
  std::vector<unsigned char> out;
  std::size_t consumed = 0;
  int rc = Z_OK;
  // The output grows in steps: the magic (4 bytes), then the extents, then the declared size
  // plus one byte, so that exceeding the declared size is seen.
  std::uint64_t declared = 0;
  for (;;) {
    if (zs.avail_in == 0 && consumed < size) {
      const std::size_t n = std::min<std::size_t>(size - consumed, std::numeric_limits<uInt>::max());
      zs.next_in = const_cast<Bytef*>(reinterpret_cast<const Bytef*>(data + consumed));
      zs.avail_in = static_cast<uInt>(n);
      consumed += n;
    }
    const std::uint64_t limit = declared != 0 ? declared + 1 : out.size() < 4 ? 4 : 4 + 4 * std::uint64_t(out[3]);
    const std::size_t room = static_cast<std::size_t>(std::min<std::uint64_t>(limit - out.size(), 1 << 16));
    const std::size_t before = out.size();
    out.resize(before + room);
    zs.next_out = out.data() + before;
    zs.avail_out = static_cast<uInt>(room);
    rc = inflate(&zs, Z_NO_FLUSH);
    out.resize(before + room - zs.avail_out);
    if (declared == 0) {
      bool stop = false;
      declared = idx_declared_size(out.data(), out.size(), stop);
      if (stop) return out;  // parse_idx reports the malformed header
      if (declared > max_bytes)
        throw FormatError(source + ": the IDX header declares " + std::to_string(declared) +
                          " bytes, more than the " + std::to_string(max_bytes) + "-byte limit");
    }
    if (declared != 0 && out.size() > declared)
      throw FormatError(source + ": gzip stream decompresses to more than the " + std::to_string(declared) +
                        " bytes its IDX header declares (stopped after " + std::to_string(out.size()) + " bytes)");
    if (rc == Z_STREAM_END) break;
    if (rc == Z_BUF_ERROR && zs.avail_in == 0 && consumed == size)
      throw FormatError(source + ": truncated gzip stream: the compressed data ends after " + std::to_string(size) +
                        " bytes, before the end of the stream");
    if (rc != Z_OK && rc != Z_BUF_ERROR)
      throw FormatError(source + ": corrupt gzip stream: " + (zs.msg ? zs.msg : "zlib error " + std::to_string(rc)));
  }
  const std::size_t trailing = zs.avail_in + (size - consumed);
  if (trailing != 0)
    throw FormatError(source + ": " + std::to_string(trailing) + " trailing byte(s) after the gzip stream");
  return out;
}

inline std::vector<unsigned char> read_whole_file(const std::string& path) {
  return sknet::io::detail::read_file(path);  // regular files only (a FIFO would block)
}

}  // namespace idx_detail

/// Parses IDX bytes (plain or gzip'd) of unsigned bytes. `expected_ndim` > 0 requires that many
/// dimensions; `what` ("images", "labels") is used in messages.
inline IdxArray parse_idx(const unsigned char* data, std::size_t size, const std::string& source,
                          unsigned expected_ndim = 0, const std::string& what = "IDX") {
  std::vector<unsigned char> inflated;
  if (idx_detail::is_gzip(data, size)) {
    inflated = idx_detail::gunzip(data, size, source);
    data = inflated.data();
    size = inflated.size();
  }
  const auto fail = [&](const std::string& msg) -> void { throw FormatError(source + ": " + msg); };
  const std::string want_magic =
      expected_ndim ? idx_detail::hex32(0x00000800u | expected_ndim) + " (" + what + ")" : "0x000008NN";
  if (size < 4)
    fail("file too short for the IDX magic: expected at least 4 bytes, got " + std::to_string(size));
  const std::uint32_t magic = idx_detail::load_be32(data);
  const unsigned ndim = data[3];
  if (data[0] != 0 || data[1] != 0 || data[2] != 0x08 || ndim == 0 || (expected_ndim && ndim != expected_ndim))
    fail("bad IDX magic: expected " + want_magic + ", got " + idx_detail::hex32(magic) +
         (data[0] == 0 && data[1] == 0 && data[2] == 0x08 && ndim
              ? " (an unsigned-byte IDX file with " + std::to_string(ndim) + " dimension(s))"
              : ""));
  const std::size_t header = 4 + 4 * std::size_t(ndim);
  if (size < header)
    fail("truncated header: expected " + std::to_string(header) + " bytes for " + std::to_string(ndim) +
         " dimension(s), got " + std::to_string(size));
  IdxArray a;
  std::uint64_t numel = 1;
  std::string dims_text;
  for (unsigned d = 0; d < ndim; ++d) {
    const std::uint32_t extent = idx_detail::load_be32(data + 4 + 4 * d);
    a.dims.push_back(extent);
    dims_text += (d ? " x " : "") + std::to_string(extent);
    if (extent != 0 && numel > (std::uint64_t(1) << 40) / extent) fail("dimensions " + dims_text + "... overflow");
    numel *= extent;
  }
  const std::uint64_t available = size - header;
  if (available < numel)
    fail("truncated data: dimensions " + dims_text + " need " + std::to_string(numel) + " bytes, got " +
         std::to_string(available));
  if (available > numel)
    fail("size does not match the dimensions " + dims_text + ": expected " + std::to_string(numel) +
         " data bytes, got " + std::to_string(available) + " (" + std::to_string(available - numel) + " extra)");
  a.values.assign(data + header, data + size);
  return a;
}

/// Images from IDX bytes (magic 0x00000803: count, rows, cols).
inline IdxImages parse_idx_images(const unsigned char* data, std::size_t size, const std::string& source) {
  IdxArray a = parse_idx(data, size, source, 3, "images");
  IdxImages images;
  images.count = a.dims[0];
  images.rows = a.dims[1];
  images.cols = a.dims[2];
  images.pixels = std::move(a.values);
  return images;
}

/// Labels from IDX bytes (magic 0x00000801: count).
inline std::vector<std::uint8_t> parse_idx_labels(const unsigned char* data, std::size_t size,
                                                  const std::string& source) {
  return parse_idx(data, size, source, 1, "labels").values;
}

/// Reads an IDX image file (gzip'd or plain); FormatError names `path`.
inline IdxImages read_idx_images(const std::string& path) {
  const std::vector<unsigned char> bytes = idx_detail::read_whole_file(path);
  return parse_idx_images(bytes.data(), bytes.size(), path);
}

/// Reads an IDX label file (gzip'd or plain); FormatError names `path`.
inline std::vector<std::uint8_t> read_idx_labels(const std::string& path) {
  const std::vector<unsigned char> bytes = idx_detail::read_whole_file(path);
  return parse_idx_labels(bytes.data(), bytes.size(), path);
}

/// Reads an images file and its labels file and checks they belong together: the same count,
/// and every label below `num_classes` (when > 0).
inline std::pair<IdxImages, std::vector<std::uint8_t>> read_idx_dataset(const std::string& images_path,
                                                                        const std::string& labels_path,
                                                                        unsigned num_classes = 0) {
  IdxImages images = read_idx_images(images_path);
  std::vector<std::uint8_t> labels = read_idx_labels(labels_path);
  if (labels.size() != images.count)
    throw FormatError(labels_path + ": dims mismatch: expected " + std::to_string(images.count) +
                      " labels (the image count of " + images_path + "), got " + std::to_string(labels.size()));
  if (num_classes)
    for (std::size_t i = 0; i < labels.size(); ++i)
      if (labels[i] >= num_classes)
        throw FormatError(labels_path + ": label " + std::to_string(i) + ": expected 0.." +
                          std::to_string(num_classes - 1) + ", got " + std::to_string(labels[i]));
  return {std::move(images), std::move(labels)};
}

}  // namespace fashion
