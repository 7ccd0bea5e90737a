// Small .npy reader for the embedded Fashion-MNIST sample: uint8 ('|u1'), int64 ('<i8') and
// float32 ('<f4') arrays in C order (sknet::io::read_npy only converts float arrays). The header
// is parsed by sknet's strict .npy header parser; every malformed file is a sknet::FormatError.
#pragma once

#include <sknet/io/npy.hpp>

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

namespace fashion {

template <class T>
struct NpyArray {
  std::vector<std::size_t> shape;
  std::vector<T> values;
};

namespace detail {

template <class T>
const char* npy_descr();
template <>
inline const char* npy_descr<std::uint8_t>() {
  return "|u1";
}
template <>
inline const char* npy_descr<std::int64_t>() {
  return "<i8";
}
template <>
inline const char* npy_descr<float>() {
  return "<f4";
}

}  // namespace detail

/// Reads `path` as a C-order .npy array of exactly the dtype of T (uint8, int64 or float32; the
/// data is little-endian, as on every machine sknet supports).
template <class T>
NpyArray<T> read_npy_exact(const std::string& path) {
  using sknet::FormatError;
  const std::vector<unsigned char> bytes = sknet::io::detail::read_file(path);
  const auto fail = [&](const std::string& what) -> void { throw FormatError(path + ": " + what); };
  static const unsigned char magic[6] = {0x93, 'N', 'U', 'M', 'P', 'Y'};
  if (bytes.size() < 10 || std::memcmp(bytes.data(), magic, 6) != 0) fail("not a .npy file");
  const unsigned major = bytes[6];
  if (major < 1 || major > 3 || bytes[7] != 0) fail("unsupported .npy format version");
  const std::size_t preamble = major == 1 ? 10 : 12;
  if (bytes.size() < preamble) fail("file too short");
  const std::size_t header_len = major == 1 ? sknet::io::detail::load_le<std::uint16_t>(bytes.data() + 8)
                                            : sknet::io::detail::load_le<std::uint32_t>(bytes.data() + 8);
  if (header_len > bytes.size() - preamble) fail("header length runs past the end of the file");
  const std::string text(reinterpret_cast<const char*>(bytes.data() + preamble), header_len);
  const sknet::io::detail::NpyHeader header = sknet::io::detail::NpyHeaderParser(text, path).parse();
  const std::string want = detail::npy_descr<T>();
  const bool same = header.descr == want || (sizeof(T) == 1 && (header.descr == "<u1" || header.descr == "u1"));
  if (!same) fail("dtype '" + header.descr + "': expected '" + want + "'");
  if (header.fortran_order) fail("Fortran-order arrays are not supported");
  NpyArray<T> a;
  std::size_t numel = 1;
  for (std::uint64_t d : header.shape) {
    a.shape.push_back(static_cast<std::size_t>(d));
    numel *= static_cast<std::size_t>(d);
  }
  const std::size_t data_start = preamble + header_len;
  if (bytes.size() - data_start != numel * sizeof(T))
    fail("data size: expected " + std::to_string(numel * sizeof(T)) + " bytes for the shape, got " +
         std::to_string(bytes.size() - data_start));
  a.values.resize(numel);
  if (numel) std::memcpy(a.values.data(), bytes.data() + data_start, numel * sizeof(T));
  return a;
}

}  // namespace fashion
