// CUDA kernels of the CSR products (the same ops as ops/cpu/spmm_kernel.cpp).
//
// spmm / light propagation: one warp per row. The warp reads 32 stored
// entries (column and value) at a time, coalesced, and broadcasts each with
// a shuffle; lane l accumulates features l, l + 32, ... of the row. The light
// propagation runs Horner's rule like the CPU kernel, with float32 or
// bfloat16 storage of the gathered rows.
// sddmm: one warp per row; each entry's dot product is reduced across lanes.
// Offsets are 64-bit throughout.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include <algorithm>
#include <cstdint>
#include <type_traits>

namespace pyg_recsys {
namespace {

constexpr int kWarp = 32;
constexpr int kWarpsPerBlock = 8;
constexpr int kMaxChunks = 4;  // features per lane held in registers: 4 * 32

// dst = scale * (A @ x) + beta * base (the base term when base != null) for
// the features [f_begin, f_begin + CHUNKS * 32) of every row. The rows of x
// are gathered in the storage type st_t (acc_t itself, or bfloat16 to halve
// the bytes read), sums are accumulated in acc_t, and each destination row is
// written once, as dst_t (st_t or acc_t), like the CPU kernels.
template <typename acc_t, typename st_t, typename dst_t, typename index_t,
          int CHUNKS>
__global__ void spmm_warp_kernel(const int64_t* __restrict__ rowptr,
                                 const index_t* __restrict__ col,
                                 const acc_t* __restrict__ value,
                                 const st_t* __restrict__ x,
                                 int64_t num_rows, int64_t F, int64_t f_begin,
                                 dst_t* __restrict__ dst, acc_t scale,
                                 const acc_t* __restrict__ base, acc_t beta) {
  const int lane = threadIdx.x % kWarp;
  const int64_t row =
      static_cast<int64_t>(blockIdx.x) * kWarpsPerBlock + threadIdx.x / kWarp;
  if (row >= num_rows) return;
  const int64_t e0 = rowptr[row], e1 = rowptr[row + 1];
  acc_t acc[CHUNKS];
#pragma unroll
  for (int c = 0; c < CHUNKS; ++c) acc[c] = acc_t(0);
  for (int64_t first = e0; first < e1; first += kWarp) {
    const int64_t e = first + lane;
    int64_t my_col = 0;
    acc_t my_val = acc_t(0);
    if (e < e1) {
      my_col = static_cast<int64_t>(col[e]);
      my_val = value ? value[e] : acc_t(1);
    }
    const int64_t left = e1 - first;
    const int n = left < kWarp ? static_cast<int>(left) : kWarp;
    for (int j = 0; j < n; ++j) {
      const int64_t c = __shfl_sync(0xffffffff, my_col, j);
      const acc_t v = __shfl_sync(0xffffffff, my_val, j);
      const st_t* xr = x + c * F;
#pragma unroll
      for (int k = 0; k < CHUNKS; ++k) {
        const int64_t f = f_begin + k * kWarp + lane;
        if (f < F) acc[k] += v * static_cast<acc_t>(xr[f]);
      }
    }
  }
#pragma unroll
  for (int k = 0; k < CHUNKS; ++k) {
    const int64_t f = f_begin + k * kWarp + lane;
    if (f < F) {
      acc_t y = scale * acc[k];
      if (base != nullptr) y += beta * base[row * F + f];
      dst[row * F + f] = static_cast<dst_t>(y);
    }
  }
}

template <typename acc_t, typename st_t, typename dst_t, typename index_t>
void spmm_launch(const int64_t* rowptr, const index_t* col,
                 const acc_t* value, const st_t* x, int64_t num_rows,
                 int64_t F, dst_t* dst, acc_t scale, const acc_t* base,
                 acc_t beta, cudaStream_t stream) {
  if (num_rows == 0 || F == 0) return;
  const int64_t blocks = (num_rows + kWarpsPerBlock - 1) / kWarpsPerBlock;
  const int threads = kWarpsPerBlock * kWarp;
  constexpr int64_t span = kMaxChunks * kWarp;
  for (int64_t f0 = 0; f0 < F; f0 += span) {
    const int64_t width = F - f0 < span ? F - f0 : span;
    if (width <= kWarp) {
      spmm_warp_kernel<acc_t, st_t, dst_t, index_t, 1>
          <<<blocks, threads, 0, stream>>>(rowptr, col, value, x, num_rows, F,
                                           f0, dst, scale, base, beta);
    } else if (width <= 2 * kWarp) {
      spmm_warp_kernel<acc_t, st_t, dst_t, index_t, 2>
          <<<blocks, threads, 0, stream>>>(rowptr, col, value, x, num_rows, F,
                                           f0, dst, scale, base, beta);
    } else {
      spmm_warp_kernel<acc_t, st_t, dst_t, index_t, kMaxChunks>
          <<<blocks, threads, 0, stream>>>(rowptr, col, value, x, num_rows, F,
                                           f0, dst, scale, base, beta);
    }
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  }
}

// y[i] = bfloat16(x[i]) (round to nearest even, NaN kept NaN).
__global__ void round_bf16_kernel(const float* __restrict__ x,
                                  c10::BFloat16* __restrict__ y, int64_t n) {
  const int64_t stride = static_cast<int64_t>(blockDim.x) * gridDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
       i < n; i += stride)
    y[i] = c10::BFloat16(x[i]);
}

// sum_k alpha_k A^k x, k = 0..K, by Horner's rule, as the CPU kernel
// (ops/cpu/spmm_kernel.cpp, light_layers):
//   y_0 = x,  y_1 = alpha_K A y_0 + alpha_{K-1} x,
//   y_k = A y_{k-1} + alpha_{K-k} x,  out = y_K.
// Every y_k with k < K is stored as st_t (bfloat16 storage: y_0 is x rounded
// into its slot), sums are in acc_t. The inner terms alternate between one
// scratch table and out itself so that y_{K-1} lands in scratch: one [N, F]
// temporary of st_t for any K.
template <typename acc_t, typename st_t, typename index_t>
void light_layers(const int64_t* rowptr, const index_t* col,
                  const acc_t* value, const at::Tensor& x,
                  at::ArrayRef<double> alpha, st_t* scratch, at::Tensor& out,
                  cudaStream_t stream) {
  const int64_t K = static_cast<int64_t>(alpha.size()) - 1;
  const int64_t N = x.size(0), F = x.size(1);
  const acc_t* px = x.data_ptr<acc_t>();
  acc_t* po = out.data_ptr<acc_t>();
  const auto slot = [&](int64_t j) {
    return (K - 1 - j) % 2 == 0 ? scratch : reinterpret_cast<st_t*>(po);
  };
  const st_t* cur;
  if constexpr (std::is_same_v<st_t, acc_t>) {
    cur = px;
  } else {
    st_t* x0 = slot(0);
    const int64_t n = N * F;
    const int64_t blocks = std::min<int64_t>((n + 255) / 256, 65536);
    round_bf16_kernel<<<blocks, 256, 0, stream>>>(px, x0, n);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
    cur = x0;
  }
  for (int64_t k = 1; k <= K; ++k) {
    const acc_t scale = k == 1 ? static_cast<acc_t>(alpha[K]) : acc_t(1);
    const acc_t beta = static_cast<acc_t>(alpha[K - k]);
    if (k < K) {
      st_t* dst = slot(k);
      spmm_launch<acc_t, st_t, st_t, index_t>(rowptr, col, value, cur, N, F,
                                              dst, scale, px, beta, stream);
      cur = dst;
    } else {
      spmm_launch<acc_t, st_t, acc_t, index_t>(rowptr, col, value, cur, N, F,
                                               po, scale, px, beta, stream);
    }
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
      spmm_launch<scalar_t, scalar_t, scalar_t, index_t>(
          rowptr.data_ptr<int64_t>(), col.data_ptr<index_t>(),
          value ? value->data_ptr<scalar_t>() : nullptr,
          x.data_ptr<scalar_t>(), num_rows, F, out.data_ptr<scalar_t>(),
          scalar_t(1), nullptr, scalar_t(0), stream);
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
  TORCH_CHECK(!alpha.empty(), "light_propagate_csr: alpha must hold at least "
              "one weight");
  TORCH_CHECK(!bf16_storage || x_.scalar_type() == at::kFloat,
              "light_propagate_csr: bfloat16 storage needs float32 x, got ",
              x_.scalar_type());
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
  if (layers == 0 || num_rows == 0 || F == 0) return x.mul(alpha[0]);
  auto out = at::empty_like(x);
  auto stream = c10::cuda::getCurrentCUDAStream();
  AT_DISPATCH_INDEX_TYPES(col.scalar_type(), "light_propagate_idx", [&] {
    const int64_t* rp = rowptr.data_ptr<int64_t>();
    const index_t* c = col.data_ptr<index_t>();
    if (bf16_storage) {
      auto scratch = at::empty_like(x, x.options().dtype(at::kBFloat16));
      using bf16 = c10::BFloat16;
      light_layers<float, bf16, index_t>(
          rp, c, value ? value->data_ptr<float>() : nullptr, x, alpha,
          scratch.data_ptr<bf16>(), out, stream);
      return;
    }
    AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "light_propagate_cuda", [&] {
      // float storage gathers y_0 = x in place: scratch from K = 2 on.
      auto scratch = layers > 1 ? at::empty_like(x) : at::Tensor();
      light_layers<scalar_t, scalar_t, index_t>(
          rp, c, value ? value->data_ptr<scalar_t>() : nullptr, x, alpha,
          layers > 1 ? scratch.data_ptr<scalar_t>() : nullptr, out, stream);
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
