// CUDA kernels of the CSR products (the same ops as ops/cpu/spmm_kernel.cpp).
//
// spmm / light propagation: one warp per row. The warp reads 32 stored
// entries (column and value) at a time, coalesced, and broadcasts each with
// a shuffle; lane l accumulates features l, l + 32, ... of the row.
// sddmm: one warp per row; each entry's dot product is reduced across lanes.
// Offsets are 64-bit throughout.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include <cstdint>

namespace pyg_recsys {
namespace {

constexpr int kWarp = 32;
constexpr int kWarpsPerBlock = 8;
constexpr int kMaxChunks = 4;  // features per lane held in registers: 4 * 32

template <typename scalar_t, typename index_t, int CHUNKS>
__global__ void spmm_warp_kernel(const int64_t* __restrict__ rowptr,
                                 const index_t* __restrict__ col,
                                 const scalar_t* __restrict__ value,
                                 const scalar_t* __restrict__ x,
                                 int64_t num_rows, int64_t F, int64_t f_begin,
                                 scalar_t* __restrict__ nxt,
                                 scalar_t* __restrict__ out, scalar_t alpha) {
  const int lane = threadIdx.x % kWarp;
  const int64_t row =
      static_cast<int64_t>(blockIdx.x) * kWarpsPerBlock + threadIdx.x / kWarp;
  if (row >= num_rows) return;
  const int64_t e0 = rowptr[row], e1 = rowptr[row + 1];
  scalar_t acc[CHUNKS];
#pragma unroll
  for (int c = 0; c < CHUNKS; ++c) acc[c] = scalar_t(0);
  for (int64_t base = e0; base < e1; base += kWarp) {
    const int64_t e = base + lane;
    int64_t my_col = 0;
    scalar_t my_val = scalar_t(0);
    if (e < e1) {
      my_col = static_cast<int64_t>(col[e]);
      my_val = value ? value[e] : scalar_t(1);
    }
    const int64_t left = e1 - base;
    const int n = left < kWarp ? static_cast<int>(left) : kWarp;
    for (int j = 0; j < n; ++j) {
      const int64_t c = __shfl_sync(0xffffffff, my_col, j);
      const scalar_t v = __shfl_sync(0xffffffff, my_val, j);
      const scalar_t* xr = x + c * F;
#pragma unroll
      for (int k = 0; k < CHUNKS; ++k) {
        const int64_t f = f_begin + k * kWarp + lane;
        if (f < F) acc[k] += v * xr[f];
      }
    }
  }
#pragma unroll
  for (int k = 0; k < CHUNKS; ++k) {
    const int64_t f = f_begin + k * kWarp + lane;
    if (f < F) {
      if (nxt) nxt[row * F + f] = acc[k];
      if (out) out[row * F + f] += alpha * acc[k];
    }
  }
}

template <typename scalar_t, typename index_t>
void spmm_launch(const int64_t* rowptr, const index_t* col,
                 const scalar_t* value, const scalar_t* x, int64_t num_rows,
                 int64_t F, scalar_t* nxt, scalar_t* out, scalar_t alpha,
                 cudaStream_t stream) {
  if (num_rows == 0 || F == 0) return;
  const int64_t blocks = (num_rows + kWarpsPerBlock - 1) / kWarpsPerBlock;
  const int threads = kWarpsPerBlock * kWarp;
  constexpr int64_t span = kMaxChunks * kWarp;
  for (int64_t f0 = 0; f0 < F; f0 += span) {
    const int64_t width = F - f0 < span ? F - f0 : span;
    if (width <= kWarp) {
      spmm_warp_kernel<scalar_t, index_t, 1><<<blocks, threads, 0, stream>>>(
          rowptr, col, value, x, num_rows, F, f0, nxt, out, alpha);
    } else if (width <= 2 * kWarp) {
      spmm_warp_kernel<scalar_t, index_t, 2><<<blocks, threads, 0, stream>>>(
          rowptr, col, value, x, num_rows, F, f0, nxt, out, alpha);
    } else {
      spmm_warp_kernel<scalar_t, index_t, kMaxChunks>
          <<<blocks, threads, 0, stream>>>(rowptr, col, value, x, num_rows, F,
                                           f0, nxt, out, alpha);
    }
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  }
}

template <typename scalar_t, typename index_t>
__global__ void sddmm_warp_kernel(const int64_t* __restrict__ rowptr,
                                  const index_t* __restrict__ col,
                                  const scalar_t* __restrict__ a,
                                  const scalar_t* __restrict__ b,
                                  int64_t num_rows, int64_t F,
                                  scalar_t* __restrict__ out) {
  const int lane = threadIdx.x % kWarp;
  const int64_t row =
      static_cast<int64_t>(blockIdx.x) * kWarpsPerBlock + threadIdx.x / kWarp;
  if (row >= num_rows) return;
  const scalar_t* ar = a + row * F;
  for (int64_t e = rowptr[row]; e < rowptr[row + 1]; ++e) {
    const scalar_t* br = b + static_cast<int64_t>(col[e]) * F;
    scalar_t s = 0;
    for (int64_t f = lane; f < F; f += kWarp) s += ar[f] * br[f];
#pragma unroll
    for (int off = kWarp / 2; off > 0; off /= 2)
      s += __shfl_down_sync(0xffffffff, s, off);
    if (lane == 0) out[e] = s;
  }
}

void check_cuda(const at::Tensor& rowptr, const at::Tensor& col,
                const c10::optional<at::Tensor>& value, const at::Tensor& x,
                const char* op) {
  TORCH_CHECK(rowptr.is_cuda() && col.is_cuda() && x.is_cuda(), op,
              ": expected CUDA tensors");
  TORCH_CHECK(rowptr.get_device() == x.get_device() &&
                  col.get_device() == x.get_device(),
              op, ": all tensors must be on the same device");
  TORCH_CHECK(rowptr.dim() == 1 && rowptr.scalar_type() == at::kLong &&
                  rowptr.numel() >= 1,
              op, ": rowptr must be a non-empty 1-D int64 tensor");
  TORCH_CHECK(col.dim() == 1 && (col.scalar_type() == at::kLong ||
                                 col.scalar_type() == at::kInt),
              op, ": col must be a 1-D int32 or int64 tensor");
  TORCH_CHECK(x.dim() == 2, op, ": x must be 2-D");
  if (value.has_value()) {
    TORCH_CHECK(value->is_cuda() && value->numel() == col.numel() &&
                    value->scalar_type() == x.scalar_type(),
                op, ": value must be a CUDA tensor with one entry per column "
                "index and the dtype of x");
  }
}

at::Tensor spmm_csr_cuda(const at::Tensor& rowptr_, const at::Tensor& col_,
                         const c10::optional<at::Tensor>& value_,
                         const at::Tensor& x_) {
  check_cuda(rowptr_, col_, value_, x_, "spmm_csr");
  c10::cuda::OptionalCUDAGuard guard(x_.device());
  auto rowptr = rowptr_.contiguous();
  auto col = col_.contiguous();
  auto x = x_.contiguous();
  c10::optional<at::Tensor> value;
  if (value_.has_value()) value = value_->contiguous();
  const int64_t num_rows = rowptr.numel() - 1, F = x.size(1);
  auto out = at::empty({num_rows, F}, x.options());
  auto stream = c10::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "spmm_csr_cuda", [&] {
    AT_DISPATCH_INDEX_TYPES(col.scalar_type(), "spmm_csr_cuda_idx", [&] {
      spmm_launch<scalar_t, index_t>(
          rowptr.data_ptr<int64_t>(), col.data_ptr<index_t>(),
          value ? value->data_ptr<scalar_t>() : nullptr,
          x.data_ptr<scalar_t>(), num_rows, F, out.data_ptr<scalar_t>(),
          nullptr, scalar_t(0), stream);
    });
  });
  return out;
}

at::Tensor light_propagate_csr_cuda(const at::Tensor& rowptr_,
                                    const at::Tensor& col_,
                                    const c10::optional<at::Tensor>& value_,
                                    const at::Tensor& x_,
                                    at::ArrayRef<double> alpha,
                                    bool bf16_storage) {
  check_cuda(rowptr_, col_, value_, x_, "light_propagate_csr");
  TORCH_CHECK(!bf16_storage, "light_propagate_csr: bfloat16 storage is "
              "implemented for CPU only (use float32 storage on CUDA)");
  TORCH_CHECK(!alpha.empty(), "light_propagate_csr: alpha must hold at least "
              "one weight");
  c10::cuda::OptionalCUDAGuard guard(x_.device());
  auto rowptr = rowptr_.contiguous();
  auto col = col_.contiguous();
  auto x = x_.contiguous();
  c10::optional<at::Tensor> value;
  if (value_.has_value()) value = value_->contiguous();
  const int64_t num_rows = rowptr.numel() - 1, F = x.size(1);
  TORCH_CHECK(num_rows == x.size(0), "light_propagate_csr: the adjacency "
              "must be square with one row per input row");
  const int64_t layers = static_cast<int64_t>(alpha.size()) - 1;
  auto out = x.mul(alpha[0]);
  if (layers == 0 || num_rows == 0 || F == 0) return out;
  at::Tensor bufs[2] = {at::empty_like(x),
                        layers > 1 ? at::empty_like(x) : at::Tensor()};
  auto stream = c10::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "light_propagate_cuda", [&] {
    AT_DISPATCH_INDEX_TYPES(col.scalar_type(), "light_propagate_idx", [&] {
      const scalar_t* cur = x.data_ptr<scalar_t>();
      for (int64_t k = 1; k <= layers; ++k) {
        scalar_t* nxt = k < layers ? bufs[k % 2].data_ptr<scalar_t>() : nullptr;
        spmm_launch<scalar_t, index_t>(
            rowptr.data_ptr<int64_t>(), col.data_ptr<index_t>(),
            value ? value->data_ptr<scalar_t>() : nullptr, cur, num_rows, F,
            nxt, out.data_ptr<scalar_t>(), static_cast<scalar_t>(alpha[k]),
            stream);
        cur = nxt;
      }
    });
  });
  return out;
}

