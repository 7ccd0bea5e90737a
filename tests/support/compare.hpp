// Element-wise comparison with an absolute + relative tolerance, reporting the worst element.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <sstream>
#include <string>
#include <utility>

namespace sknet_test {

/// The project's float tolerance against a double-precision or PyTorch reference:
/// |actual - expected| <= 1e-5 + 1e-4 * |expected|.
struct Tolerance {
  double abs;
  double rel;
};
inline constexpr Tolerance kFloatTolerance{1e-5, 1e-4};
inline constexpr Tolerance kDoubleTolerance{1e-12, 1e-10};

/// Tolerances per kernel precision, in sknet::kernels::Precision order (f32, bf16, int8): a kernel's
/// outputs against the double reference, and a whole network's logits as max |error| / max |logit|
/// against PyTorch float32. f32 is what every test checks today; the bf16 and int8 rows are the
/// starting targets for their kernels (bf16 keeps 8 mantissa bits, a relative rounding of 2^-9 per
/// operand, with float32 accumulation; int8 is bounded by its per-tensor activation scales).
struct PrecisionTolerance {
  Tolerance kernel;
  double logits_relative;
};
inline constexpr PrecisionTolerance kPrecisionTolerance[] = {
    {{1e-5, 1e-4}, 1e-4},  // f32
    {{1e-2, 1e-2}, 1e-2},  // bf16
    {{5e-2, 5e-2}, 5e-2},  // int8
};

/// The largest |a - b| over every element of two lists of (name, tensor) pairs of the same shapes (e.g.
/// attention maps), and the name of the tensor it is in; sizes must match (the caller checks).
template <class Maps>
std::pair<double, std::string> worst_difference(const Maps& a, const Maps& b) {
  std::pair<double, std::string> worst{0.0, ""};
  for (std::size_t u = 0; u < a.size() && u < b.size(); ++u)
    for (long i = 0; i < long(b[u].second.size()); ++i) {
      const double d = std::fabs(double(a[u].second.data()[i]) - double(b[u].second.data()[i]));
      if (!(d <= worst.first)) worst = {d, b[u].first};
    }
  return worst;
}

/// max |actual - expected| / max |expected| over n values (the acceptance measure of logits).
inline double relative_linf(const float* actual, const float* expected, std::size_t n) {
  double err = 0, scale = 0;
  for (std::size_t i = 0; i < n; ++i) {
    err = std::max(err, std::fabs(double(actual[i]) - double(expected[i])));
    scale = std::max(scale, std::fabs(double(expected[i])));
  }
  return err / scale;
}

template <class Scalar>
constexpr Tolerance tolerance_for() {
  return sizeof(Scalar) >= sizeof(double) ? kDoubleTolerance : kFloatTolerance;
}

struct Comparison {
  std::size_t count = 0, failures = 0, worst_index = 0;
  double max_abs = 0, worst_actual = 0, worst_expected = 0, worst_ratio = 0;
  bool size_ok = true;
  bool ok() const { return size_ok && failures == 0; }
  std::string describe(const std::string& what) const {
    std::ostringstream os;
    os.precision(9);
    if (!size_ok) return what + ": element counts differ";
    os << what << ": " << failures << " of " << count << " elements out of tolerance; max |diff| " << max_abs
       << "; worst element #" << worst_index << " actual " << worst_actual << " expected " << worst_expected
       << " (diff / allowed = " << worst_ratio << ")";
    return os.str();
  }
};

/// Compares actual[i] to expected[i]; NaN anywhere is a failure unless both are NaN.
template <class A, class E>
Comparison compare(const A* actual, std::size_t actual_count, const E* expected, std::size_t expected_count,
                   Tolerance tol) {
  Comparison c;
  c.count = expected_count;
  if (actual_count != expected_count) {
    c.size_ok = false;
    return c;
  }
  for (std::size_t i = 0; i < expected_count; ++i) {
    const double a = static_cast<double>(actual[i]), e = static_cast<double>(expected[i]);
    const double diff = std::fabs(a - e);
    const double allowed = tol.abs + tol.rel * std::fabs(e);
    const bool both_nan = std::isnan(a) && std::isnan(e);
    const bool bad = !both_nan && !(diff <= allowed);
    const double ratio = bad && !(diff == diff) ? INFINITY : diff / allowed;
    if (bad) ++c.failures;
    if (diff > c.max_abs) c.max_abs = diff;
    if (ratio > c.worst_ratio || (bad && c.failures == 1)) {
      c.worst_ratio = ratio;
      c.worst_index = i;
      c.worst_actual = a;
      c.worst_expected = e;
    }
  }
  return c;
}

}  // namespace sknet_test

/// CHECK that two containers with data()/size() agree within a tolerance, printing the worst element.
#define SKNET_CHECK_CLOSE(actual, expected, tol, what)                                                   \
  do {                                                                                                   \
    const auto sknet_cmp_ = ::sknet_test::compare((actual).data(), static_cast<std::size_t>((actual).size()), \
                                                  (expected).data(),                                    \
                                                  static_cast<std::size_t>((expected).size()), (tol));   \
    INFO(sknet_cmp_.describe(what));                                                                     \
    CHECK(sknet_cmp_.ok());                                                                              \
  } while (0)
