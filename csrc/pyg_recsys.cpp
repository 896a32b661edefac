// Operator library of pyg_recsys: schemas of every op live here, the
// per-backend kernels in ops/cpu and ops/cuda register implementations.
#include <torch/library.h>

#include <cstdint>

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
}
