// Run-time ISA choice of the CPU kernels (see isa.h).
#include "ops/cpu/isa.h"

#include <c10/util/Exception.h>

#include <atomic>
#include <cstdlib>

namespace pyg_recsys {
namespace cpu {
namespace {

bool cpu_has_avx2_fma() {
#ifdef PYG_RECSYS_X86_DISPATCH
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
  return false;
#endif
}

Isa best_isa() { return cpu_has_avx2_fma() ? Isa::kAvx2 : Isa::kBaseline; }

const char* isa_name(Isa isa) {
  return isa == Isa::kAvx2 ? "avx2" : "baseline";
}

// The ISA of PYG_RECSYS_ISA; an unknown or unsupported request warns and
// falls back (an op cannot raise at load time).
Isa initial_isa() {
  const char* env = std::getenv("PYG_RECSYS_ISA");
  const std::string want = env ? env : "";
  if (want.empty() || want == "auto") return best_isa();
  if (want == "baseline") return Isa::kBaseline;
  if (want == "avx2") {
    if (cpu_has_avx2_fma()) return Isa::kAvx2;
    TORCH_WARN("pyg_recsys: PYG_RECSYS_ISA=avx2, but this CPU lacks AVX2 or ",
               "FMA; using the baseline kernels");
    return Isa::kBaseline;
  }
  TORCH_WARN("pyg_recsys: unknown PYG_RECSYS_ISA='", want, "' (expected ",
             "baseline, avx2 or auto); using ", isa_name(best_isa()));
  return best_isa();
}

std::atomic<int>& state() {
  static std::atomic<int> isa{static_cast<int>(initial_isa())};
  return isa;
}

}  // namespace

Isa active_isa() {
  return static_cast<Isa>(state().load(std::memory_order_relaxed));
}

std::string cpu_isa() { return isa_name(active_isa()); }

std::string set_cpu_isa(std::string isa) {
  Isa chosen = Isa::kBaseline;
  if (isa == "auto") {
    chosen = best_isa();
  } else if (isa == "baseline") {
    chosen = Isa::kBaseline;
  } else if (isa == "avx2") {
    TORCH_CHECK_VALUE(cpu_has_avx2_fma(), "set_cpu_isa: avx2 is not ",
                      "supported by this CPU (it needs AVX2 and FMA)");
    chosen = Isa::kAvx2;
  } else {
    TORCH_CHECK_VALUE(false, "set_cpu_isa: unknown ISA '", isa,
                      "' (expected baseline, avx2 or auto)");
  }
  state().store(static_cast<int>(chosen), std::memory_order_relaxed);
  return isa_name(chosen);
}

}  // namespace cpu
}  // namespace pyg_recsys
