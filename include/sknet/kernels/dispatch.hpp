// sknet kernels: the one place that knows about instruction sets.
//
// Every SIMD kernel is compiled for each instruction set (ISA) it targets inside its own namespace
// (sknet::kernels::avx512, ::avx2, ::portable) under a target region (GCC/Clang `#pragma ... target`),
// whatever flags the including translation unit was built with; the ISA is then picked at run time:
//
//   cpu_isa()      the widest ISA this CPU runs (cpuid, once);
//   active_isa()   what prepare() packs for: cpu_isa(), narrowed by the environment variable
//                  SKNET_ISA=portable|avx2|avx512 and by set_isa_limit();
//   Isa values     portable (C++ the compiler vectorises for the build's baseline), avx2 (AVX2 + FMA),
//                  avx512 (AVX-512 F/BW/DQ/VL).
//
// Packed weights record the ISA (and so the layout) they were packed for; a kernel call runs that ISA's
// kernel, so one process may hold models packed for different ISAs.
//
// Compiling the kernels is the expensive part of using sknet. Three ways to include it:
//   default                  header-only: every translation unit that includes a kernel header
//                            compiles the kernel bodies of every ISA (inline functions);
//   SKNET_IMPLEMENTATION     defined in exactly one .cpp before any sknet include: that translation unit
//                            compiles the bodies, with external linkage;
//   SKNET_KERNELS_EXTERN     defined in every other translation unit (or for the whole target, e.g. by
//                            linking the CMake target sknet::kernels): declarations only.
// The two forms use different symbol names (an inline ABI namespace), so they may be mixed in one program.
// Each ISA namespace, and the header-only entry points, are also tagged with the build's baseline flags,
// so translation units built with different -m flags never share an inline definition (one-definition
// rule); the compiled form has one definition, which translation units with any flags link to.
#pragma once

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>

#include "sknet/error.hpp"

#if defined(__x86_64__) || defined(_M_X64) || defined(__i386__)
#include <immintrin.h>
#define SKNET_X86 1
#endif

// ---- compile modes ---------------------------------------------------------------------------------
#if defined(__AVX512F__)
#define SKNET_BASELINE_TAG baseline_avx512
#elif defined(__AVX2__)
#define SKNET_BASELINE_TAG baseline_avx2
#else
#define SKNET_BASELINE_TAG baseline_generic
#endif
#define SKNET_CONCAT_(a, b) a##_##b
#define SKNET_CONCAT(a, b) SKNET_CONCAT_(a, b)

#if defined(SKNET_IMPLEMENTATION) || defined(SKNET_KERNELS_EXTERN)
// One definition in the program (the SKNET_IMPLEMENTATION translation unit): translation units built
// with other -m flags link to it. The version changes whenever a kernel's arguments change (v2: per-path
// kernel sizes and dilations in SKBranchGeometry, the bf16 and int8 kernels; v3: the int8 epilogue's
// float residual and u8 quantization; v4: the bf16 SK branch and Select kernels in the kernel list; v5:
// the int8 SK branch kernels and SKTile::scale), so a program never links a prebuilt kernel library of
// another layout.
#define SKNET_KERNEL_ABI compiled_v5
#define SKNET_KERNEL_ENTRY
#else
#define SKNET_KERNEL_ABI SKNET_CONCAT(header_only_v5, SKNET_BASELINE_TAG)
#define SKNET_KERNEL_ENTRY inline
#endif
#if defined(SKNET_IMPLEMENTATION) || !defined(SKNET_KERNELS_EXTERN)
#define SKNET_KERNEL_BODIES 1
#else
#define SKNET_KERNEL_BODIES 0
#endif

