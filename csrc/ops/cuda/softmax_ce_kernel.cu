// CUDA kernel of softmax_ce_rows_ (the same op as
// ops/cpu/softmax_ce_kernel.cpp): one thread block per (row, group) segment;
// block-wide reductions of the maximum and of sum exp(x - max) in shared
// memory, then the segment is rewritten as softmax minus the one-hot of its
// target, and the block's first thread writes logsumexp - x[target] into a
// per-segment buffer that is summed over the groups of each row.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include <cstdint>

namespace pyg_recsys {
namespace {

constexpr int kThreads = 256;

template <typename scalar_t>
__device__ scalar_t block_reduce(scalar_t v, scalar_t* shared, bool is_max) {
  const int t = threadIdx.x;
  shared[t] = v;
  __syncthreads();
  for (int s = kThreads / 2; s > 0; s >>= 1) {
    if (t < s) {
      const scalar_t a = shared[t], b = shared[t + s];
      // NaN wins the maximum, so that a NaN segment stays NaN.
      shared[t] = is_max ? ((a != a || a > b) ? a : b) : a + b;
    }
    __syncthreads();
  }
  const scalar_t out = shared[0];
  __syncthreads();
  return out;
}

template <typename scalar_t>
__global__ void softmax_ce_kernel(scalar_t* __restrict__ x,
                                  const int64_t* __restrict__ target,
                                  int64_t size, scalar_t* __restrict__ loss) {
  __shared__ scalar_t shared[kThreads];
  const int64_t seg = blockIdx.x;
  scalar_t* row = x + seg * size;
  const int64_t t = target[seg];
  scalar_t peak = -INFINITY;
  for (int64_t j = threadIdx.x; j < size; j += kThreads) {
    const scalar_t v = row[j];
    peak = (v != v || v > peak) ? v : peak;
  }
  peak = block_reduce(peak, shared, true);
  const scalar_t picked = row[t];
  __syncthreads();  // every thread has read row[t] before it is rewritten
  scalar_t sum = 0;
  for (int64_t j = threadIdx.x; j < size; j += kThreads) {
    const scalar_t e = exp(row[j] - peak);
    row[j] = e;
    sum += e;
  }
  sum = block_reduce(sum, shared, false);
  const scalar_t inv = scalar_t(1) / sum;
  for (int64_t j = threadIdx.x; j < size; j += kThreads) {
    row[j] = row[j] * inv - (j == t ? scalar_t(1) : scalar_t(0));
  }
  if (threadIdx.x == 0) loss[seg] = peak + log(sum) - picked;
}

at::Tensor softmax_ce_rows_cuda(at::Tensor& logits, const at::Tensor& target_,
                                int64_t groups) {
  TORCH_CHECK(logits.is_cuda() && logits.dim() == 2 &&
                  logits.is_contiguous(),
              "softmax_ce_rows_: logits must be a contiguous [R, G * I] CUDA "
              "tensor");
  TORCH_CHECK(groups > 0 && logits.size(1) % groups == 0,
              "softmax_ce_rows_: the columns must split into ", groups,
              " groups of equal size");
  c10::cuda::OptionalCUDAGuard guard(logits.device());
  auto target = target_.to(logits.device(), at::kLong).contiguous();
  TORCH_CHECK(target.dim() == 2 && target.size(0) == logits.size(0) &&
                  target.size(1) == groups,
              "softmax_ce_rows_: target must have shape [R, groups]");
  const int64_t rows = logits.size(0), size = logits.size(1) / groups;
  auto per_segment = at::empty({rows * groups}, logits.options());
  if (rows == 0) return at::zeros({0}, logits.options());
  TORCH_CHECK(size > 0, "softmax_ce_rows_: empty groups");
  TORCH_CHECK(target.min().item<int64_t>() >= 0 &&
                  target.max().item<int64_t>() < size,
              "softmax_ce_rows_: targets must lie in [0, ", size, ")");
  auto stream = c10::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES(logits.scalar_type(), "softmax_ce_rows_cuda", [&] {
    softmax_ce_kernel<scalar_t><<<rows * groups, kThreads, 0, stream>>>(
        logits.data_ptr<scalar_t>(), target.data_ptr<int64_t>(), size,
        per_segment.data_ptr<scalar_t>());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return per_segment.view({rows, groups}).sum(1);
}

}  // namespace

TORCH_LIBRARY_IMPL(pyg_recsys, CUDA, m) {
  m.impl("softmax_ce_rows_", &softmax_ce_rows_cuda);
}

}  // namespace pyg_recsys
