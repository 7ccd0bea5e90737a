// sknet kernels: the list of every microkernel, kept once.
//
// The X-macro lists below name each kernel with its ISA; the dispatcher (pointwise_kernel,
// sk_branches_kernel), the tests (tests/test_kernels_*.cpp sweep every entry against the reference
// kernels, skipping an ISA the CPU lacks) and the benchmarks (bench/bench_*.cpp) all expand them, so a
// kernel added here is dispatched, tested and benchmarked at once. Entries are (isa, function, name);
// the per-ISA entry "pointwise__<isa>" is the one the dispatcher runs (it picks the tiling per shape).
#pragma once

#include "sknet/kernels/dispatch.hpp"
#include "sknet/kernels/grouped_conv.hpp"
#include "sknet/kernels/max_pool.hpp"
#include "sknet/kernels/se_gate.hpp"
#include "sknet/kernels/pointwise.hpp"
#include "sknet/kernels/pointwise_bf16.hpp"
#include "sknet/kernels/pointwise_int8.hpp"
#include "sknet/kernels/sk_branches_bf16.hpp"
#include "sknet/kernels/sk_branches_int8.hpp"

// X(isa, function in namespace sknet::kernels::<isa>, blocking (or none), name)
#define SKNET_POINTWISE_KERNEL_LIST(X)                                              \
  X(avx512, pointwise_conv, none, "pointwise__avx512")                              \
  X(avx512, pointwise_6x64__avx512, kPointwise6x64, "pointwise_6x64__avx512")       \
  X(avx512, pointwise_7x48__avx512, kPointwise7x48, "pointwise_7x48__avx512")       \
  X(avx2, pointwise_conv, none, "pointwise__avx2")                                  \
  X(avx2, pointwise_6x16__avx2, kPointwise6x16, "pointwise_6x16__avx2")             \
  X(portable, pointwise_conv, none, "pointwise__portable")                          \
  X(portable, pointwise_4x8__portable, kPointwise4x8, "pointwise_4x8__portable")

// X(namespace, isa, needs AVX512_BF16, function, name): the bf16 1x1 convolutions (the dispatcher runs
// the first that the packed ISA and the CPU allow).
#define SKNET_POINTWISE_BF16_KERNEL_LIST(X)                                                   \
  X(avx512_bf16, avx512, true, pointwise_bf16, "pointwise_bf16__avx512_bf16")                 \
  X(avx512, avx512, false, pointwise_bf16, "pointwise_bf16__avx512_widening")                 \
  X(portable, portable, false, pointwise_bf16, "pointwise_bf16__portable")

// X(namespace, isa, needs AVX512_VNNI, function, name): the int8 1x1 convolutions (the dispatcher runs
// the first that the packed ISA and the CPU allow).
#define SKNET_POINTWISE_INT8_KERNEL_LIST(X)                                                   \
  X(avx512_vnni, avx512, true, pointwise_int8, "pointwise_int8__avx512_vnni")                 \
  X(avx512, avx512, false, pointwise_int8, "pointwise_int8__avx512_widening")                 \
  X(portable, portable, false, pointwise_int8, "pointwise_int8__portable")

// X(isa, function in namespace sknet::kernels::<isa>, name)
#define SKNET_SK_BRANCH_KERNEL_LIST(X)                                       \
  X(avx512, grouped_conv3x3_sk__avx512, "grouped_conv3x3_sk__avx512")        \
  X(avx2, grouped_conv3x3_sk__avx2, "grouped_conv3x3_sk__avx2")              \
  X(portable, grouped_conv3x3_sk__portable, "grouped_conv3x3_sk__portable")

// X(namespace, isa, needs AVX512_BF16, function, name): the bf16 SK branch convolutions (the dispatcher
// runs the first that the packed ISA and the CPU allow).
#define SKNET_SK_BRANCH_BF16_KERNEL_LIST(X)                                                             \
  X(avx512_bf16, avx512, true, grouped_conv3x3_sk_bf16, "grouped_conv3x3_sk_bf16__avx512_bf16")         \
  X(avx512, avx512, false, grouped_conv3x3_sk_bf16, "grouped_conv3x3_sk_bf16__avx512_widening")         \
  X(portable, portable, false, grouped_conv3x3_sk_bf16, "grouped_conv3x3_sk_bf16__portable")

