// The FMA peak of one core per instruction set, measured once per benchmark process by the kernel
// list's fma_peak microkernels: the reference of every peak_pct counter.
#pragma once

#include <array>
#include <cstdio>
#include <string>

#include <sknet/kernels/kernel_list.hpp>

namespace sknet_bench {

/// GFLOP/s (2 per multiply-add) of one core at full multiply-add throughput with `isa`'s instructions,
/// measured on first use (about half a second); 0 when the CPU lacks the ISA.
inline double fma_peak_gflops(sknet::kernels::Isa isa) {
  static std::array<double, sknet::kernels::kIsaCount> peak{};
  double& p = peak[std::size_t(isa)];
  if (p == 0 && sknet::kernels::cpu_supports(isa)) {
    const auto& list = sknet::kernels::kernel_list();
    for (int i = 0; i < list.fma_peak_count; ++i)
      if (list.fma_peak[i].isa == isa) p = list.fma_peak[i].fn(0.5);
    std::fprintf(stderr, "measured %s FMA peak of one core: %.1f GFLOP/s (peak_pct counters are against it)\n",
                 sknet::kernels::isa_name(isa), p);
  }
  return p;
}

/// GFLOP/s (2 per multiply-add) of one core at full vdpbf16ps throughput (32 multiply-adds per
/// instruction), measured on first use; 0 when the CPU lacks AVX512_BF16.
inline double bf16_dot_peak_gflops() {
  static const double peak = [] {
    const auto& list = sknet::kernels::kernel_list();
    if (!list.bf16_dot_peak || !sknet::kernels::cpu_has_avx512_bf16()) return 0.0;
    const double p = list.bf16_dot_peak(0.5);
    std::fprintf(stderr, "measured vdpbf16ps peak of one core: %.1f GFLOP/s (bf16 peak_pct counters are against it)\n", p);
    return p;
  }();
  return peak;
}

/// GOP/s (2 per multiply-add) of one core at full vpdpbusd throughput (64 multiply-adds per
/// instruction), measured on first use; 0 when the CPU lacks AVX512_VNNI.
inline double int8_dot_peak_gops() {
  static const double peak = [] {
    const auto& list = sknet::kernels::kernel_list();
    if (!list.int8_dot_peak || !sknet::kernels::cpu_has_avx512_vnni()) return 0.0;
    const double p = list.int8_dot_peak(0.5);
    std::fprintf(stderr, "measured vpdpbusd peak of one core: %.1f GOP/s (int8 peak_pct counters are against it)\n", p);
    return p;
  }();
  return peak;
}

/// The ISA the process runs by default (cpu_isa narrowed by SKNET_ISA).
inline double fma_peak_gflops() { return fma_peak_gflops(sknet::kernels::active_isa()); }

/// "skipped: this CPU lacks avx512" or "" when `isa` runs here.
inline std::string skip_reason(sknet::kernels::Isa isa) {
  return sknet::kernels::cpu_supports(isa) ? std::string()
                                           : std::string("skipped: this CPU lacks ") + sknet::kernels::isa_name(isa);
}

}  // namespace sknet_bench