at::Tensor sddmm_csr_cuda(const at::Tensor& rowptr_, const at::Tensor& col_,
                          const at::Tensor& a_, const at::Tensor& b_) {
  check_cuda(rowptr_, col_, c10::nullopt, b_, "sddmm_csr");
  TORCH_CHECK(a_.is_cuda() && a_.dim() == 2 && a_.size(1) == b_.size(1) &&
                  a_.scalar_type() == b_.scalar_type(),
              "sddmm_csr: a and b must be 2-D CUDA tensors with equal widths "
              "and dtypes");
  c10::cuda::OptionalCUDAGuard guard(a_.device());
  auto rowptr = rowptr_.contiguous();
  auto col = col_.contiguous();
  auto a = a_.contiguous();
  auto b = b_.contiguous();
  const int64_t num_rows = rowptr.numel() - 1, F = a.size(1);
  TORCH_CHECK(a.size(0) == num_rows, "sddmm_csr: a needs one row per CSR row");
  auto out = at::empty({col.numel()}, a.options());
  if (num_rows == 0 || col.numel() == 0) return out.zero_();
  auto stream = c10::cuda::getCurrentCUDAStream();
  const int64_t blocks = (num_rows + kWarpsPerBlock - 1) / kWarpsPerBlock;
  AT_DISPATCH_FLOATING_TYPES(a.scalar_type(), "sddmm_csr_cuda", [&] {
    AT_DISPATCH_INDEX_TYPES(col.scalar_type(), "sddmm_csr_cuda_idx", [&] {
      sddmm_warp_kernel<scalar_t, index_t>
          <<<blocks, kWarpsPerBlock * kWarp, 0, stream>>>(
              rowptr.data_ptr<int64_t>(), col.data_ptr<index_t>(),
              a.data_ptr<scalar_t>(), b.data_ptr<scalar_t>(), num_rows, F,
              out.data_ptr<scalar_t>());
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    });
  });
  return out;
}

}  // namespace

TORCH_LIBRARY_IMPL(pyg_recsys, CUDA, m) {
  m.impl("spmm_csr", &spmm_csr_cuda);
  m.impl("sddmm_csr", &sddmm_csr_cuda);
  m.impl("light_propagate_csr", &light_propagate_csr_cuda);
}

}  // namespace pyg_recsys