// X(namespace, isa, needs AVX512_VNNI, function, name): the int8 SK branch convolutions (the dispatcher
// runs the first that the packed ISA and the CPU allow).
#define SKNET_SK_BRANCH_INT8_KERNEL_LIST(X)                                                             \
  X(avx512_vnni, avx512, true, grouped_conv3x3_sk_int8, "grouped_conv3x3_sk_int8__avx512_vnni")         \
  X(avx512, avx512, false, grouped_conv3x3_sk_int8, "grouped_conv3x3_sk_int8__avx512_widening")         \
  X(portable, portable, false, grouped_conv3x3_sk_int8, "grouped_conv3x3_sk_int8__portable")

// X(namespace, isa, needs AVX512_BF16, function, name): the Select step on bf16 branch outputs.
#define SKNET_SK_SELECT_BF16_KERNEL_LIST(X)                                         \
  X(avx512_bf16, avx512, true, sk_select_bf16, "sk_select_bf16__avx512_bf16")         \
  X(avx512, avx512, false, sk_select_bf16, "sk_select_bf16__avx512_widening")         \
  X(portable, portable, false, sk_select_bf16, "sk_select_bf16__portable")

// X(isa, function in namespace sknet::kernels::<isa>, name)
#define SKNET_SK_SELECT_KERNEL_LIST(X)                     \
  X(avx512, sk_select__avx512, "sk_select__avx512")       \
  X(avx2, sk_select__avx2, "sk_select__avx2")             \
  X(portable, sk_select__portable, "sk_select__portable")

// X(isa, name): the in-process FMA peak microkernel of each ISA (benchmarks' peak_pct).
#define SKNET_FMA_PEAK_KERNEL_LIST(X) \
  X(avx512, "fma_peak__avx512")       \
  X(avx2, "fma_peak__avx2")           \
  X(portable, "fma_peak__portable")

namespace sknet {
namespace kernels {

/// One pointwise microkernel. `blocking` and `tile` expose its register tiling and cache blocking to
/// the tests (which rerun it with tiny cache blocks); both are null for the per-ISA dispatcher.
struct PointwiseKernelInfo {
  const char* name;
  Isa isa;
  PointwiseKernelFn fn;
  const detail::PointwiseBlocking* blocking;
  detail::PointwiseTileFn (*tile)(int mr, int nv);
};

struct PointwiseBf16KernelInfo {
  const char* name;
  Isa isa;
  bool needs_avx512_bf16;  ///< runs only where cpu_has_avx512_bf16()
  PointwiseBf16KernelFn fn;
  /// Whether this CPU runs it.
  bool runs_here() const noexcept { return cpu_supports(isa) && (!needs_avx512_bf16 || cpu_has_avx512_bf16()); }
};

struct PointwiseInt8KernelInfo {
  const char* name;
  Isa isa;
  bool needs_avx512_vnni;  ///< runs only where cpu_has_avx512_vnni()
  PointwiseInt8KernelFn fn;
  /// Whether this CPU runs it.
  bool runs_here() const noexcept { return cpu_supports(isa) && (!needs_avx512_vnni || cpu_has_avx512_vnni()); }
};

struct SKBranchKernelInfo {
  const char* name;
  Isa isa;
  SKBranchKernelFn fn;
};

/// A kernel of a bf16 SK list (function type Fn).
template <class Fn>
struct SKBf16KernelInfo {
  const char* name;
  Isa isa;
  bool needs_avx512_bf16;  ///< runs only where cpu_has_avx512_bf16()
  Fn fn;
  /// Whether this CPU runs it.
  bool runs_here() const noexcept { return cpu_supports(isa) && (!needs_avx512_bf16 || cpu_has_avx512_bf16()); }
};
using SKBranchBf16KernelInfo = SKBf16KernelInfo<SKBranchBf16KernelFn>;
using SKSelectBf16KernelInfo = SKBf16KernelInfo<SKSelectBf16KernelFn>;

struct SKBranchInt8KernelInfo {
  const char* name;
  Isa isa;
  bool needs_avx512_vnni;  ///< runs only where cpu_has_avx512_vnni()
  SKBranchInt8KernelFn fn;
  /// Whether this CPU runs it.
  bool runs_here() const noexcept { return cpu_supports(isa) && (!needs_avx512_vnni || cpu_has_avx512_vnni()); }
};

struct SKSelectKernelInfo {
  const char* name;
  Isa isa;
  SKSelectKernelFn fn;
};

/// Peak multiply-add throughput of one core in GFLOP/s (2 per multiply-add), measured by running
/// independent FMA chains for about `seconds`.
using FmaPeakFn = double (*)(double seconds);
struct FmaPeakKernelInfo {
  const char* name;
  Isa isa;
  FmaPeakFn fn;
};

/// Every microkernel, from the lists above, in list order.
struct KernelList {
  const PointwiseKernelInfo* pointwise;
  int pointwise_count;
  const SKBranchKernelInfo* sk_branches;
  int sk_branches_count;
  const SKSelectKernelInfo* sk_select;
  int sk_select_count;
  const FmaPeakKernelInfo* fma_peak;
  int fma_peak_count;
  const PointwiseBf16KernelInfo* pointwise_bf16;
  int pointwise_bf16_count;
  /// The vdpbf16ps peak (GFLOP/s, 2 per multiply-add; null in builds without x86 SIMD kernels): run it
  /// only where cpu_has_avx512_bf16().
  FmaPeakFn bf16_dot_peak;
  const PointwiseInt8KernelInfo* pointwise_int8;
  int pointwise_int8_count;
  /// The vpdpbusd peak (GOP/s, 2 per multiply-add; null without x86 SIMD kernels): run it only where
  /// cpu_has_avx512_vnni().
  FmaPeakFn int8_dot_peak;
  const SKBranchBf16KernelInfo* sk_branches_bf16;
  int sk_branches_bf16_count;
  const SKSelectBf16KernelInfo* sk_select_bf16;
  int sk_select_bf16_count;
  const SKBranchInt8KernelInfo* sk_branches_int8;
  int sk_branches_int8_count;
};

inline namespace SKNET_KERNEL_ABI {
SKNET_KERNEL_ENTRY const KernelList& kernel_list() noexcept;
}  // namespace SKNET_KERNEL_ABI

}  // namespace kernels
}  // namespace sknet

