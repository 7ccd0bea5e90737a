// sknet: reading and writing NumPy .npy files (float32 / float64, C order).
//
// Format: magic "\x93NUMPY", major and minor version bytes, the header length (u16 LE for 1.0,
// u32 LE for 2.0 and 3.0), then the header: a Python dict literal such as
//   {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }
// padded with spaces and ended by '\n'; then the raw array data and nothing else.
//
// parse_npy reads the header with a small strict parser (no Python evaluation) and throws
// sknet::FormatError naming the source, the rule and the expected and actual values.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

#include "sknet/error.hpp"
#include "sknet/io/bytes.hpp"
#include "sknet/state_dict.hpp"
#include "sknet/tensor.hpp"

namespace sknet {
namespace io {
namespace detail {

/// The three fields of a .npy header.
struct NpyHeader {
  std::string descr;
  bool fortran_order = false;
  std::vector<std::uint64_t> shape;
};

/// "(2, 3)", "(3,)", "()": the Python spelling of a shape.
inline std::string npy_shape_string(const std::vector<std::uint64_t>& shape) {
  std::string out = "(";
  for (std::size_t i = 0; i < shape.size(); ++i) out += (i ? ", " : "") + std::to_string(shape[i]);
  return out + (shape.size() == 1 ? ",)" : ")");
}

/// Strict parser of the header dict literal: exactly the keys 'descr' (a string), 'fortran_order'
/// (True/False) and 'shape' (a tuple of non-negative integers), in any order, each once; an
/// optional trailing comma; whitespace between tokens.
class NpyHeaderParser {
 public:
  NpyHeaderParser(const std::string& text, const std::string& source) : text_(text), source_(source) {}

  NpyHeader parse() {
    NpyHeader header;
    bool seen_descr = false, seen_fortran = false, seen_shape = false;
    skip_space();
    expect('{', "the header dict to open with '{'");
    for (;;) {
      skip_space();
      if (peek() == '}') break;
      const std::string key = parse_string("a quoted key or '}'");
      skip_space();
      expect(':', "':' after key " + quote_name(key));
      skip_space();
      if (key == "descr") {
        if (seen_descr) fail("duplicate key 'descr'");
        seen_descr = true;
        if (peek() == '[') fail("structured dtypes (a list in 'descr') are not supported: expected '<f4' or '<f8'");
        header.descr = parse_string("a quoted dtype string for 'descr'");
      } else if (key == "fortran_order") {
        if (seen_fortran) fail("duplicate key 'fortran_order'");
        seen_fortran = true;
        header.fortran_order = parse_bool();
      } else if (key == "shape") {
        if (seen_shape) fail("duplicate key 'shape'");
        seen_shape = true;
        header.shape = parse_shape();
      } else {
        fail("unexpected key " + quote_name(key) + ": expected exactly 'descr', 'fortran_order' and 'shape'");
      }
      skip_space();
      if (peek() == ',') {
        ++pos_;
        continue;
      }
      if (peek() != '}') unexpected("',' or '}' after the value of " + quote_name(key));
    }
    ++pos_;  // '}'
    skip_space();
    if (pos_ != text_.size())
      fail("unexpected text after the header dict at offset " + std::to_string(pos_) + ": " +
           quote_name(text_.substr(pos_, 16)));
    if (!seen_descr) fail("missing key 'descr'");
    if (!seen_fortran) fail("missing key 'fortran_order'");
    if (!seen_shape) fail("missing key 'shape'");
    return header;
  }

