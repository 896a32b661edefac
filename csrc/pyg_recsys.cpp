// Operator library of pyg_recsys: schemas of every op live here, the
// per-backend kernels in ops/cpu and ops/cuda register implementations.
#include <torch/library.h>

#include <cstdint>

#include "ops/cpu/isa.h"

#ifdef WITH_CUDA
#include <cuda.h>  // CUDA_VERSION
#endif

namespace pyg_recsys {

int64_t cuda_version() {
#ifdef WITH_CUDA
  return CUDA_VERSION;
#else
  return -1;
#endif
}

}  // namespace pyg_recsys

TORCH_LIBRARY_FRAGMENT(pyg_recsys, m) {
  m.def("cuda_version", &pyg_recsys::cuda_version);
  // The vector ISA of the CPU kernels, chosen at run time ("baseline" or
  // "avx2"; see ops/cpu/isa.h); set_cpu_isa also takes "auto".
  m.def("cpu_isa() -> str", &pyg_recsys::cpu::cpu_isa);
  m.def("set_cpu_isa(str isa) -> str", &pyg_recsys::cpu::set_cpu_isa);
  // out = A @ x for A in CSR (int64 rowptr, int32/int64 col, optional value).
  m.def("spmm_csr(Tensor rowptr, Tensor col, Tensor? value, Tensor x) -> "
        "Tensor");
  // out[e] = <a[row(e)], b[col(e)]> for every stored entry e.
  m.def("sddmm_csr(Tensor rowptr, Tensor col, Tensor a, Tensor b) -> Tensor");
  // out = sum_k alpha[k] A^k x, k = 0..len(alpha)-1, with O(N F) memory, by
  // Horner's rule (y <- A y + alpha[k] x); bf16_storage keeps the rows that
  // are gathered (x, then each inner Horner term) in bfloat16, accumulating
  // in float32 (float32 x only).
  m.def("light_propagate_csr(Tensor rowptr, Tensor col, Tensor? value, "
        "Tensor x, float[] alpha, bool bf16_storage=False) -> Tensor");
  // One block of logits [R, G * I] in place to the gradient of the softmax
  // cross-entropy of each of its G groups of I columns (softmax minus the
  // one-hot of target[r, g], an index in [0, I)); returns the per-row loss
  // sum_g (logsumexp - logit of the target), shape [R].
  m.def("softmax_ce_rows_(Tensor(a!) logits, Tensor target, int groups) -> "
        "Tensor");
}
