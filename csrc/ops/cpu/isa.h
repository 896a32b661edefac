// Run-time choice of the vector ISA of the CPU kernels.
//
// The extension is compiled for the portable baseline of the target (SSE2 on
// x86-64): no flag of the build machine enters the build. The hot loops are
// compiled a second time for AVX2 + FMA through the function attribute
// PYG_RECSYS_TARGET_AVX2, and each op picks a version at run time from
// active_isa(): the best the CPU supports, unless PYG_RECSYS_ISA (baseline,
// avx2 or auto; read once, at the first call) or the set_cpu_isa op says
// otherwise. Only self-contained loops on raw pointers carry the attribute,
// so no shared inline function of ATen or the standard library is ever
// emitted for AVX2.
#pragma once

#include <string>

#if (defined(__x86_64__) || defined(__i386__)) && \
    (defined(__GNUC__) || defined(__clang__))
#define PYG_RECSYS_X86_DISPATCH 1
#define PYG_RECSYS_TARGET_AVX2 __attribute__((target("avx2,fma")))
#endif

namespace pyg_recsys {
namespace cpu {

enum class Isa : int { kBaseline = 0, kAvx2 = 1 };

// The ISA the kernels use now (cheap: one atomic load).
Isa active_isa();

// The ops cpu_isa() -> str and set_cpu_isa(str isa) -> str: the active ISA's
// name ("baseline" or "avx2"); set_cpu_isa also accepts "auto" (the best the
// CPU supports), returns the ISA now active and raises a ValueError for an
// unknown name or an ISA this CPU lacks.
std::string cpu_isa();
std::string set_cpu_isa(std::string isa);

}  // namespace cpu
}  // namespace pyg_recsys