 private:
  [[noreturn]] void fail(const std::string& what) const { throw FormatError(source_ + ": .npy header: " + what); }
  [[noreturn]] void unexpected(const std::string& expected) const {
    fail("expected " + expected + " at offset " + std::to_string(pos_) + ", got " +
         (pos_ < text_.size() ? quote_name(text_.substr(pos_, 1)) : std::string("the end of the header")));
  }
  int peek() const { return pos_ < text_.size() ? static_cast<unsigned char>(text_[pos_]) : -1; }
  void skip_space() {
    while (pos_ < text_.size() && (text_[pos_] == ' ' || text_[pos_] == '\t' || text_[pos_] == '\n' ||
                                   text_[pos_] == '\r' || text_[pos_] == '\f'))
      ++pos_;
  }
  void expect(char c, const std::string& what) {
    if (peek() != static_cast<unsigned char>(c)) unexpected(what);
    ++pos_;
  }
  std::string parse_string(const std::string& what) {
    const int quote = peek();
    if (quote != '\'' && quote != '"') unexpected(what);
    const std::size_t start = ++pos_;
    for (;;) {
      if (pos_ >= text_.size() || text_[pos_] == '\n')
        fail("unterminated string starting at offset " + std::to_string(start - 1));
      if (text_[pos_] == '\\')
        fail("escape sequences in strings are not supported (offset " + std::to_string(pos_) + ")");
      if (static_cast<unsigned char>(text_[pos_]) == quote) break;
      ++pos_;
    }
    return text_.substr(start, pos_++ - start);
  }
  bool parse_bool() {
    for (const char* word : {"True", "False"}) {
      const std::size_t n = std::strlen(word);
      if (text_.compare(pos_, n, word) == 0 && !is_ident(pos_ + n)) {
        pos_ += n;
        return word[0] == 'T';
      }
    }
    unexpected("True or False for 'fortran_order'");
  }
  bool is_ident(std::size_t i) const {
    if (i >= text_.size()) return false;
    const char c = text_[i];
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
  }
  std::vector<std::uint64_t> parse_shape() {
    std::vector<std::uint64_t> shape;
    if (peek() != '(') unexpected("a tuple such as (2, 3), (3,) or () for 'shape'");
    ++pos_;
    bool trailing_comma = false;
    for (;;) {
      skip_space();
      if (peek() == ')') break;
      shape.push_back(parse_extent(shape.size()));
      skip_space();
      trailing_comma = false;
      if (peek() == ',') {
        ++pos_;
        trailing_comma = true;
        continue;
      }
      if (peek() != ')') unexpected("',' or ')' in 'shape'");
    }
    ++pos_;  // ')'
    if (shape.size() == 1 && !trailing_comma)
      fail("'shape' must be a tuple: expected (" + std::to_string(shape[0]) + ",), got (" + std::to_string(shape[0]) +
           ") which is an integer in Python");
    return shape;
  }
  std::uint64_t parse_extent(std::size_t axis) {
    if (peek() == '-') fail("'shape' extent " + std::to_string(axis) + " is negative: expected an integer >= 0");
    if (peek() < '0' || peek() > '9') unexpected("a non-negative integer in 'shape'");
    const std::size_t start = pos_;
    while (peek() >= '0' && peek() <= '9') ++pos_;
    const std::string digits = text_.substr(start, pos_ - start);
    if (digits.size() > 1 && digits[0] == '0')
      fail("'shape' extent " + std::to_string(axis) + " has a leading zero: " + quote_name(digits));
    const std::uint64_t limit = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
    std::uint64_t value = 0;
    for (char c : digits) {
      const std::uint64_t digit = static_cast<std::uint64_t>(c - '0');
      if (value > (limit - digit) / 10)
        fail("'shape' extent " + std::to_string(axis) + " exceeds the int64 range: got " + quote_name(digits));
      value = value * 10 + digit;
    }
    if (is_ident(pos_)) unexpected("a plain integer in 'shape'");
    return value;
  }

