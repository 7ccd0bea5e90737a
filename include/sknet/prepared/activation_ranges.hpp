// sknet: the activation ranges an int8 network quantizes with, measured by a calibration pass.
//
// An int8 network (PrepareOptions precision int8) quantizes the input of each of its 1x1 convolutions
// per tensor to u8 codes (kernels::U8Quantization of the tensor's range). The ranges come from running
// the float32 network over sample inputs (calibrate(), `sknet calibrate`): per bottleneck block
// "<block>.input" (what conv1 and the projection shortcut read) and "<block>.v" (what conv3 reads),
// the smallest and largest finite value seen. They are saved as JSON next to the model and reused:
//   {"format": "sknet-activation-ranges", "version": 1, "images": 16,
//    "ranges": {"layer1.0.input": [0.0, 5.25], "layer1.0.v": [0.0, 3.5], ...}}
#pragma once

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <limits>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "sknet/error.hpp"
#include "sknet/runtime/thread_pool.hpp"

namespace sknet {

/// Per tensor name, the smallest and largest finite value a calibration pass saw.
struct ActivationRanges {
  struct Range {
    float lo = std::numeric_limits<float>::infinity();
    float hi = -std::numeric_limits<float>::infinity();
    bool seen() const { return lo <= hi; }
  };
  std::map<std::string, Range> by_name;
  long long images = 0;  ///< images the calibration ran

  /// Widens the range of `name` to hold [lo, hi] (an empty range, lo > hi, changes nothing).
  void observe(const std::string& name, float lo, float hi) {
    Range& r = by_name[name];
    if (lo <= hi) r.lo = std::min(r.lo, lo), r.hi = std::max(r.hi, hi);
  }
  /// The range of `name`; ConfigError naming `who` and the tensor when calibration never saw it.
  const Range& at(const std::string& name, const std::string& who) const {
    const auto it = by_name.find(name);
    if (it == by_name.end() || !it->second.seen())
      detail::fail<ConfigError>(who, "activation range of " + name,
                                "a calibrated range (sknet calibrate / sknet::calibrate for this network)", "none");
    return it->second;
  }

  /// Writes the JSON form to `path` (FormatError naming it when it cannot be written).
  void save(const std::string& path) const {
    nlohmann::json j;
    j["format"] = "sknet-activation-ranges";
    j["version"] = 1;
    j["images"] = images;
    nlohmann::json ranges = nlohmann::json::object();
    for (const auto& e : by_name)
      if (e.second.seen()) ranges[e.first] = {e.second.lo, e.second.hi};
    j["ranges"] = ranges;
    std::ofstream out(path);
    out << j.dump(1) << "\n";
    out.close();
    if (!out) throw FormatError(path + ": cannot write the activation ranges");
  }

  /// Reads what save() wrote; FormatError naming `path` and what is wrong.
  static ActivationRanges load(const std::string& path) {
    std::ifstream in(path);
    if (!in) throw FormatError(path + ": cannot open the activation ranges");
    nlohmann::json j;
    try {
      in >> j;
    } catch (const nlohmann::json::exception& e) {
      throw FormatError(path + ": not JSON: " + e.what());
    }
    const auto fail = [&](const std::string& what) { throw FormatError(path + ": " + what); };
    if (!j.is_object() || j.value("format", std::string()) != "sknet-activation-ranges")
      fail("expected an object with \"format\": \"sknet-activation-ranges\"");
    if (!j.contains("version") || j["version"] != 1) fail("expected \"version\": 1");
    if (!j.contains("ranges") || !j["ranges"].is_object()) fail("expected an object \"ranges\"");
    ActivationRanges r;
    if (j.contains("images") && j["images"].is_number_integer()) r.images = j["images"].get<long long>();
    for (const auto& e : j["ranges"].items()) {
      const auto& v = e.value();
      if (!v.is_array() || v.size() != 2 || !v[0].is_number() || !v[1].is_number())
        fail("range \"" + e.key() + "\": expected [lo, hi], got " + v.dump());
      const float lo = v[0].get<float>(), hi = v[1].get<float>();
      if (!std::isfinite(lo) || !std::isfinite(hi) || lo > hi)
        fail("range \"" + e.key() + "\": expected finite lo <= hi, got " + v.dump());
      r.observe(e.key(), lo, hi);
    }
    return r;
  }
};

/// What a float forward records ranges into when it calibrates: thread-safe (the blocks of several
/// images may run at once).
class RangeRecorder {
 public:
  explicit RangeRecorder(ActivationRanges& ranges) : ranges_(ranges) {}
  void record(const std::string& name, float lo, float hi) {
    std::lock_guard<std::mutex> lock(mutex_);
    ranges_.observe(name, lo, hi);
  }

