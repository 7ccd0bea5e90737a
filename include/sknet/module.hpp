// sknet: what every layer shares, its type and its parameter-name prefix, used in error messages.
#pragma once

#include <string>
#include <utility>

#include "sknet/error.hpp"

namespace sknet {

/// Base of every layer: a type name ("Conv2d") and the state_dict prefix it was given by its
/// owner ("layer1.0.conv2.paths.1.conv"), so errors point at the exact layer.
class Module {
 public:
  explicit Module(const char* type) : type_(type) {}
  const std::string& name() const { return name_; }
  void set_name(std::string name) { name_ = std::move(name); }
  const char* type() const { return type_; }
  /// "Conv2d 'paths.0.conv'" (or "Conv2d" while unnamed).
  std::string label() const { return detail::layer_label(type_, name_); }

 private:
  const char* type_;
  std::string name_;
};

}  // namespace sknet
