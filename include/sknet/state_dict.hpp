// sknet: named tensors in memory (a state dict) and strict loading of them into a layer.
#pragma once

#include <algorithm>
#include <map>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "sknet/error.hpp"
#include "sknet/parameters.hpp"

namespace sknet {

/// A tensor as PyTorch stores it: a shape and C-ordered values.
template <class Scalar>
struct NamedTensor {
  std::vector<Index> shape;
  std::vector<Scalar> values;
};

/// Parameter name -> tensor, e.g. the contents of a checkpoint.
template <class Scalar>
using StateDict = std::map<std::string, NamedTensor<Scalar>>;

/// Thrown by a strict load: the message lists every problem found, not just the first.
class StateDictError : public Error {
 public:
  using Error::Error;
};

/// What load_state_dict found; ok() when the layer and the dict match exactly.
struct LoadReport {
  std::vector<std::string> missing;     ///< parameters of the layer absent from the dict
  std::vector<std::string> unexpected;  ///< dict keys the layer does not have
  std::vector<std::string> mismatched;  ///< "name: expected [..], found [..]"
  bool ok() const { return missing.empty() && unexpected.empty() && mismatched.empty(); }
  std::string to_string() const {
    std::ostringstream os;
    const auto list = [&](const char* what, const std::vector<std::string>& items) {
      if (items.empty()) return;
      os << "\n  " << items.size() << ' ' << what << ':';
      for (const auto& s : items) os << "\n    " << s;
    };
    list("missing key(s)", missing);
    list("unexpected key(s)", unexpected);
    list("shape mismatch(es)", mismatched);
    return os.str();
  }
};

/// Keys the loader accepts and skips (PyTorch BN's step counter, irrelevant for inference).
inline bool ignored_state_key(const std::string& key) {
  const std::string suffix = "num_batches_tracked";
  return key.size() >= suffix.size() && key.compare(key.size() - suffix.size(), suffix.size(), suffix) == 0;
}

/// Copies every parameter of `layer` (names relative to `prefix`) from `dict`.
/// strict (default): throws StateDictError listing all missing, unexpected and mismatched keys
/// at once, and then nothing has been modified. Non-strict: loads what matches and reports the rest.
template <class Scalar, class Layer>
LoadReport load_state_dict(Layer& layer, const StateDict<Scalar>& dict, bool strict = true,
                           const std::string& prefix = "") {
  LoadReport report;
  std::vector<ParameterRef<Scalar>> params = named_parameters<Scalar>(layer, prefix);
  std::vector<std::pair<ParameterRef<Scalar>*, const NamedTensor<Scalar>*>> matched;
  std::vector<std::string> known;
  for (auto& p : params) {
    known.push_back(p.name);
    const auto it = dict.find(p.name);
    if (it == dict.end()) {
      report.missing.push_back(p.name);
      continue;
    }
    const NamedTensor<Scalar>& t = it->second;
    Index count = 1;
    for (Index d : t.shape) count *= d;
    if (t.shape != p.shape || static_cast<Index>(t.values.size()) != count) {
      report.mismatched.push_back(p.name + ": expected " + shape_string(p.shape) + ", found " +
                                  shape_string(t.shape) +
                                  (static_cast<Index>(t.values.size()) != count
                                       ? " holding " + std::to_string(t.values.size()) + " values"
                                       : ""));
      continue;
    }
    matched.emplace_back(&p, &t);
  }
  std::sort(known.begin(), known.end());
  for (const auto& entry : dict) {
    const std::string& key = entry.first;
    if (!prefix.empty() && key.compare(0, prefix.size() + 1, prefix + ".") != 0) continue;
    if (!ignored_state_key(key) && !std::binary_search(known.begin(), known.end(), key))
      report.unexpected.push_back(key);
  }
  if (strict && !report.ok())
    throw StateDictError("load_state_dict" + (prefix.empty() ? std::string() : " '" + prefix + "'") +
                         ": the state dict does not match the model:" + report.to_string());
  for (auto& m : matched) std::copy(m.second->values.begin(), m.second->values.end(), m.first->data);
  return report;
}

namespace detail {
/// The end of a layer-by-layer load: the entries of `left` (a map by key) that no layer asked for are
/// reported as unexpected (but the buffers ignored_state_key names), `left` is emptied, and a strict
/// load throws StateDictError naming `what` and listing every problem.
template <class Map>
LoadReport finish_load(Map& left, LoadReport& report, bool strict, const std::string& what) {
  for (const auto& entry : left)
    if (!ignored_state_key(entry.first)) report.unexpected.push_back(entry.first);
  left.clear();
  if (strict && !report.ok()) throw StateDictError("load: " + what + " does not match the model:" + report.to_string());
  return report;
}
}  // namespace detail

/// Loads a network layer by layer from a dict it owns, erasing each entry once copied, so the
/// weights are held about once in memory while a model is built piece by piece.
/// Call it as fill(layer, prefix) for every piece, then finish().
template <class Scalar>
class ConsumingLoader {
 public:
  explicit ConsumingLoader(StateDict<Scalar>&& dict) : dict_(std::move(dict)) {}

  template <class Layer>
  void operator()(Layer& layer, const std::string& prefix) {
    layer.visit_parameters(prefix, [&](ParameterRef<Scalar> p) {
      const auto it = dict_.find(p.name);
      if (it == dict_.end()) {
        report_.missing.push_back(p.name);
        return;
      }
      const NamedTensor<Scalar>& t = it->second;
      if (t.shape != p.shape || static_cast<Index>(t.values.size()) != p.size()) {
        report_.mismatched.push_back(p.name + ": expected " + shape_string(p.shape) + ", found " + shape_string(t.shape));
      } else {
        std::copy(t.values.begin(), t.values.end(), p.data);
      }
      dict_.erase(it);
    });
  }

  /// Reports the keys no layer asked for as unexpected; strict: throws StateDictError listing
  /// every problem (the half-built model must then be discarded).
  LoadReport finish(bool strict = true) { return detail::finish_load(dict_, report_, strict, "the state dict"); }

 private:
  StateDict<Scalar> dict_;
  LoadReport report_;
};

/// The parameters of `layer` as a state dict (a copy), e.g. for saving.
template <class Scalar, class Layer>
StateDict<Scalar> state_dict(Layer& layer, const std::string& prefix = "") {
  StateDict<Scalar> out;
  for (const auto& p : named_parameters<Scalar>(layer, prefix))
    out[p.name] = NamedTensor<Scalar>{p.shape, std::vector<Scalar>(p.data, p.data + p.size())};
  return out;
}

}  // namespace sknet
