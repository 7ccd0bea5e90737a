// sknet: the exceptions thrown on bad input, and the checks that build their messages.
//
// Every message names the layer (type and, when known, its parameter-name prefix such as
// "layer1.0.conv2.paths.1.conv") and states the expected and the actual value.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>

namespace sknet {

/// The base of every exception sknet throws on bad input or a failed resource: catch
/// `const sknet::Error&` to handle all of them (it is a std::runtime_error).
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// An option or a combination of options that cannot describe a valid layer
/// (zero sizes, channels not divisible by groups, sizes whose arithmetic overflows, ...).
class ConfigError : public Error {
 public:
  using Error::Error;
};

/// A tensor handed to a layer whose rank, channel count or size does not fit the layer.
class ShapeError : public Error {
 public:
  using Error::Error;
};

/// A parameter value that would make the output meaningless (e.g. a negative BN variance).
class ValueError : public Error {
 public:
  using Error::Error;
};

/// A file (checkpoint, .npy) that is unreadable or malformed; the message names the file and rule.
class FormatError : public Error {
 public:
  using Error::Error;
};

/// A request the library cannot serve at run time: a thread that cannot be started, a lookup of
/// something that does not exist (e.g. the attention of an unknown unit).
class RuntimeError : public Error {
 public:
  using Error::Error;
};

namespace detail {

/// "Conv2d 'paths.0.conv'" or just "Conv2d" when the layer has no name yet.
inline std::string layer_label(const char* type, const std::string& name) {
  return name.empty() ? std::string(type) : std::string(type) + " '" + name + "'";
}

template <class E, class Expected, class Actual>
[[noreturn]] void fail(const std::string& layer, const std::string& what, const Expected& expected,
                       const Actual& actual) {
  std::ostringstream os;
  os << layer << ": " << what << ": expected " << expected << ", got " << actual;
  throw E(os.str());
}

/// Throws E("<layer>: <what>: expected <expected>, got <actual>") unless ok.
template <class E, class Expected, class Actual>
void require(bool ok, const std::string& layer, const std::string& what, const Expected& expected,
             const Actual& actual) {
  if (!ok) fail<E>(layer, what, expected, actual);
}

/// a * b, or E("<layer>: <what> overflows: a * b exceeds the 64-bit integer range").
template <class E = ConfigError, class T>
T checked_mul(T a, T b, const std::string& layer, const std::string& what) {
  T out;
  if (__builtin_mul_overflow(a, b, &out)) {
    std::ostringstream os;
    os << layer << ": " << what << " overflows: " << a << " * " << b << " exceeds the 64-bit integer range";
    throw E(os.str());
  }
  return out;
}

/// a + b, or E("<layer>: <what> overflows: a + b exceeds the 64-bit integer range").
template <class E = ConfigError, class T>
T checked_add(T a, T b, const std::string& layer, const std::string& what) {
  T out;
  if (__builtin_add_overflow(a, b, &out)) {
    std::ostringstream os;
    os << layer << ": " << what << " overflows: " << a << " + " << b << " exceeds the 64-bit integer range";
    throw E(os.str());
  }
  return out;
}

}  // namespace detail
}  // namespace sknet