 private:
  ActivationRanges& ranges_;
  std::mutex mutex_;
};

namespace detail {

/// The smallest and largest finite value each thread saw ({+inf, -inf}: none); no thread (a forward
/// that does not calibrate) ignores what it is given.
struct ThreadRanges {
  std::vector<std::pair<float, float>> part;
  explicit ThreadRanges(int threads)
      : part(std::size_t(threads), {std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::infinity()}) {}
  void add(int t, const float* x, std::size_t n) {
    if (part.empty()) return;
    auto& p = part[std::size_t(t)];
    for (std::size_t i = 0; i < n; ++i)
      if (std::isfinite(x[i])) p.first = std::min(p.first, x[i]), p.second = std::max(p.second, x[i]);
  }
  std::pair<float, float> merged() const {
    std::pair<float, float> all{std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::infinity()};
    for (const auto& p : part) all.first = std::min(all.first, p.first), all.second = std::max(all.second, p.second);
    return all;
  }
};

/// Whether x[0, n) holds a NaN or an infinity (all exponent bits set), in one vectorisable pass.
inline bool has_non_finite(const float* x, std::size_t n) {
  std::uint32_t any = 0;
  for (std::size_t i = 0; i < n; ++i) {
    std::uint32_t bits;
    std::memcpy(&bits, x + i, sizeof bits);
    any |= (bits & 0x7F800000u) == 0x7F800000u ? 1u : 0u;
  }
  return any != 0;
}

/// The calibrated range of `tensor` that an int8 layer quantizes at; ConfigError when an int8 network
/// is prepared without ranges, or (ActivationRanges::at) without that one.
inline const ActivationRanges::Range& calibrated_range(const ActivationRanges* ranges, const std::string& tensor) {
  if (!ranges)
    fail<ConfigError>("prepare", "activation ranges of " + tensor, "calibrated ranges for an int8 network", "none");
  return ranges->at(tensor, "prepare");
}

/// Records `range` as tensor `name`'s, unless it is empty (no finite value seen).
inline void record_range(RangeRecorder& recorder, const std::string& name, std::pair<float, float> range) {
  if (range.first <= range.second) recorder.record(name, range.first, range.second);
}

/// The smallest and largest finite value of x[0, n), split over the pool ({+inf, -inf} when none).
inline std::pair<float, float> finite_range(ThreadPool& pool, const float* x, std::size_t n) {
  const int threads = pool.size();
  ThreadRanges ranges(threads);
  pool.run([&](int t) {
    const auto r = split_range(long(n), threads, t);
    ranges.add(t, x + r.first, std::size_t(r.second - r.first));
  });
  return ranges.merged();
}

/// Calibration: records x[0, n)'s finite range as tensor `name`'s when a recorder is given.
inline void record_finite_range(RangeRecorder* recorder, const std::string& name, ThreadPool& pool, const float* x,
                                std::size_t n) {
  if (recorder) record_range(*recorder, name, finite_range(pool, x, n));
}

}  // namespace detail

}  // namespace sknet
