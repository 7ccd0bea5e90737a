// sknet: version macros and the compile-time instruction-set report.
#pragma once

#define SKNET_VERSION_MAJOR 0
#define SKNET_VERSION_MINOR 1
#define SKNET_VERSION_PATCH 0

namespace sknet {

/// The library version as "major.minor.patch".
inline constexpr const char* version() noexcept { return "0.1.0"; }

/// The widest SIMD instruction set the including translation unit was compiled for.
/// sknet never adds -march flags itself: the user's compiler flags decide.
inline constexpr const char* compiled_isa() noexcept {
#if defined(__AVX512F__)
  return "avx512";
#elif defined(__AVX2__) && defined(__FMA__)
  return "avx2";
#else
  return "portable";
#endif
}

}  // namespace sknet