// ---- target regions: everything defined between BEGIN and END is compiled for that ISA ------------
#if defined(SKNET_X86) && defined(__clang__)
#define SKNET_PRAGMA(x) _Pragma(#x)
#define SKNET_TARGET_AVX512_BEGIN                                                                    \
  SKNET_PRAGMA(clang attribute push(                                                                 \
      __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,bmi,bmi2,lzcnt,popcnt,f16c"))), \
      apply_to = function))
#define SKNET_TARGET_AVX2_BEGIN \
  SKNET_PRAGMA(clang attribute push(__attribute__((target("avx2,fma,bmi,bmi2,lzcnt,popcnt,f16c"))), apply_to = function))
#define SKNET_TARGET_AVX512_BF16_BEGIN                                                                          \
  SKNET_PRAGMA(clang attribute push(                                                                            \
      __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx512bf16,avx2,fma,bmi,bmi2,lzcnt,popcnt,f16c"))), \
      apply_to = function))
#define SKNET_TARGET_AVX512_VNNI_BEGIN                                                                          \
  SKNET_PRAGMA(clang attribute push(                                                                            \
      __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx512vnni,avx2,fma,bmi,bmi2,lzcnt,popcnt,f16c"))), \
      apply_to = function))
#define SKNET_TARGET_END SKNET_PRAGMA(clang attribute pop)
#define SKNET_HAS_SIMD_KERNELS 1
#elif defined(SKNET_X86) && defined(__GNUC__)
#define SKNET_PRAGMA(x) _Pragma(#x)
#define SKNET_TARGET_AVX512_BEGIN \
  SKNET_PRAGMA(GCC push_options)  \
  SKNET_PRAGMA(GCC target("avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,bmi,bmi2,lzcnt,popcnt,f16c"))
#define SKNET_TARGET_AVX2_BEGIN  \
  SKNET_PRAGMA(GCC push_options) \
  SKNET_PRAGMA(GCC target("avx2,fma,bmi,bmi2,lzcnt,popcnt,f16c"))
#define SKNET_TARGET_AVX512_BF16_BEGIN \
  SKNET_PRAGMA(GCC push_options)       \
  SKNET_PRAGMA(GCC target("avx512f,avx512bw,avx512dq,avx512vl,avx512bf16,avx2,fma,bmi,bmi2,lzcnt,popcnt,f16c"))
#define SKNET_TARGET_AVX512_VNNI_BEGIN \
  SKNET_PRAGMA(GCC push_options)       \
  SKNET_PRAGMA(GCC target("avx512f,avx512bw,avx512dq,avx512vl,avx512vnni,avx2,fma,bmi,bmi2,lzcnt,popcnt,f16c"))
#define SKNET_TARGET_END SKNET_PRAGMA(GCC pop_options)
#define SKNET_HAS_SIMD_KERNELS 1
#else
#define SKNET_HAS_SIMD_KERNELS 0  // not x86-64 (or an unknown compiler): portable kernels only
#endif

namespace sknet {
namespace kernels {

/// The instruction sets sknet has kernels for, narrowest first.
enum class Isa : int { portable = 0, avx2 = 1, avx512 = 2 };
inline constexpr int kIsaCount = 3;

inline constexpr const char* isa_name(Isa isa) noexcept {
  return isa == Isa::avx512 ? "avx512" : isa == Isa::avx2 ? "avx2" : "portable";
}

/// "portable", "avx2" or "avx512" -> the Isa; anything else throws ConfigError naming `who`.
inline Isa parse_isa(const std::string& name, const std::string& who) {
  for (int i = 0; i < kIsaCount; ++i)
    if (name == isa_name(Isa(i))) return Isa(i);
  sknet::detail::fail<ConfigError>(who, "instruction set", "portable, avx2 or avx512", "'" + name + "'");
}

/// The arithmetic a kernel computes in. float32 is the only one with kernels so far; bf16 (weights and
/// activations in bfloat16, pairs of reduction elements per lane for vdpbf16ps, float32 accumulators) and
/// int8 (u8 activations x s8 weights, quads per lane for vpdpbusd, int32 accumulators) are the planned
/// ones: the packed layouts record their precision and the kernel list is keyed by it.
enum class Precision : int { f32 = 0, bf16 = 1, int8 = 2 };
inline constexpr int kPrecisionCount = 3;

inline constexpr const char* precision_name(Precision p) noexcept {
  return p == Precision::f32 ? "f32" : p == Precision::bf16 ? "bf16" : "int8";
}
/// "f32", "bf16" or "int8" -> the Precision; anything else throws ConfigError naming `who`.
inline Precision parse_precision(const std::string& name, const std::string& who) {
  for (int i = 0; i < kPrecisionCount; ++i)
    if (name == precision_name(Precision(i))) return Precision(i);
  sknet::detail::fail<ConfigError>(who, "precision", "f32, bf16 or int8", "'" + name + "'");
}
/// Consecutive reduction elements a packed lane holds: 1 (f32), 2 (bf16 pairs), 4 (int8 quads).
inline constexpr int reduction_group(Precision p) noexcept { return p == Precision::f32 ? 1 : p == Precision::bf16 ? 2 : 4; }
/// Bytes per packed element.
inline constexpr int element_bytes(Precision p) noexcept { return p == Precision::f32 ? 4 : p == Precision::bf16 ? 2 : 1; }

/// The widest ISA this CPU (and operating system) runs; detected once.
inline Isa cpu_isa() noexcept {
#if SKNET_HAS_SIMD_KERNELS
  static const Isa detected = [] {
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx2") &&
        __builtin_cpu_supports("fma"))
      return Isa::avx512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return Isa::avx2;
    return Isa::portable;
  }();
  return detected;
#else
  return Isa::portable;
#endif
}

/// Whether kernels for `isa` can run here.
inline bool cpu_supports(Isa isa) noexcept { return int(isa) <= int(cpu_isa()); }

/// Instruction-set extensions on top of AVX-512 that low-precision kernels use.
enum class Avx512Extension { bf16, vnni };
/// Whether this CPU (and operating system) runs the avx512 kernels and `e` (detected once).
inline bool cpu_has(Avx512Extension e) noexcept {
#if SKNET_HAS_SIMD_KERNELS
  static const bool bf16 = [] {
    __builtin_cpu_init();
    return cpu_isa() == Isa::avx512 && __builtin_cpu_supports("avx512bf16");
  }();
  static const bool vnni = [] {
    __builtin_cpu_init();
    return cpu_isa() == Isa::avx512 && __builtin_cpu_supports("avx512vnni");
  }();
  return e == Avx512Extension::bf16 ? bf16 : vnni;
#else
  (void)e;
  return false;
#endif
}

namespace detail {
/// The process-wide limit set by set_isa_limit (-1: none).
inline std::atomic<int>& isa_limit_setting() noexcept {
  static std::atomic<int> limit{-1};
  return limit;
}
/// SKNET_ISA from the environment, read once (-1 when unset). An unknown value throws ConfigError on
/// every call to active_isa(), so a typo never silently runs another ISA.
inline int isa_environment(std::string* bad_value) {
  static const std::string raw = [] {
    const char* v = std::getenv("SKNET_ISA");
    return std::string(v ? v : "");
  }();
  if (raw.empty()) return -1;
  for (int i = 0; i < kIsaCount; ++i)
    if (raw == isa_name(Isa(i))) return i;
  if (bad_value) *bad_value = raw;
  return -2;
}
}  // namespace detail

/// Narrows the ISA that later prepare() calls pack for (never wider than cpu_isa()); affects the whole
/// process. Models already prepared keep their ISA.
inline void set_isa_limit(Isa isa) noexcept { detail::isa_limit_setting().store(int(isa)); }
/// Removes the limit of set_isa_limit.
inline void clear_isa_limit() noexcept { detail::isa_limit_setting().store(-1); }

/// The ISA prepare() packs for by default: cpu_isa(), narrowed by SKNET_ISA and set_isa_limit().
/// Throws ConfigError when SKNET_ISA holds something other than portable, avx2 or avx512.
inline Isa active_isa() {
  int isa = int(cpu_isa());
  std::string bad;
  const int env = detail::isa_environment(&bad);
  if (env == -2) sknet::detail::fail<ConfigError>("SKNET_ISA", "environment variable", "portable, avx2 or avx512",
                                           "'" + bad + "'");
  if (env >= 0) isa = std::min(isa, env);
  const int limit = detail::isa_limit_setting().load();
  if (limit >= 0) isa = std::min(isa, limit);
  return Isa(isa);
}

/// Sets flush-to-zero and denormals-are-zero for the current thread while alive (x86), so denormal
/// intermediates never slow a forward down; restores the previous mode on exit.
class DenormalsAreZero {
 public:
#if defined(SKNET_X86)
  DenormalsAreZero() noexcept : saved_(_mm_getcsr()) { _mm_setcsr(saved_ | 0x8040u); }
  ~DenormalsAreZero() { _mm_setcsr(saved_); }
  DenormalsAreZero(const DenormalsAreZero&) = delete;
  DenormalsAreZero& operator=(const DenormalsAreZero&) = delete;

 private:
  unsigned saved_;
#endif
};

/// Flush-to-zero and denormals-are-zero for the rest of the current thread's life (pool workers).
inline void set_denormals_are_zero() noexcept {
#if defined(SKNET_X86)
  _mm_setcsr(_mm_getcsr() | 0x8040u);
#endif
}

/// Thrown by kernels and packers on an invalid geometry or argument.
class KernelError : public ConfigError {
 public:
  using ConfigError::ConfigError;
};

/// Which kernels a packed weight buffer is for and how it is laid out: the ISA, the precision, the
/// output channels per packed block (vector lanes) and the reduction elements per lane.
struct PackedLayout {
  Isa isa = Isa::portable;
  Precision precision = Precision::f32;
  std::int64_t block = 8;
  int reduction_group = 1;
};

/// Throws KernelError unless kernels for `isa` and `p` exist and run on this CPU.
inline void require_kernels(Isa isa, Precision p, const char* who) {
  if (!cpu_supports(isa))
    sknet::detail::fail<KernelError>(who, "instruction set", std::string("at most ") + isa_name(cpu_isa()) + " on this CPU",
                                     isa_name(isa));
  (void)p;  // every precision runs on every ISA (bf16 and int8 through slower kernels where the CPU lacks them)
}

}  // namespace kernels
}  // namespace sknet
