// sknet: reading and writing safetensors checkpoints (the format timm and Hugging Face publish).
//
// Format: u64 little-endian header length N, N bytes of UTF-8 JSON (an object, space-padded),
// then the data section. Each header entry other than "__metadata__" is
//   "name": {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]}
// with offsets relative to the data section; tensors are little-endian, C order, and must tile
// the data section exactly (no overlap, no hole, nothing after the last tensor).
//
// parse_safetensors validates all of that and throws sknet::FormatError naming the source and
// the broken rule; it never trusts a size or offset before checking it against the buffer.
#pragma once

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <map>
#include <set>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "sknet/error.hpp"
#include "sknet/io/bytes.hpp"
#include "sknet/state_dict.hpp"
#include "sknet/tensor.hpp"

namespace sknet {
namespace io {

/// The element types sknet reads: floats of 16/32/64 bits and I64 (for BN's num_batches_tracked).
enum class DType { F16, BF16, F32, F64, I64 };

/// The safetensors spelling: "F16", "BF16", "F32", "F64", "I64".
inline const char* dtype_name(DType dtype) {
  switch (dtype) {
    case DType::F16:
      return "F16";
    case DType::BF16:
      return "BF16";
    case DType::F32:
      return "F32";
    case DType::F64:
      return "F64";
    case DType::I64:
      return "I64";
  }
  return "?";
}

/// Bytes per element.
inline std::size_t dtype_size(DType dtype) {
  switch (dtype) {
    case DType::F16:
    case DType::BF16:
      return 2;
    case DType::F32:
      return 4;
    case DType::F64:
    case DType::I64:
      return 8;
  }
  return 0;
}

/// One tensor as stored: dtype, shape and its little-endian, C-ordered bytes.
struct RawTensor {
  DType dtype = DType::F32;
  std::vector<std::int64_t> shape;
  std::vector<unsigned char> bytes;
};

/// The whole file: tensors by name and the "__metadata__" strings.
struct SafetensorsFile {
  std::map<std::string, RawTensor> tensors;
  std::map<std::string, std::string> metadata;
};

/// IEEE binary16 bits -> float (exact: subnormals, signed zeros, infinities, NaN payloads).
inline float half_to_float(std::uint16_t bits) {
  const std::uint32_t sign = static_cast<std::uint32_t>(bits & 0x8000u) << 16;
  const std::uint32_t exponent = (bits >> 10) & 0x1Fu;
  const std::uint32_t mantissa = bits & 0x3FFu;
  std::uint32_t out = 0;
  if (exponent == 0x1F) {
    out = sign | 0x7F800000u | (mantissa << 13);  // inf, or NaN keeping its payload (and quiet bit)
  } else if (exponent != 0) {
    out = sign | ((exponent + (127 - 15)) << 23) | (mantissa << 13);
  } else if (mantissa != 0) {
    // Subnormal: mantissa * 2^-24, normal as a float. Shift the leading 1 up to bit 10.
    std::uint32_t m = mantissa;
    std::uint32_t e = 127 - 15 + 1;
    while ((m & 0x400u) == 0) {
      m <<= 1;
      --e;
    }
    out = sign | (e << 23) | ((m & 0x3FFu) << 13);
  } else {
    out = sign;  // +-0
  }
  float f;
  std::memcpy(&f, &out, sizeof f);
  return f;
}

/// bfloat16 bits -> float (exact: bfloat16 is the top half of a float).
inline float bfloat16_to_float(std::uint16_t bits) {
  const std::uint32_t out = static_cast<std::uint32_t>(bits) << 16;
  float f;
  std::memcpy(&f, &out, sizeof f);
  return f;
}

namespace detail {

/// Position of the first byte that breaks UTF-8 (overlong forms, surrogates and code points
/// above U+10FFFF are invalid), or `size` when the whole range is valid.
inline std::size_t utf8_error_position(const unsigned char* s, std::size_t size) {
  std::size_t i = 0;
  while (i < size) {
    const unsigned char c = s[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    std::size_t n = 0;
    unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the second byte
    if (c >= 0xC2 && c <= 0xDF) {
      n = 1;
    } else if (c >= 0xE0 && c <= 0xEF) {
      n = 2;
      if (c == 0xE0) lo = 0xA0;
      if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      n = 3;
      if (c == 0xF0) lo = 0x90;
      if (c == 0xF4) hi = 0x8F;
    } else {
      return i;
    }
    if (size - i <= n) return i;
    if (s[i + 1] < lo || s[i + 1] > hi) return i;
    for (std::size_t k = 2; k <= n; ++k)
      if ((s[i + k] & 0xC0) != 0x80) return i;
    i += n + 1;
  }
  return size;
}

/// A JSON value described for an error message without recursing into it.
inline std::string describe(const nlohmann::json& j) {
  switch (j.type()) {
    case nlohmann::json::value_t::string:
      return "string " + quote_name(j.get_ref<const std::string&>());
    case nlohmann::json::value_t::number_integer:
    case nlohmann::json::value_t::number_unsigned:
    case nlohmann::json::value_t::number_float:
    case nlohmann::json::value_t::boolean:
    case nlohmann::json::value_t::null:
      return std::string(j.type_name()) + " " + j.dump();
    case nlohmann::json::value_t::array: {
      const bool flat = j.size() <= 4 && std::all_of(j.begin(), j.end(), [](const nlohmann::json& e) {
                          return e.is_primitive() && (!e.is_string() || e.get_ref<const std::string&>().size() <= 16);
                        });
      return flat ? j.dump() : "an array of " + std::to_string(j.size()) + " element(s)";
    }
    case nlohmann::json::value_t::object:
      return "an object";
    default:
      return j.type_name();
  }
}

/// A JSON integer >= 0 (unsigned or signed); floats such as 2.0 do not count.
inline bool json_nonnegative_integer(const nlohmann::json& j, std::uint64_t& out) {
  if (j.is_number_unsigned()) {
    out = j.get<std::uint64_t>();
    return true;
  }
  if (j.is_number_integer() && j.get<std::int64_t>() >= 0) {
    out = static_cast<std::uint64_t>(j.get<std::int64_t>());
    return true;
  }
  return false;
}

inline bool parse_dtype(const std::string& name, DType& out) {
  for (DType d : {DType::F16, DType::BF16, DType::F32, DType::F64, DType::I64}) {
    if (name == dtype_name(d)) {
      out = d;
      return true;
    }
  }
  return false;
}

/// Parses the header JSON, rejecting duplicate keys in any object (nlohmann keeps the last one).
inline nlohmann::json parse_header_json(const unsigned char* begin, const unsigned char* end,
                                        const std::string& source) {
  struct Level {
    std::set<std::string> keys;
    std::string last_key;
  };
  std::vector<Level> levels;
  const auto callback = [&](int /*depth*/, nlohmann::json::parse_event_t event, nlohmann::json& parsed) {
    using Event = nlohmann::json::parse_event_t;
    if (event == Event::object_start) {
      levels.emplace_back();
    } else if (event == Event::object_end) {
      if (!levels.empty()) levels.pop_back();
    } else if (event == Event::key && !levels.empty()) {
      const std::string& key = parsed.get_ref<const std::string&>();
      if (!levels.back().keys.insert(key).second) {
        if (levels.size() == 1) throw FormatError(source + ": duplicate key " + quote_name(key) + " in the header");
        throw FormatError(source + ": " +
                          (levels[0].last_key == "__metadata__" ? std::string("__metadata__")
                                                                : "tensor " + quote_name(levels[0].last_key)) +
                          ": duplicate field " + quote_name(key));
      }
      levels.back().last_key = key;
    }
    return true;
  };
  try {
    return nlohmann::json::parse(begin, end, callback);
  } catch (const nlohmann::json::exception& e) {
    throw FormatError(source + ": header is not valid JSON: " + e.what());
  }
}

}  // namespace detail

/// Largest header accepted (the limit of the reference implementation).
constexpr std::uint64_t kMaxSafetensorsHeader = 100'000'000;

/// Where one tensor lives in a safetensors file: offsets relative to the data section.
struct TensorLayout {
  std::string name;
  DType dtype;
  std::vector<std::int64_t> shape;
  std::uint64_t begin, end;
};

/// The validated header of a safetensors file: everything but the tensor bytes.
struct SafetensorsLayout {
  std::map<std::string, std::string> metadata;
  std::vector<TensorLayout> tensors;
  std::uint64_t data_start = 0;  ///< file offset of the data section
};

/// Validates the header of a safetensors file of `size` bytes whose first `available` bytes
/// (at least the 8-byte length and the header) are at `data`: every rule of parse_safetensors,
/// including that the tensors tile the data section exactly. FormatError names `source`.
inline SafetensorsLayout parse_safetensors_layout(const unsigned char* data, std::size_t available,
                                                  std::uint64_t size, const std::string& source) {
  using detail::quote_name;
  const auto fail = [&](const std::string& what) { throw FormatError(source + ": " + what); };
  if (size < 8) fail("file too short: expected at least 8 bytes (the u64 header length), got " + std::to_string(size));
  const std::uint64_t header_size = detail::load_le<std::uint64_t>(data);
  if (header_size > kMaxSafetensorsHeader)
    fail("header length exceeds the " + std::to_string(kMaxSafetensorsHeader) + "-byte limit: got " +
         std::to_string(header_size));
  if (header_size > size - 8)
    fail("header length runs past the end of the file: header length " + std::to_string(header_size) + ", but only " +
         std::to_string(size - 8) + " bytes follow the 8-byte length");
  if (header_size == 0) fail("header is empty (header length 0): expected a JSON object");
  const unsigned char* header = data + 8;
  const std::size_t header_len = static_cast<std::size_t>(header_size);
  if (available < 8 + header_len) fail("internal: the header was not read completely");
  const std::size_t bad = detail::utf8_error_position(header, header_len);
  if (bad != header_len) {
    char byte[8];
    std::snprintf(byte, sizeof byte, "0x%02x", static_cast<unsigned>(header[bad]));
    fail("header is not valid UTF-8: bad byte " + std::string(byte) + " at header offset " + std::to_string(bad));
  }
  // JSON never holds a raw NUL (nlohmann's parser would take one for the end of the input and
  // never look at what follows), so any NUL in the header, e.g. after the object, is an error.
  const unsigned char* nul = static_cast<const unsigned char*>(std::memchr(header, 0, header_len));
  if (nul != nullptr)
    fail("header contains a NUL byte at header offset " + std::to_string(nul - header) +
         ": expected a JSON object padded with spaces only");
  if (header[0] != '{')
    fail("header must start with '{' (a JSON object, no leading whitespace): got " +
         quote_name(std::string(1, static_cast<char>(header[0]))));
  const nlohmann::json json = detail::parse_header_json(header, header + header_len, source);
  if (!json.is_object()) fail("header top level must be a JSON object, got " + detail::describe(json));

  const std::uint64_t data_start = 8 + header_len;
  const std::uint64_t data_size = size - data_start;
  SafetensorsLayout file;
  file.data_start = data_start;
  struct Span {
    std::uint64_t begin, end;
    const std::string* name;
  };
  std::vector<Span> spans;
  for (auto it = json.begin(); it != json.end(); ++it) {
    const std::string& name = it.key();
    const nlohmann::json& entry = it.value();
    if (name == "__metadata__") {
      if (!entry.is_object())
        fail("__metadata__ must be an object of string to string, got " + detail::describe(entry));
      for (auto m = entry.begin(); m != entry.end(); ++m) {
        if (!m.value().is_string())
          fail("__metadata__ value for key " + quote_name(m.key()) + " must be a string, got " +
               detail::describe(m.value()));
        file.metadata[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    const std::string label = "tensor " + quote_name(name);
    if (!entry.is_object()) fail(label + ": entry must be a JSON object, got " + detail::describe(entry));
    for (const char* field : {"dtype", "shape", "data_offsets"})
      if (!entry.contains(field)) fail(label + ": missing field '" + field + "'");
    for (auto f = entry.begin(); f != entry.end(); ++f)
      if (f.key() != "dtype" && f.key() != "shape" && f.key() != "data_offsets")
        fail(label + ": unexpected field " + quote_name(f.key()) + " (allowed: dtype, shape, data_offsets)");

    const nlohmann::json& dtype_json = entry["dtype"];
    if (!dtype_json.is_string()) fail(label + ": dtype must be a string, got " + detail::describe(dtype_json));
    DType dtype;
    if (!detail::parse_dtype(dtype_json.get_ref<const std::string&>(), dtype))
      fail(label + ": unsupported dtype " + quote_name(dtype_json.get_ref<const std::string&>()) +
           " (accepted: F16, BF16, F32, F64, I64)");

    const nlohmann::json& shape_json = entry["shape"];
    if (!shape_json.is_array())
      fail(label + ": shape must be an array of non-negative integers, got " + detail::describe(shape_json));
    std::vector<std::uint64_t> shape;
    for (std::size_t i = 0; i < shape_json.size(); ++i) {
      std::uint64_t d = 0;
      if (!detail::json_nonnegative_integer(shape_json[i], d))
        fail(label + ": shape must be an array of non-negative integers, but element " + std::to_string(i) + " is " +
             detail::describe(shape_json[i]));
      if (d > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
        fail(label + ": shape element " + std::to_string(i) + " exceeds the int64 range: got " + std::to_string(d));
      shape.push_back(d);
    }
    std::uint64_t numel = 0;
    if (!detail::checked_numel(shape, numel))
      fail(label + ": shape " + detail::join_u64(shape) + " overflows: element count exceeds 2^63 - 1");
    std::uint64_t nbytes = 0;
    if (!detail::checked_mul(numel, dtype_size(dtype), std::numeric_limits<std::uint64_t>::max(), nbytes) ||
        nbytes > std::numeric_limits<std::size_t>::max())
      fail(label + ": shape " + detail::join_u64(shape) + " of " + dtype_name(dtype) +
           " overflows: byte size exceeds the addressable range");

    const nlohmann::json& offsets_json = entry["data_offsets"];
    std::uint64_t begin = 0, end = 0;
    if (!offsets_json.is_array() || offsets_json.size() != 2 ||
        !detail::json_nonnegative_integer(offsets_json[0], begin) ||
        !detail::json_nonnegative_integer(offsets_json[1], end))
      fail(label + ": data_offsets must be two non-negative integers [begin, end], got " +
           detail::describe(offsets_json));
    if (begin > end)
      fail(label + ": data_offsets must have begin <= end, got [" + std::to_string(begin) + ", " + std::to_string(end) +
           "]");
    if (end - begin != nbytes)
      fail(label + ": byte size (end - begin) does not match shape and dtype: expected " + std::to_string(nbytes) +
           " (" + std::to_string(numel) + " elements of " + dtype_name(dtype) + "), got " +
           std::to_string(end - begin));
    if (end > data_size)
      fail(label + ": data_offsets [" + std::to_string(begin) + ", " + std::to_string(end) +
           "] out of range: expected end <= " + std::to_string(data_size) + " (the data section size)");
    spans.push_back(Span{begin, end, &name});
    file.tensors.push_back(TensorLayout{name, dtype, std::vector<std::int64_t>(shape.begin(), shape.end()), begin, end});
  }

  // The tensors must tile [0, data_size) exactly.
  std::sort(spans.begin(), spans.end(),
            [](const Span& a, const Span& b) { return a.begin != b.begin ? a.begin < b.begin : a.end < b.end; });
  std::uint64_t covered = 0;
  const Span* previous = nullptr;
  for (const Span& s : spans) {
    if (s.begin < covered)
      fail("tensors " + quote_name(*previous->name) + " [" + std::to_string(previous->begin) + ", " +
           std::to_string(previous->end) + "] and " + quote_name(*s.name) + " [" + std::to_string(s.begin) + ", " +
           std::to_string(s.end) + "] overlap");
    if (s.begin > covered)
      fail("hole in the data section: bytes [" + std::to_string(covered) + ", " + std::to_string(s.begin) +
           ") belong to no tensor (next tensor: " + quote_name(*s.name) + ")");
    covered = s.end;
    previous = &s;
  }
  if (spans.empty() && data_size != 0)
    fail("no tensors, but the data section holds " + std::to_string(data_size) + " bytes: expected 0");
  if (covered != data_size)
    fail("trailing bytes after the last tensor: tensors end at data offset " + std::to_string(covered) +
         ", expected the end of the data section at " + std::to_string(data_size));

  return file;
}

/// Parses and validates a safetensors file held in memory. `source` names it in error messages.
/// Throws FormatError on any violation of the format; copies the tensor bytes out of `data`.
inline SafetensorsFile parse_safetensors(const unsigned char* data, std::size_t size, const std::string& source) {
  const SafetensorsLayout layout = parse_safetensors_layout(data, size, size, source);
  SafetensorsFile file;
  file.metadata = layout.metadata;
  for (const TensorLayout& t : layout.tensors) {
    RawTensor& raw = file.tensors[t.name];
    raw.dtype = t.dtype;
    raw.shape = t.shape;
    const unsigned char* p = data + layout.data_start + t.begin;
    raw.bytes.assign(p, p + static_cast<std::size_t>(t.end - t.begin));
  }
  return file;
}

namespace detail {
/// Opens `file`, reads its 8-byte length and (when the length is plausible) its header, and
/// validates the layout against the file's size; no tensor byte is read.
inline SafetensorsLayout read_safetensors_layout(const InputFile& file) {
  const std::uint64_t size = file.size();
  std::vector<unsigned char> head = file.read(0, static_cast<std::size_t>(std::min<std::uint64_t>(size, 8)));
  if (size >= 8) {  // read the header only when its length is plausible; the parser reports the rest
    const std::uint64_t header_size = load_le<std::uint64_t>(head.data());
    if (header_size <= kMaxSafetensorsHeader && header_size <= size - 8) {
      head.resize(8 + static_cast<std::size_t>(header_size));
      file.read_at(8, head.data() + 8, static_cast<std::size_t>(header_size));
    }
  }
  return parse_safetensors_layout(head.data(), head.size(), size, file.path());
}
}  // namespace detail

/// Reads and validates a safetensors file: the header first, then only the tensor bytes it
/// declares. FormatError names `path` (also for a FIFO, a device or a directory).
inline SafetensorsFile read_safetensors(const std::string& path) {
  const InputFile f(path);
  const SafetensorsLayout layout = detail::read_safetensors_layout(f);
  SafetensorsFile file;
  file.metadata = layout.metadata;
  for (const TensorLayout& t : layout.tensors) {
    RawTensor& raw = file.tensors[t.name];
    raw.dtype = t.dtype;
    raw.shape = t.shape;
    raw.bytes = f.read(layout.data_start + t.begin, static_cast<std::size_t>(t.end - t.begin));
  }
  return file;
}

/// The validated header of a safetensors file (metadata, names, dtypes, shapes, offsets); no tensor
/// byte is read. FormatError names `path`.
inline SafetensorsLayout read_safetensors_header(const std::string& path) {
  const InputFile f(path);
  return detail::read_safetensors_layout(f);
}

/// The name and shape of every tensor of a safetensors file, from its header alone.
inline std::map<std::string, std::vector<Index>> tensor_shapes(const SafetensorsLayout& layout) {
  std::map<std::string, std::vector<Index>> shapes;
  for (const TensorLayout& t : layout.tensors) shapes[t.name] = std::vector<Index>(t.shape.begin(), t.shape.end());
  return shapes;
}
inline std::map<std::string, std::vector<Index>> read_safetensors_shapes(const std::string& path) {
  return tensor_shapes(read_safetensors_header(path));
}

namespace detail {
/// The shape of an in-memory tensor as unsigned extents, checked: no negative extent, no overflow,
/// and exactly numel * dtype size bytes. `label` names the tensor in the FormatError.
inline std::vector<std::uint64_t> checked_raw_shape(const RawTensor& raw, const std::string& label,
                                                    std::uint64_t& nbytes) {
  std::vector<std::uint64_t> shape;
  for (std::int64_t d : raw.shape) {
    if (d < 0) throw FormatError(label + ": negative extent in shape " + shape_string(raw.shape));
    shape.push_back(static_cast<std::uint64_t>(d));
  }
  std::uint64_t numel = 0;
  if (!checked_numel(shape, numel) ||
      !checked_mul(numel, dtype_size(raw.dtype), std::numeric_limits<std::uint64_t>::max(), nbytes))
    throw FormatError(label + ": shape " + shape_string(raw.shape) + " overflows");
  if (nbytes != raw.bytes.size())
    throw FormatError(label + ": byte size does not match shape and dtype: expected " + std::to_string(nbytes) +
                      ", got " + std::to_string(raw.bytes.size()));
  return shape;
}
}  // namespace detail

namespace detail {
/// Decodes out.size() little-endian values of `dtype` at `p` (any alignment) into `out`.
template <class Scalar>
void convert_values(DType dtype, const unsigned char* p, std::vector<Scalar>& out) {
  const std::size_t n = out.size();
  switch (dtype) {
    case DType::F16:
      for (std::size_t i = 0; i < n; ++i)
        out[i] = static_cast<Scalar>(half_to_float(detail::load_le<std::uint16_t>(p + 2 * i)));
      break;
    case DType::BF16:
      for (std::size_t i = 0; i < n; ++i)
        out[i] = static_cast<Scalar>(bfloat16_to_float(detail::load_le<std::uint16_t>(p + 2 * i)));
      break;
    case DType::F32:
      for (std::size_t i = 0; i < n; ++i) {
        const std::uint32_t bits = detail::load_le<std::uint32_t>(p + 4 * i);
        float v;
        std::memcpy(&v, &bits, sizeof v);
        out[i] = static_cast<Scalar>(v);
      }
      break;
    case DType::F64:
      for (std::size_t i = 0; i < n; ++i) {
        const std::uint64_t bits = detail::load_le<std::uint64_t>(p + 8 * i);
        double v;
        std::memcpy(&v, &bits, sizeof v);
        out[i] = static_cast<Scalar>(v);
      }
      break;
    case DType::I64:
      for (std::size_t i = 0; i < n; ++i)
        out[i] = static_cast<Scalar>(static_cast<std::int64_t>(detail::load_le<std::uint64_t>(p + 8 * i)));
      break;
  }
}
}  // namespace detail

/// Converts every tensor to Scalar (float or double). F16/BF16/F32/F64 convert exactly (F64 ->
/// float rounds); I64 (meant for num_batches_tracked) converts by value.
template <class Scalar>
StateDict<Scalar> to_state_dict(const SafetensorsFile& file, const std::string& source) {
  static_assert(std::is_floating_point<Scalar>::value, "to_state_dict: Scalar must be float or double");
  StateDict<Scalar> dict;
  for (const auto& entry : file.tensors) {
    const RawTensor& raw = entry.second;
    const std::string label = source + ": tensor " + detail::quote_name(entry.first);
    std::uint64_t nbytes = 0;
    detail::checked_raw_shape(raw, label, nbytes);
    NamedTensor<Scalar> t;
    t.shape = std::vector<Index>(raw.shape.begin(), raw.shape.end());
    t.values.resize(static_cast<std::size_t>(nbytes / dtype_size(raw.dtype)));
    detail::convert_values(raw.dtype, raw.bytes.data(), t.values);
    dict.emplace(entry.first, std::move(t));
  }
  return dict;
}

/// read_safetensors + to_state_dict, streamed: only the header is held as raw bytes, each tensor
/// is read from the file and converted on its own, so peak memory is about the converted weights.
template <class Scalar>
StateDict<Scalar> load_safetensors(const std::string& path) {
  static_assert(std::is_floating_point<Scalar>::value, "load_safetensors: Scalar must be float or double");
  const InputFile f(path);
  const SafetensorsLayout layout = detail::read_safetensors_layout(f);
  StateDict<Scalar> dict;
  std::vector<unsigned char> bytes;
  for (const TensorLayout& t : layout.tensors) {
    bytes.resize(static_cast<std::size_t>(t.end - t.begin));
    if (!bytes.empty()) f.read_at(layout.data_start + t.begin, bytes.data(), bytes.size());
    NamedTensor<Scalar> tensor;
    tensor.shape = std::vector<Index>(t.shape.begin(), t.shape.end());
    tensor.values.resize(bytes.size() / dtype_size(t.dtype));
    detail::convert_values(t.dtype, bytes.data(), tensor.values);
    dict.emplace(t.name, std::move(tensor));
  }
  return dict;
}

/// Loads a model layer by layer straight from a safetensors file: ConsumingLoader over
/// load_safetensors(path), without holding the converted file. Each parameter's tensor is read and
/// converted when its layer asks for it (F32 into float: read in place), so the loader holds at most one
/// tensor at a time and a prepared
/// engine that packs each layer as it is filled (prepare_from_safetensors) never has the whole
/// float32 checkpoint in memory. The header is validated on construction (FormatError naming the
/// path). Call it as fill(layer, prefix) for every piece, then finish().
template <class Scalar>
class SafetensorsLoader {
  static_assert(std::is_floating_point<Scalar>::value, "SafetensorsLoader: Scalar must be float or double");

 public:
  explicit SafetensorsLoader(const std::string& path) : file_(path), layout_(detail::read_safetensors_layout(file_)) {
    for (std::size_t i = 0; i < layout_.tensors.size(); ++i) pending_.emplace(layout_.tensors[i].name, i);
  }

  template <class Layer>
  void operator()(Layer& layer, const std::string& prefix) {
    layer.visit_parameters(prefix, [&](ParameterRef<Scalar> p) {
      const auto it = pending_.find(p.name);
      if (it == pending_.end()) {
        report_.missing.push_back(p.name);
        return;
      }
      const TensorLayout& t = layout_.tensors[it->second];
      pending_.erase(it);
      const std::vector<Index> shape(t.shape.begin(), t.shape.end());
      const std::uint64_t nbytes = t.end - t.begin;
      if (shape != p.shape || nbytes != std::uint64_t(p.size()) * dtype_size(t.dtype)) {
        report_.mismatched.push_back(p.name + ": expected " + shape_string(p.shape) + ", found " + shape_string(shape));
        return;
      }
      if (nbytes == 0) return;
      if (std::is_same<Scalar, float>::value && t.dtype == DType::F32 && detail::host_is_little_endian()) {
        // The file's bytes are the parameter's: read them in place.
        file_.read_at(layout_.data_start + t.begin, reinterpret_cast<unsigned char*>(p.data),
                      static_cast<std::size_t>(nbytes));
        return;
      }
      std::vector<unsigned char> bytes(static_cast<std::size_t>(nbytes));  // freed before the next tensor
      file_.read_at(layout_.data_start + t.begin, bytes.data(), bytes.size());
      std::vector<Scalar> values(static_cast<std::size_t>(p.size()));
      detail::convert_values(t.dtype, bytes.data(), values);
      std::copy(values.begin(), values.end(), p.data);
    });
  }

  /// Reports the tensors no layer asked for as unexpected; strict: throws StateDictError (naming the
  /// file) listing every problem (the half-built model must then be discarded).
  LoadReport finish(bool strict = true) { return sknet::detail::finish_load(pending_, report_, strict, file_.path()); }

 private:
  InputFile file_;
  SafetensorsLayout layout_;
  std::map<std::string, std::size_t> pending_;  ///< tensors not read yet -> index into layout_.tensors
  LoadReport report_;
};

/// The file as bytes: "__metadata__" first (when not empty), then tensors in sorted key order,
/// data packed in that order, header space-padded so the data section starts at a multiple of 8.
/// Throws FormatError when a tensor's byte count does not match its shape and dtype.
inline std::vector<unsigned char> serialize_safetensors(const SafetensorsFile& file) {
  using Json = nlohmann::json;
  const std::string who = "serialize_safetensors: ";
  const auto json_string = [&](const std::string& s) {
    try {
      return Json(s).dump(-1, ' ', false, Json::error_handler_t::strict);
    } catch (const Json::exception&) {
      throw FormatError(who + "string " + detail::quote_name(s) + " is not valid UTF-8");
    }
  };
  std::string header = "{";
  bool first = true;
  if (!file.metadata.empty()) {
    header += "\"__metadata__\":{";
    for (const auto& m : file.metadata) {
      header += (first ? "" : ",") + json_string(m.first) + ":" + json_string(m.second);
      first = false;
    }
    header += "}";
    first = false;
  }
  std::uint64_t offset = 0;
  for (const auto& entry : file.tensors) {
    const RawTensor& raw = entry.second;
    const std::string label = who + "tensor " + detail::quote_name(entry.first);
    if (entry.first == "__metadata__") throw FormatError(label + ": the name is reserved for the metadata");
    std::uint64_t nbytes = 0;
    const std::vector<std::uint64_t> shape = detail::checked_raw_shape(raw, label, nbytes);
    header += (first ? "" : ",") + json_string(entry.first) + ":{\"dtype\":\"" + dtype_name(raw.dtype) +
              "\",\"shape\":" + detail::join_u64(shape) + ",\"data_offsets\":[" + std::to_string(offset) + "," +
              std::to_string(offset + nbytes) + "]}";
    first = false;
    offset += nbytes;
  }
  header += "}";
  header.append((8 - header.size() % 8) % 8, ' ');
  if (header.size() > kMaxSafetensorsHeader)
    throw FormatError(who + "header of " + std::to_string(header.size()) + " bytes exceeds the " +
                      std::to_string(kMaxSafetensorsHeader) + "-byte limit");
  std::vector<unsigned char> out(8 + header.size() + static_cast<std::size_t>(offset));
  detail::store_le<std::uint64_t>(header.size(), out.data());
  std::memcpy(out.data() + 8, header.data(), header.size());
  std::size_t position = 8 + header.size();
  for (const auto& entry : file.tensors) {
    const std::vector<unsigned char>& bytes = entry.second.bytes;
    if (!bytes.empty()) std::memcpy(out.data() + position, bytes.data(), bytes.size());
    position += bytes.size();
  }
  return out;
}

/// Writes a state dict as F32 (Scalar float) or F64 (double); FormatError names `path`.
template <class Scalar>
void save_safetensors(const std::string& path, const StateDict<Scalar>& dict,
                      const std::map<std::string, std::string>& metadata = {}) {
  static_assert(std::is_same<Scalar, float>::value || std::is_same<Scalar, double>::value,
                "save_safetensors: Scalar must be float or double");
  using Bits = typename std::conditional<sizeof(Scalar) == 4, std::uint32_t, std::uint64_t>::type;
  SafetensorsFile file;
  file.metadata = metadata;
  for (const auto& entry : dict) {
    const NamedTensor<Scalar>& t = entry.second;
    std::uint64_t numel = 1;
    bool ok = true;
    for (Index d : t.shape) {
      ok = ok && d >= 0 &&
           detail::checked_mul(numel, static_cast<std::uint64_t>(d),
                               static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()), numel);
    }
    if (!ok || numel != t.values.size())
      throw FormatError(path + ": cannot save tensor " + detail::quote_name(entry.first) + ": shape " +
                        shape_string(t.shape) + " does not match its " + std::to_string(t.values.size()) + " values");
    RawTensor raw;
    raw.dtype = sizeof(Scalar) == 4 ? DType::F32 : DType::F64;
    raw.shape = std::vector<std::int64_t>(t.shape.begin(), t.shape.end());
    raw.bytes.resize(t.values.size() * sizeof(Scalar));
    for (std::size_t i = 0; i < t.values.size(); ++i) {
      Bits bits;
      std::memcpy(&bits, &t.values[i], sizeof bits);
      detail::store_le<Bits>(bits, raw.bytes.data() + i * sizeof(Scalar));
    }
    file.tensors.emplace(entry.first, std::move(raw));
  }
  std::vector<unsigned char> bytes;
  try {
    bytes = serialize_safetensors(file);
  } catch (const FormatError& e) {
    throw FormatError(path + ": " + e.what());
  }
  detail::write_file(path, bytes);
}

}  // namespace io
}  // namespace sknet