#if SKNET_KERNEL_BODIES
#include <array>

#include "sknet/kernels/avx2/fma_peak.hpp"
#include "sknet/kernels/avx2/grouped_conv.hpp"
#include "sknet/kernels/avx2/pointwise.hpp"
#include "sknet/kernels/avx512/grouped_conv.hpp"
#include "sknet/kernels/avx512/pointwise.hpp"
#include "sknet/kernels/portable/grouped_conv.hpp"
#include "sknet/kernels/portable/pointwise.hpp"
#include "sknet/kernels/avx512/fma_peak.hpp"
#include "sknet/kernels/portable/fma_peak.hpp"
#include "sknet/kernels/avx512/pointwise_bf16.hpp"
#include "sknet/kernels/portable/pointwise_bf16.hpp"
#include "sknet/kernels/avx512/pointwise_int8.hpp"
#include "sknet/kernels/portable/pointwise_int8.hpp"
#include "sknet/kernels/avx512/sk_branches_bf16.hpp"
#include "sknet/kernels/portable/sk_branches_bf16.hpp"
#include "sknet/kernels/avx512/sk_branches_int8.hpp"
#include "sknet/kernels/portable/sk_branches_int8.hpp"
#include "sknet/kernels/avx2/row_kernels.hpp"
#include "sknet/kernels/avx512/row_kernels.hpp"
#include "sknet/kernels/portable/row_kernels.hpp"

// Rows of an ISA this build has no kernels for (not x86-64) drop out of the tables.
#define SKNET_IF_ISA_portable(...) __VA_ARGS__
#if SKNET_HAS_SIMD_KERNELS
#define SKNET_IF_ISA_avx512(...) __VA_ARGS__
#define SKNET_IF_ISA_avx2(...) __VA_ARGS__
#else
#define SKNET_IF_ISA_avx512(...)
#define SKNET_IF_ISA_avx2(...)
#endif