  const std::string& text_;
  const std::string& source_;
  std::size_t pos_ = 0;
};

/// The .npy bytes of a little-endian float32/float64 C-order array (format 1.0; 2.0 if the
/// header needs more than 65535 bytes). Data starts at a multiple of 64 bytes.
template <class Scalar>
std::vector<unsigned char> serialize_npy(const std::vector<Index>& shape, const Scalar* values,
                                         const std::string& who) {
  static_assert(std::is_same<Scalar, float>::value || std::is_same<Scalar, double>::value,
                "write_npy: Scalar must be float or double");
  using Bits = typename std::conditional<sizeof(Scalar) == 4, std::uint32_t, std::uint64_t>::type;
  std::vector<std::uint64_t> extents;
  for (Index d : shape) {
    if (d < 0) throw FormatError(who + ": cannot write shape " + shape_string(shape) + ": negative extent");
    extents.push_back(static_cast<std::uint64_t>(d));
  }
  std::uint64_t numel = 0, nbytes = 0;
  if (!checked_numel(extents, numel) ||
      !checked_mul(numel, sizeof(Scalar), std::numeric_limits<std::size_t>::max(), nbytes))
    throw FormatError(who + ": cannot write shape " + shape_string(shape) + ": element count overflows");
  if (numel != 0 && values == nullptr)
    throw FormatError(who + ": cannot write shape " + shape_string(shape) + ": no values given");
  std::string header = std::string("{'descr': '") + (sizeof(Scalar) == 4 ? "<f4" : "<f8") +
                       "', 'fortran_order': False, 'shape': " + npy_shape_string(extents) + ", }";
  int major = 1;
  std::size_t preamble = 10;
  if ((preamble + header.size() + 1 + 63) / 64 * 64 - preamble > 0xFFFF) {
    major = 2;
    preamble = 12;
  }
  const std::size_t total = (preamble + header.size() + 1 + 63) / 64 * 64;
  header.append(total - preamble - header.size() - 1, ' ');
  header += '\n';
  std::vector<unsigned char> out = {0x93, 'N', 'U', 'M', 'P', 'Y', static_cast<unsigned char>(major), 0};
  out.resize(preamble);
  if (major == 1)
    store_le<std::uint16_t>(static_cast<std::uint16_t>(header.size()), out.data() + 8);
  else
    store_le<std::uint32_t>(static_cast<std::uint32_t>(header.size()), out.data() + 8);
  out.insert(out.end(), header.begin(), header.end());
  out.resize(total + static_cast<std::size_t>(nbytes));
  for (std::size_t i = 0; i < static_cast<std::size_t>(numel); ++i) {
    Bits bits;
    std::memcpy(&bits, values + i, sizeof bits);
    store_le<Bits>(bits, out.data() + total + i * sizeof(Scalar));
  }
  return out;
}

}  // namespace detail

/// What the header of a .npy file declares, checked against the file's size.
struct NpyLayout {
  std::vector<Index> shape;
  std::size_t itemsize = 0;       ///< 4 ('<f4') or 8 ('<f8')
  std::uint64_t numel = 0;        ///< elements (the product of `shape`)
  std::uint64_t data_start = 0;   ///< file offset of the data
};

/// Validates the preamble and header of a .npy file of `size` bytes whose first `available`
/// bytes are at `data` (at least the preamble and the header when the header length fits the
/// file): format version, dtype, order, shape, and that exactly the declared data follows.
/// FormatError names `source`.
inline NpyLayout parse_npy_layout(const unsigned char* data, std::size_t available, std::uint64_t size,
                                  const std::string& source) {
  using detail::quote_name;
  const auto fail = [&](const std::string& what) { throw FormatError(source + ": " + what); };
  static const unsigned char magic[6] = {0x93, 'N', 'U', 'M', 'P', 'Y'};
  const std::size_t head = static_cast<std::size_t>(std::min<std::uint64_t>(size, 6));
  if (available < head) fail("internal: the preamble was not read completely");
  if (size < 6 || std::memcmp(data, magic, 6) != 0)
    fail("not a .npy file: expected the magic string \"\\x93NUMPY\", got \"" +
         detail::printable(std::string(reinterpret_cast<const char*>(data), head)) + "\"");
  if (size < 8) fail("file too short: expected at least 8 bytes (magic and version), got " + std::to_string(size));
  const unsigned major = data[6], minor = data[7];
  if ((major != 1 && major != 2 && major != 3) || minor != 0)
    fail("unsupported .npy format version " + std::to_string(major) + "." + std::to_string(minor) +
         ": expected 1.0, 2.0 or 3.0");
  const std::size_t preamble = major == 1 ? 10 : 12;
  if (size < preamble)
    fail("file too short: expected at least " + std::to_string(preamble) + " bytes for a version " +
         std::to_string(major) + ".0 preamble, got " + std::to_string(size));
  const std::uint64_t header_len =
      major == 1 ? detail::load_le<std::uint16_t>(data + 8) : detail::load_le<std::uint32_t>(data + 8);
  if (header_len > size - preamble)
    fail("header length runs past the end of the file: header length " + std::to_string(header_len) + ", but only " +
         std::to_string(size - preamble) + " bytes follow the " + std::to_string(preamble) + "-byte preamble");
  if (available < preamble + header_len) fail("internal: the header was not read completely");
  const std::string text(reinterpret_cast<const char*>(data + preamble), static_cast<std::size_t>(header_len));
  const detail::NpyHeader header = detail::NpyHeaderParser(text, source).parse();

  std::size_t itemsize = 0;
  if (header.descr == "<f4") {
    itemsize = 4;
  } else if (header.descr == "<f8") {
    itemsize = 8;
  } else if (!header.descr.empty() && header.descr[0] == '>') {
    fail("big-endian dtype " + quote_name(header.descr) + " is not supported: expected little-endian '<f4' or '<f8'");
  } else {
    fail("unsupported dtype " + quote_name(header.descr) + ": expected '<f4' (float32) or '<f8' (float64)");
  }
  if (header.fortran_order)
    fail("Fortran-order (column-major) arrays are not supported: expected 'fortran_order': False, got True");
  std::uint64_t numel = 0, nbytes = 0;
  if (!detail::checked_numel(header.shape, numel) ||
      !detail::checked_mul(numel, itemsize, std::numeric_limits<std::size_t>::max(), nbytes))
    fail("shape " + detail::npy_shape_string(header.shape) + " overflows: element count exceeds 2^63 - 1");
  const std::uint64_t data_start = preamble + header_len;
  const std::uint64_t data_size = size - data_start;
  const std::string expected = "expected " + std::to_string(nbytes) + " bytes of data for shape " +
                               detail::npy_shape_string(header.shape) + " of " + quote_name(header.descr);
  if (data_size < nbytes) fail("truncated data: " + expected + ", got " + std::to_string(data_size));
  if (data_size > nbytes)
    fail(std::to_string(data_size - nbytes) + " extra trailing byte(s) after the data: " + expected + ", got " +
         std::to_string(data_size));
  NpyLayout layout;
  layout.shape = std::vector<Index>(header.shape.begin(), header.shape.end());
  layout.itemsize = itemsize;
  layout.numel = numel;
  layout.data_start = data_start;
  return layout;
}

namespace detail {

/// Converts numel little-endian values of `itemsize` bytes at `p` to Scalar.
template <class Scalar>
void npy_convert(const unsigned char* p, std::size_t itemsize, std::vector<Scalar>& out) {
  for (std::size_t i = 0; i < out.size(); ++i) {
    if (itemsize == 4) {
      const std::uint32_t bits = load_le<std::uint32_t>(p + 4 * i);
      float v;
      std::memcpy(&v, &bits, sizeof v);
      out[i] = static_cast<Scalar>(v);
    } else {
      const std::uint64_t bits = load_le<std::uint64_t>(p + 8 * i);
      double v;
      std::memcpy(&v, &bits, sizeof v);
      out[i] = static_cast<Scalar>(v);
    }
  }
}

/// The preamble and header of a .npy file, read with at most two small reads.
inline NpyLayout read_npy_layout(const InputFile& file) {
  const std::uint64_t size = file.size();
  std::vector<unsigned char> head = file.read(0, static_cast<std::size_t>(std::min<std::uint64_t>(size, 12)));
  if (head.size() >= 10 && std::memcmp(head.data(), "\x93NUMPY", 6) == 0) {  // read the header when it fits
    const unsigned major = head[6];
    const std::size_t preamble = major == 1 ? 10 : 12;
    if (head.size() >= preamble && (major == 1 || major == 2 || major == 3)) {
      const std::uint64_t header_len =
          major == 1 ? load_le<std::uint16_t>(head.data() + 8) : load_le<std::uint32_t>(head.data() + 8);
      if (header_len <= size - preamble) {
        head.resize(preamble + static_cast<std::size_t>(header_len));
        file.read_at(preamble, head.data() + preamble, static_cast<std::size_t>(header_len));
      }
    }
  }
  return parse_npy_layout(head.data(), head.size(), size, file.path());
}

}  // namespace detail

/// Parses a .npy file held in memory (format 1.0, 2.0 or 3.0; '<f4' or '<f8'; C order) and
/// converts it to Scalar. `source` names it in FormatError messages.
template <class Scalar>
NamedTensor<Scalar> parse_npy(const unsigned char* data, std::size_t size, const std::string& source) {
  static_assert(std::is_floating_point<Scalar>::value, "parse_npy: Scalar must be float or double");
  const NpyLayout layout = parse_npy_layout(data, size, size, source);
  NamedTensor<Scalar> t;
  t.shape = layout.shape;
  t.values.resize(static_cast<std::size_t>(layout.numel));
  detail::npy_convert(data + layout.data_start, layout.itemsize, t.values);
  return t;
}

/// The header of a .npy file, checked against the file's size, without reading the data: lets a
/// caller check the shape before it reads (and allocates for) the values. FormatError names
/// `path`, also for anything but a regular file (a FIFO, /dev/zero, a directory).
inline NpyLayout read_npy_layout(const std::string& path) { return detail::read_npy_layout(InputFile(path)); }

/// Reads a .npy file (see parse_npy): the header first, then exactly the data it declares.
/// FormatError names `path`, also for anything but a regular file.
template <class Scalar>
NamedTensor<Scalar> read_npy(const std::string& path) {
  static_assert(std::is_floating_point<Scalar>::value, "read_npy: Scalar must be float or double");
  const InputFile file(path);
  const NpyLayout layout = detail::read_npy_layout(file);
  const std::vector<unsigned char> bytes =
      file.read(layout.data_start, static_cast<std::size_t>(layout.numel * layout.itemsize));
  NamedTensor<Scalar> t;
  t.shape = layout.shape;
  t.values.resize(static_cast<std::size_t>(layout.numel));
  detail::npy_convert(bytes.data(), layout.itemsize, t.values);
  return t;
}

/// Writes `values` (C order, product(shape) of them) as a .npy file, format 1.0, '<f4' for
/// float and '<f8' for double; FormatError names `path`.
template <class Scalar>
void write_npy(const std::string& path, const std::vector<Index>& shape, const Scalar* values) {
  detail::write_file(path, detail::serialize_npy<Scalar>(shape, values, path));
}

/// Writes a NamedTensor; its value count must match its shape.
template <class Scalar>
void write_npy(const std::string& path, const NamedTensor<Scalar>& tensor) {
  std::vector<std::uint64_t> extents;
  std::uint64_t numel = 0;
  bool ok = true;
  for (Index d : tensor.shape) {
    ok = ok && d >= 0;
    extents.push_back(static_cast<std::uint64_t>(d));
  }
  if (!ok || !detail::checked_numel(extents, numel) || numel != tensor.values.size())
    throw FormatError(path + ": cannot write shape " + shape_string(tensor.shape) + ": it does not match the " +
                      std::to_string(tensor.values.size()) + " values");
  write_npy<Scalar>(path, tensor.shape, tensor.values.data());
}

}  // namespace io
}  // namespace sknet
