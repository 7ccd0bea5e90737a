// sknet: version macros. (The instruction set is picked at run time: sknet/kernels/dispatch.hpp.)
#pragma once

#define SKNET_VERSION_MAJOR 0
#define SKNET_VERSION_MINOR 1
#define SKNET_VERSION_PATCH 0

namespace sknet {

/// The library version as "major.minor.patch".
inline constexpr const char* version() noexcept { return "0.1.0"; }

}  // namespace sknet