namespace sknet {
namespace kernels {
inline namespace SKNET_KERNEL_ABI {
SKNET_KERNEL_ENTRY const KernelList& kernel_list() noexcept {
  static const PointwiseKernelInfo pointwise[] = {
#define SKNET_POINTWISE_ROW(isa, fn, blocking, name) \
  SKNET_IF_ISA_##isa({name, Isa::isa, isa::fn, SKNET_POINTWISE_BLOCKING_##blocking(isa)}, )
#define SKNET_POINTWISE_BLOCKING_none(isa) nullptr, nullptr
#define SKNET_POINTWISE_BLOCKING_kPointwise6x64(isa) &isa::kPointwise6x64, isa::pointwise_tile
#define SKNET_POINTWISE_BLOCKING_kPointwise7x48(isa) &isa::kPointwise7x48, isa::pointwise_tile
#define SKNET_POINTWISE_BLOCKING_kPointwise6x16(isa) &isa::kPointwise6x16, isa::pointwise_tile
#define SKNET_POINTWISE_BLOCKING_kPointwise4x8(isa) &isa::kPointwise4x8, isa::pointwise_tile
      SKNET_POINTWISE_KERNEL_LIST(SKNET_POINTWISE_ROW)};
  static const SKBranchKernelInfo sk_branches[] = {
#define SKNET_SK_BRANCH_ROW(isa, fn, name) SKNET_IF_ISA_##isa({name, Isa::isa, isa::fn}, )
      SKNET_SK_BRANCH_KERNEL_LIST(SKNET_SK_BRANCH_ROW)};
  static const SKSelectKernelInfo sk_select[] = {
#define SKNET_SK_SELECT_ROW(isa, fn, name) SKNET_IF_ISA_##isa({name, Isa::isa, isa::fn}, )
      SKNET_SK_SELECT_KERNEL_LIST(SKNET_SK_SELECT_ROW)};
  static const FmaPeakKernelInfo fma_peak[] = {
#define SKNET_FMA_PEAK_ROW(isa, name) SKNET_IF_ISA_##isa({name, Isa::isa, isa::fma_peak_gflops}, )
      SKNET_FMA_PEAK_KERNEL_LIST(SKNET_FMA_PEAK_ROW)};
  static const PointwiseBf16KernelInfo pointwise_bf16[] = {
#define SKNET_POINTWISE_BF16_ROW(ns, isa, native, fn, name) SKNET_IF_ISA_##isa({name, Isa::isa, native, ns::fn}, )
      SKNET_POINTWISE_BF16_KERNEL_LIST(SKNET_POINTWISE_BF16_ROW)};
  static const PointwiseInt8KernelInfo pointwise_int8[] = {
#define SKNET_POINTWISE_INT8_ROW(ns, isa, native, fn, name) SKNET_IF_ISA_##isa({name, Isa::isa, native, ns::fn}, )
      SKNET_POINTWISE_INT8_KERNEL_LIST(SKNET_POINTWISE_INT8_ROW)};
  static const SKBranchBf16KernelInfo sk_branches_bf16[] = {
#define SKNET_SK_BRANCH_BF16_ROW(ns, isa, native, fn, name) SKNET_IF_ISA_##isa({name, Isa::isa, native, ns::fn}, )
      SKNET_SK_BRANCH_BF16_KERNEL_LIST(SKNET_SK_BRANCH_BF16_ROW)};
  static const SKSelectBf16KernelInfo sk_select_bf16[] = {
      SKNET_SK_SELECT_BF16_KERNEL_LIST(SKNET_SK_BRANCH_BF16_ROW)};
  static const SKBranchInt8KernelInfo sk_branches_int8[] = {
      SKNET_SK_BRANCH_INT8_KERNEL_LIST(SKNET_SK_BRANCH_BF16_ROW)};
  static const KernelList list{pointwise, int(sizeof(pointwise) / sizeof(pointwise[0])),
                               sk_branches, int(sizeof(sk_branches) / sizeof(sk_branches[0])),
                               sk_select, int(sizeof(sk_select) / sizeof(sk_select[0])),
                               fma_peak, int(sizeof(fma_peak) / sizeof(fma_peak[0])),
                               pointwise_bf16, int(sizeof(pointwise_bf16) / sizeof(pointwise_bf16[0])),
#if SKNET_HAS_SIMD_KERNELS
                               &avx512_bf16::bf16_dot_peak_gflops,
#else
                               nullptr,
#endif
                               pointwise_int8, int(sizeof(pointwise_int8) / sizeof(pointwise_int8[0])),
#if SKNET_HAS_SIMD_KERNELS
                               &avx512_vnni::int8_dot_peak_gops,
#else
                               nullptr,
#endif
                               sk_branches_bf16, int(sizeof(sk_branches_bf16) / sizeof(sk_branches_bf16[0])),
                               sk_select_bf16, int(sizeof(sk_select_bf16) / sizeof(sk_select_bf16[0])),
                               sk_branches_int8, int(sizeof(sk_branches_int8) / sizeof(sk_branches_int8[0]))};
  return list;
}

// The dispatcher: per ISA, the first listed kernel of the operation (for pointwise, the ISA's own
// dispatcher, the entry without a fixed blocking); the portable kernel where the build has none.
template <class Info, class Eligible>
std::array<decltype(Info::fn), kIsaCount> kernel_per_isa(const Info* list, int count, Eligible eligible) {
  std::array<decltype(Info::fn), kIsaCount> table{};
  for (int i = count - 1; i >= 0; --i)
    if (eligible(list[i])) table[std::size_t(list[i].isa)] = list[i].fn;
  for (auto& fn : table)
    if (!fn) fn = table[std::size_t(Isa::portable)];
  return table;
}

SKNET_KERNEL_ENTRY PointwiseKernelFn pointwise_kernel(Isa isa) noexcept {
  static const auto table = kernel_per_isa(kernel_list().pointwise, kernel_list().pointwise_count,
                           [](const PointwiseKernelInfo& k) { return !k.blocking; });
  return table[std::size_t(isa)];
}

/// The first listed kernel (of a bf16 or int8 list, which ends with the portable one) that weights packed
/// for `isa` may run on this CPU.
template <class Info>
const Info& first_runnable(const Info* list, int count, Isa isa) noexcept {
  for (int i = 0; i < count; ++i)
    if (int(list[i].isa) <= int(isa) && list[i].runs_here()) return list[i];
  return list[count - 1];  // portable
}

/// The kernel function of entry(isa) for every ISA.
template <class Info>
std::array<decltype(Info::fn), kIsaCount> per_isa(const Info& (*entry)(Isa) noexcept) {
  std::array<decltype(Info::fn), kIsaCount> table{};
  for (int i = 0; i < kIsaCount; ++i) table[std::size_t(i)] = entry(Isa(i)).fn;
  return table;
}

inline const PointwiseBf16KernelInfo& pointwise_bf16_entry(Isa isa) noexcept {
  return first_runnable(kernel_list().pointwise_bf16, kernel_list().pointwise_bf16_count, isa);
}

SKNET_KERNEL_ENTRY PointwiseBf16KernelFn pointwise_bf16_kernel(Isa isa) noexcept {
  static const auto table = per_isa(pointwise_bf16_entry);
  return table[std::size_t(isa)];
}

SKNET_KERNEL_ENTRY const char* pointwise_bf16_kernel_name(Isa isa) noexcept { return pointwise_bf16_entry(isa).name; }

SKNET_KERNEL_ENTRY Bf16NarrowFn bf16_narrow_kernel(Isa isa) noexcept {
#if SKNET_HAS_SIMD_KERNELS
  if (isa == Isa::avx512 && cpu_supports(Isa::avx512))
    return cpu_has_avx512_bf16() ? &avx512_bf16::narrow_bf16 : &avx512::narrow_bf16;
#else
  (void)isa;
#endif
  return &portable::narrow_bf16;
}

SKNET_KERNEL_ENTRY Bf16WidenFn bf16_widen_kernel(Isa isa) noexcept {
#if SKNET_HAS_SIMD_KERNELS
  if (isa == Isa::avx512 && cpu_supports(Isa::avx512)) return &avx512::widen_bf16_rows;
#else
  (void)isa;
#endif
  return &portable::widen_bf16_rows;
}

SKNET_KERNEL_ENTRY MaxPoolRowFn max_pool_row_kernel(Isa isa) noexcept {
#if SKNET_HAS_SIMD_KERNELS
  if (isa == Isa::avx512 && cpu_supports(Isa::avx512)) return &avx512::max_pool_3x3s2_row;
  if (isa == Isa::avx2 && cpu_supports(Isa::avx2)) return &avx2::max_pool_3x3s2_row;
#else
  (void)isa;
#endif
  return &portable::max_pool_3x3s2_row;
}

SKNET_KERNEL_ENTRY SEGateRowsFn se_gate_rows_kernel(Isa isa) noexcept {
#if SKNET_HAS_SIMD_KERNELS
  if (isa == Isa::avx512 && cpu_supports(Isa::avx512)) return &avx512::se_gate_rows;
  if (isa == Isa::avx2 && cpu_supports(Isa::avx2)) return &avx2::se_gate_rows;
#else
  (void)isa;
#endif
  return &portable::se_gate_rows;
}

SKNET_KERNEL_ENTRY U8QuantizeFn u8_quantize_kernel(Isa isa) noexcept {
#if SKNET_HAS_SIMD_KERNELS
  if (isa == Isa::avx512 && cpu_supports(Isa::avx512)) return &avx512::quantize_u8_row;
#else
  (void)isa;
#endif
  return &portable::quantize_u8_row;
}

inline const PointwiseInt8KernelInfo& pointwise_int8_entry(Isa isa) noexcept {
  return first_runnable(kernel_list().pointwise_int8, kernel_list().pointwise_int8_count, isa);
}

SKNET_KERNEL_ENTRY PointwiseInt8KernelFn pointwise_int8_kernel(Isa isa) noexcept {
  static const auto table = per_isa(pointwise_int8_entry);
  return table[std::size_t(isa)];
}

SKNET_KERNEL_ENTRY const char* pointwise_int8_kernel_name(Isa isa) noexcept { return pointwise_int8_entry(isa).name; }

inline const SKBranchBf16KernelInfo& sk_branches_bf16_entry(Isa isa) noexcept {
  return first_runnable(kernel_list().sk_branches_bf16, kernel_list().sk_branches_bf16_count, isa);
}

SKNET_KERNEL_ENTRY SKBranchBf16KernelFn sk_branches_bf16_kernel(Isa isa) noexcept {
  static const auto table = per_isa(sk_branches_bf16_entry);
  return table[std::size_t(isa)];
}

SKNET_KERNEL_ENTRY const char* sk_branches_bf16_kernel_name(Isa isa) noexcept { return sk_branches_bf16_entry(isa).name; }

inline const SKSelectBf16KernelInfo& sk_select_bf16_entry(Isa isa) noexcept {
  return first_runnable(kernel_list().sk_select_bf16, kernel_list().sk_select_bf16_count, isa);
}

SKNET_KERNEL_ENTRY SKSelectBf16KernelFn sk_select_bf16_kernel(Isa isa) noexcept {
  static const auto table = per_isa(sk_select_bf16_entry);
  return table[std::size_t(isa)];
}

inline const SKBranchInt8KernelInfo& sk_branches_int8_entry(Isa isa) noexcept {
  return first_runnable(kernel_list().sk_branches_int8, kernel_list().sk_branches_int8_count, isa);
}

SKNET_KERNEL_ENTRY SKBranchInt8KernelFn sk_branches_int8_kernel(Isa isa) noexcept {
  static const auto table = per_isa(sk_branches_int8_entry);
  return table[std::size_t(isa)];
}

SKNET_KERNEL_ENTRY const char* sk_branches_int8_kernel_name(Isa isa) noexcept { return sk_branches_int8_entry(isa).name; }

SKNET_KERNEL_ENTRY SKBranchKernelFn sk_branches_kernel(Isa isa) noexcept {
  static const auto table = kernel_per_isa(kernel_list().sk_branches, kernel_list().sk_branches_count,
                           [](const SKBranchKernelInfo&) { return true; });
  return table[std::size_t(isa)];
}

SKNET_KERNEL_ENTRY SKSelectKernelFn sk_select_kernel(Isa isa) noexcept {
  static const auto table = kernel_per_isa(kernel_list().sk_select, kernel_list().sk_select_count,
                           [](const SKSelectKernelInfo&) { return true; });
  return table[std::size_t(isa)];
}
}  // namespace SKNET_KERNEL_ABI
}  // namespace kernels
}  // namespace sknet
#endif
