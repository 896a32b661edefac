// CPU kernels of the CSR products: spmm (A @ X), sddmm (<A_row, B_col> per
// stored entry) and the fused light propagation sum_k alpha_k A^k X.
//
// Rows are split into contiguous ranges of about equal nnz, one per task of
// at::parallel_for. Within a row, features are processed in blocks of
// kBlock accumulators that the compiler keeps in vector registers (the inner
// loops are plain counted loops that -O3 vectorises), and the feature rows
// that the next entries will gather are prefetched.
//
// Vector ISA: the file is compiled for the portable baseline (no -m flags),
// and every hot loop exists twice, chosen per call from cpu::active_isa()
// (ops/cpu/isa.h): the generic loops are always_inline templates, inlined
// both into baseline callers and into thin wrappers compiled for AVX2 + FMA
// by PYG_RECSYS_TARGET_AVX2 (which the compiler then vectorises for AVX2),
// and the explicit AVX2 kernels carry that attribute themselves. None of the
// AVX2 functions calls into ATen: they are loops on raw pointers.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <ATen/Dispatch.h>
#include <torch/library.h>

#include <algorithm>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "ops/cpu/isa.h"

#ifdef PYG_RECSYS_X86_DISPATCH
#include <immintrin.h>  // declares the AVX2 intrinsics for target functions
#endif

#if defined(__GNUC__) || defined(__clang__)
#define PYG_RECSYS_ALWAYS_INLINE inline __attribute__((always_inline))
#else
#define PYG_RECSYS_ALWAYS_INLINE inline
#endif

namespace pyg_recsys {
namespace {

// How far ahead the gathered feature rows are prefetched, in entries: about
// kPrefetchBytes of rows in flight, at least 16 and at most 128 entries.
// Measured on Gowalla (fused 3-layer forward, 2 threads, in one process):
// 8 entries ahead (the earlier constant) left the loop waiting on memory;
// 32-128 entries were 15-30% faster, best near 12-16 KB ahead whatever the
// row width (d = 32 and 64, float32 and bfloat16 rows; see the commit).
constexpr int64_t kPrefetchBytes = 12288;
constexpr int64_t prefetch_distance(int64_t row_bytes) {
  return row_bytes <= 0 ? 16
                        : std::clamp<int64_t>(kPrefetchBytes / row_bytes, 16,
                                              128);
}

// Row boundaries splitting [0, num_rows) into `parts` ranges of about equal
// nnz (plus one unit per row, so that long runs of empty rows also split).
std::vector<int64_t> balanced_rows(const int64_t* rowptr, int64_t num_rows,
                                   int64_t parts) {
  std::vector<int64_t> bounds(parts + 1, num_rows);
  bounds[0] = 0;
  const int64_t total = rowptr[num_rows] + num_rows;
  for (int64_t p = 1; p < parts; ++p) {
    const int64_t target = total * p / parts;
    // first row r with rowptr[r] + r >= target
    int64_t lo = bounds[p - 1], hi = num_rows;
    while (lo < hi) {
      const int64_t mid = lo + (hi - lo) / 2;
      if (rowptr[mid] + mid < target) lo = mid + 1; else hi = mid;
    }
    bounds[p] = lo;
  }
  return bounds;
}

template <typename F>
void parallel_rows(const int64_t* rowptr, int64_t num_rows, const F& fn) {
  if (num_rows == 0) return;
  const int64_t threads = at::get_num_threads();
  // A few ranges per thread smooth out uneven rows.
  const int64_t parts = std::max<int64_t>(
      1, std::min<int64_t>(num_rows, threads > 1 ? threads * 4 : 1));
  const auto bounds = balanced_rows(rowptr, num_rows, parts);
  at::parallel_for(0, parts, 1, [&](int64_t begin, int64_t end) {
    for (int64_t p = begin; p < end; ++p) fn(bounds[p], bounds[p + 1]);
  });
}

// One sparse product over the rows [r0, r1):
//   dst = scale * (A @ cur) + beta * base     (the base term when base != null)
// Entries are walked as one stream per row range so that the feature rows
// gathered prefetch_distance() entries later (often in a later row) are
// prefetched; the feature dimension is processed in blocks of B accumulators
// held in vector registers. `cur` is in the storage type st_t (acc_t itself, or
// bfloat16 to halve the bytes gathered), `dst` in st_t or acc_t; sums are
// always accumulated in acc_t, and each destination row is written once.
template <typename acc_t, typename st_t, typename dst_t, typename index_t,
          int B>
PYG_RECSYS_ALWAYS_INLINE void spmm_range(const int64_t* __restrict__ rowptr,
                const index_t* __restrict__ col,
                const acc_t* __restrict__ value,
                const st_t* __restrict__ cur, int64_t r0, int64_t r1,
                int64_t F, dst_t* __restrict__ dst, acc_t scale,
                const acc_t* __restrict__ base, acc_t beta) {
  const int64_t end = rowptr[r1];
  for (int64_t f0 = 0; f0 < F; f0 += B) {
    const int width = static_cast<int>(std::min<int64_t>(B, F - f0));
    const int lines = std::max(1, width * static_cast<int>(sizeof(st_t)) / 64);
    const int64_t ahead_n = prefetch_distance(width * sizeof(st_t));
    for (int64_t r = r0; r < r1; ++r) {
      acc_t acc[B];
      for (int f = 0; f < B; ++f) acc[f] = acc_t(0);
      const int64_t e1 = rowptr[r + 1];
      for (int64_t e = rowptr[r]; e < e1; ++e) {
        if (e + ahead_n < end) {
          const char* ahead = reinterpret_cast<const char*>(
              cur + static_cast<int64_t>(col[e + ahead_n]) * F + f0);
          for (int c = 0; c < lines; ++c) __builtin_prefetch(ahead + 64 * c);
        }
        const acc_t v = value ? value[e] : acc_t(1);
        const st_t* __restrict__ xr =
            cur + static_cast<int64_t>(col[e]) * F + f0;
        if (width == B) {
#pragma GCC unroll 16
          for (int f = 0; f < B; ++f) acc[f] += v * static_cast<acc_t>(xr[f]);
        } else {
          for (int f = 0; f < width; ++f)
            acc[f] += v * static_cast<acc_t>(xr[f]);
        }
      }
      dst_t* o = dst + r * F + f0;
      if (base != nullptr) {
        const acc_t* b = base + r * F + f0;
        for (int f = 0; f < width; ++f)
          o[f] = static_cast<dst_t>(scale * acc[f] + beta * b[f]);
      } else {
        for (int f = 0; f < width; ++f)
          o[f] = static_cast<dst_t>(scale * acc[f]);
      }
    }
  }
}

#ifdef PYG_RECSYS_X86_DISPATCH
// 8 lanes of storage -> 8 floats, and back (bfloat16: round to nearest even,
// NaN kept NaN, as c10::BFloat16 does). c10::BFloat16 is only a pointer type
// here: its 16 bits are moved by intrinsics, no c10 function is called.
PYG_RECSYS_TARGET_AVX2 inline __m256 load8(const float* p) {
  return _mm256_loadu_ps(p);
}
PYG_RECSYS_TARGET_AVX2 inline __m256 load8(const c10::BFloat16* p) {
  const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}
PYG_RECSYS_TARGET_AVX2 inline void store8(float* p, __m256 a) {
  _mm256_storeu_ps(p, a);
}
PYG_RECSYS_TARGET_AVX2 inline void store8(c10::BFloat16* p, __m256 a) {
  __m256i u = _mm256_castps_si256(a);
  const __m256i lsb =
      _mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(1));
  u = _mm256_add_epi32(u, _mm256_add_epi32(lsb, _mm256_set1_epi32(0x7FFF)));
  u = _mm256_srli_epi32(u, 16);
  const __m256i nan = _mm256_castps_si256(_mm256_cmp_ps(a, a, _CMP_UNORD_Q));
  u = _mm256_blendv_epi8(u, _mm256_set1_epi32(0x7FC0), nan);
  // 32-bit lanes -> 16-bit: packus works per 128-bit half, permute joins.
  const __m256i packed = _mm256_permute4x64_epi64(_mm256_packus_epi32(u, u),
                                                  0x08);
  _mm_storeu_si128(reinterpret_cast<__m128i*>(p),
                   _mm256_castsi256_si128(packed));
}

// float accumulation, NV vectors of 8 lanes (NV * 8 features) per pass,
// explicit AVX2 accumulators; rows gathered from float or bfloat16, written
// to float or bfloat16 (dst = scale * (A @ cur) + beta * base, as above).
// Kept out of line: one function per NV, so that the loop's registers are
// allocated for it alone (inlined into the dispatcher, the row end and the
// constant 1 were spilled to the stack).
template <typename st_t, typename dst_t, typename index_t, int NV>
PYG_RECSYS_TARGET_AVX2 __attribute__((noinline)) void spmm_range_avx2(const int64_t* __restrict__ rowptr,
                     const index_t* __restrict__ col,
                     const float* __restrict__ value,
                     const st_t* __restrict__ cur, int64_t r0, int64_t r1,
                     int64_t F, int64_t f0, dst_t* __restrict__ dst,
                     float scale, const float* __restrict__ base,
                     float beta) {
  const int64_t end = rowptr[r1];
  constexpr int bytes = NV * 8 * static_cast<int>(sizeof(st_t));
  constexpr int lines = bytes / 64 > 0 ? bytes / 64 : 1;
  constexpr int64_t ahead_n = prefetch_distance(bytes);
  const __m256 vs = _mm256_set1_ps(scale), vb = _mm256_set1_ps(beta);
  for (int64_t r = r0; r < r1; ++r) {
    __m256 acc[NV];
#pragma GCC unroll 8
    for (int k = 0; k < NV; ++k) acc[k] = _mm256_setzero_ps();
    const int64_t e1 = rowptr[r + 1];
    for (int64_t e = rowptr[r]; e < e1; ++e) {
      if (e + ahead_n < end) {
        const char* ahead = reinterpret_cast<const char*>(
            cur + static_cast<int64_t>(col[e + ahead_n]) * F + f0);
#pragma GCC unroll 4
        for (int c = 0; c < lines; ++c) _mm_prefetch(ahead + 64 * c, _MM_HINT_T0);
      }
      const __m256 v = _mm256_set1_ps(value ? value[e] : 1.0f);
      const st_t* xr = cur + static_cast<int64_t>(col[e]) * F + f0;
#pragma GCC unroll 8
      for (int k = 0; k < NV; ++k)
        acc[k] = _mm256_fmadd_ps(v, load8(xr + 8 * k), acc[k]);
    }
    dst_t* o = dst + r * F + f0;
    if (base != nullptr) {
      const float* b = base + r * F + f0;
#pragma GCC unroll 8
      for (int k = 0; k < NV; ++k)
        store8(o + 8 * k, _mm256_fmadd_ps(vb, _mm256_loadu_ps(b + 8 * k),
                                          _mm256_mul_ps(vs, acc[k])));
    } else {
#pragma GCC unroll 8
      for (int k = 0; k < NV; ++k)
        store8(o + 8 * k, _mm256_mul_ps(vs, acc[k]));
    }
  }
}

template <typename st_t, typename dst_t, typename index_t>
PYG_RECSYS_TARGET_AVX2 bool spmm_float_avx2(const int64_t* rowptr, const index_t* col,
                     const float* value, const st_t* cur, int64_t r0,
                     int64_t r1, int64_t F, dst_t* dst, float scale,
                     const float* base, float beta) {
  if (F % 8 != 0) return false;
  for (int64_t f0 = 0; f0 < F; f0 += 64) {
    const int nv = static_cast<int>(std::min<int64_t>(64, F - f0) / 8);
    switch (nv) {
#define PYG_RECSYS_CASE(N)                                                   \
  case N:                                                                    \
    spmm_range_avx2<st_t, dst_t, index_t, N>(rowptr, col, value, cur, r0,    \
                                             r1, F, f0, dst, scale, base,    \
                                             beta);                          \
    break;
      PYG_RECSYS_CASE(1) PYG_RECSYS_CASE(2) PYG_RECSYS_CASE(3)
      PYG_RECSYS_CASE(4) PYG_RECSYS_CASE(5) PYG_RECSYS_CASE(6)
      PYG_RECSYS_CASE(7) PYG_RECSYS_CASE(8)
#undef PYG_RECSYS_CASE
    }
  }
  return true;
}

// One row range on the AVX2 path: the explicit kernels for float
// accumulation and widths in multiples of 8, else the generic loops compiled
// for AVX2 + FMA (inlined here).
template <typename acc_t, typename st_t, typename dst_t, typename index_t,
          int B>
PYG_RECSYS_TARGET_AVX2 void spmm_range_any_avx2(
    const int64_t* rowptr, const index_t* col, const acc_t* value,
    const st_t* cur, int64_t r0, int64_t r1, int64_t F, dst_t* dst,
    acc_t scale, const acc_t* base, acc_t beta) {
  if constexpr (std::is_same_v<acc_t, float>) {
    if (spmm_float_avx2<st_t, dst_t, index_t>(rowptr, col, value, cur, r0, r1,
                                              F, dst, scale, base, beta))
      return;
  }
  spmm_range<acc_t, st_t, dst_t, index_t, B>(rowptr, col, value, cur, r0, r1,
                                             F, dst, scale, base, beta);
}
#endif

template <typename acc_t, typename st_t, typename dst_t, typename index_t>
void spmm_rows(const int64_t* rowptr, const index_t* col,
               const acc_t* value, const st_t* cur, int64_t num_rows,
               int64_t F, dst_t* dst, acc_t scale = acc_t(1),
               const acc_t* base = nullptr, acc_t beta = acc_t(0)) {
  constexpr int B = 256 / sizeof(acc_t);  // 64 floats / 32 doubles
#ifdef PYG_RECSYS_X86_DISPATCH
  if (cpu::active_isa() == cpu::Isa::kAvx2) {
    parallel_rows(rowptr, num_rows, [&](int64_t r0, int64_t r1) {
      spmm_range_any_avx2<acc_t, st_t, dst_t, index_t, B>(
          rowptr, col, value, cur, r0, r1, F, dst, scale, base, beta);
    });
    return;
  }
#endif
  parallel_rows(rowptr, num_rows, [&](int64_t r0, int64_t r1) {
    spmm_range<acc_t, st_t, dst_t, index_t, B>(rowptr, col, value, cur, r0,
                                               r1, F, dst, scale, base, beta);
  });
}

void check_csr(const at::Tensor& rowptr, const at::Tensor& col,
               const c10::optional<at::Tensor>& value, const at::Tensor& x,
               const char* op) {
  TORCH_CHECK(rowptr.device().is_cpu() && col.device().is_cpu() &&
                  x.device().is_cpu(),
              op, ": expected CPU tensors");
  TORCH_CHECK(rowptr.dim() == 1 && rowptr.scalar_type() == at::kLong &&
                  rowptr.numel() >= 1,
              op, ": rowptr must be a non-empty 1-D int64 tensor");
  TORCH_CHECK(col.dim() == 1 && (col.scalar_type() == at::kLong ||
                                 col.scalar_type() == at::kInt),
              op, ": col must be a 1-D int32 or int64 tensor");
  TORCH_CHECK(x.dim() == 2, op, ": x must be 2-D, got ", x.dim(), " dims");
  if (value.has_value()) {
    TORCH_CHECK(value->dim() == 1 && value->numel() == col.numel(), op,
                ": value must have one entry per column index");
    TORCH_CHECK(value->scalar_type() == x.scalar_type(), op,
                ": value and x must have the same dtype");
  }
}

at::Tensor spmm_csr_cpu(const at::Tensor& rowptr_, const at::Tensor& col_,
                        const c10::optional<at::Tensor>& value_,
                        const at::Tensor& x_) {
  check_csr(rowptr_, col_, value_, x_, "spmm_csr");
  auto rowptr = rowptr_.contiguous();
  auto col = col_.contiguous();
  auto x = x_.contiguous();
  const int64_t num_rows = rowptr.numel() - 1;
  const int64_t F = x.size(1);
  auto out = at::empty({num_rows, F}, x.options());
  if (num_rows == 0 || F == 0) return out;
  c10::optional<at::Tensor> value;
  if (value_.has_value()) value = value_->contiguous();
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "spmm_csr_cpu", [&] {
    AT_DISPATCH_INDEX_TYPES(col.scalar_type(), "spmm_csr_cpu_index", [&] {
      spmm_rows<scalar_t, scalar_t, scalar_t, index_t>(
          rowptr.data_ptr<int64_t>(), col.data_ptr<index_t>(),
          value ? value->data_ptr<scalar_t>() : nullptr,
          x.data_ptr<scalar_t>(), num_rows, F, out.data_ptr<scalar_t>());
    });
  });
  return out;
}

// sum_k alpha_k A^k x, k = 0..K, by Horner's rule:
//   y_0 = x,  y_1 = alpha_K A y_0 + alpha_{K-1} x,
//   y_k = A y_{k-1} + alpha_{K-k} x,  out = y_K.
// Each step gathers y_{k-1} (stored as st_t), reads x once in order and
// writes each row of y_k once: two sequential streams a layer, where adding
// alpha_k A^k x into out needs three (write A^k x, read and write out).
// The inner terms live in one scratch table and in out itself (an st_t is
// never wider than acc_t), alternating so that y_{K-1} is in scratch: the
// only temporary is one [N, F] table of st_t, for any K. In float storage
// y_0 is x itself; in bfloat16 storage it is x rounded into its slot.
template <typename acc_t, typename st_t, typename index_t>
void light_layers(const int64_t* rowptr, const index_t* col,
                  const acc_t* value, const at::Tensor& x,
                  at::ArrayRef<double> alpha, st_t* scratch, at::Tensor& out) {
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
    at::from_blob(x0, {N, F}, x.options().dtype(c10::CppTypeToScalarType<
                                  st_t>::value)).copy_(x);  // rounds once
    cur = x0;
  }
  for (int64_t k = 1; k <= K; ++k) {
    const acc_t scale = k == 1 ? static_cast<acc_t>(alpha[K]) : acc_t(1);
    const acc_t beta = static_cast<acc_t>(alpha[K - k]);
    if (k < K) {
      st_t* dst = slot(k);
      spmm_rows<acc_t, st_t, st_t, index_t>(rowptr, col, value, cur, N, F,
                                            dst, scale, px, beta);
      cur = dst;
    } else {
      spmm_rows<acc_t, st_t, acc_t, index_t>(rowptr, col, value, cur, N, F,
                                             po, scale, px, beta);
    }
  }
}

at::Tensor light_propagate_csr_cpu(const at::Tensor& rowptr_,
                                   const at::Tensor& col_,
                                   const c10::optional<at::Tensor>& value_,
                                   const at::Tensor& x_,
                                   at::ArrayRef<double> alpha,
                                   bool bf16_storage) {
  check_csr(rowptr_, col_, value_, x_, "light_propagate_csr");
  TORCH_CHECK(!alpha.empty(), "light_propagate_csr: alpha must hold at least "
              "one weight");
  TORCH_CHECK(!bf16_storage || x_.scalar_type() == at::kFloat,
              "light_propagate_csr: bfloat16 storage needs float32 x, got ",
              x_.scalar_type());
  auto rowptr = rowptr_.contiguous();
  auto col = col_.contiguous();
  auto x = x_.contiguous();
  const int64_t num_rows = rowptr.numel() - 1;
  TORCH_CHECK(num_rows == x.size(0), "light_propagate_csr: the adjacency "
              "must be square with one row per input row");
  const int64_t F = x.size(1);
  const int64_t layers = static_cast<int64_t>(alpha.size()) - 1;
  if (layers == 0 || num_rows == 0 || F == 0) return x.mul(alpha[0]);
  c10::optional<at::Tensor> value;
  if (value_.has_value()) value = value_->contiguous();
  auto out = at::empty_like(x);
  AT_DISPATCH_INDEX_TYPES(col.scalar_type(), "light_propagate_idx", [&] {
    const int64_t* rp = rowptr.data_ptr<int64_t>();
    const index_t* c = col.data_ptr<index_t>();
    if (bf16_storage) {
      auto scratch = at::empty_like(x, x.options().dtype(at::kBFloat16));
      using bf16 = c10::BFloat16;
      light_layers<float, bf16, index_t>(
          rp, c, value ? value->data_ptr<float>() : nullptr, x, alpha,
          scratch.data_ptr<bf16>(), out);
      return;
    }
    AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "light_propagate_csr_cpu", [&] {
      // float storage gathers y_0 = x in place: scratch from K = 2 on.
      auto scratch = layers > 1 ? at::empty_like(x) : at::Tensor();
      light_layers<scalar_t, scalar_t, index_t>(
          rp, c, value ? value->data_ptr<scalar_t>() : nullptr, x, alpha,
          layers > 1 ? scratch.data_ptr<scalar_t>() : nullptr, out);
    });
  });
  return out;
}

// <a, b> over n entries. A single running sum is a chain of dependent adds
// that the compiler may not reorder (no -ffast-math), so it runs at one add
// per FMA latency; kLanes independent partial sums vectorise and pipeline
// (sddmm on ML-100K's 163k entries, d = 64: 9.6 ms before, see the commit).
template <typename scalar_t>
PYG_RECSYS_ALWAYS_INLINE scalar_t dot(const scalar_t* a, const scalar_t* b,
                                      int64_t n) {
  constexpr int64_t kLanes = 16;
  scalar_t acc[kLanes] = {};
  int64_t f = 0;
  for (; f + kLanes <= n; f += kLanes)
    for (int64_t l = 0; l < kLanes; ++l) acc[l] += a[f + l] * b[f + l];
  scalar_t s = 0;
  for (; f < n; ++f) s += a[f] * b[f];
  for (int64_t l = 0; l < kLanes; ++l) s += acc[l];
  return s;
}

// sddmm over the rows [r0, r1): out[e] = <a[r], b[col[e]]>, prefetching the
// rows of b that later entries read.
template <typename scalar_t, typename index_t>
PYG_RECSYS_ALWAYS_INLINE void sddmm_range(const int64_t* __restrict__ rp,
                                          const index_t* __restrict__ c,
                                          const scalar_t* __restrict__ pa,
                                          const scalar_t* __restrict__ pb,
                                          int64_t F, int64_t r0, int64_t r1,
                                          scalar_t* __restrict__ po) {
  const int64_t row_bytes = F * static_cast<int64_t>(sizeof(scalar_t));
  const int64_t ahead_n = prefetch_distance(row_bytes);
  const int64_t lines = std::clamp<int64_t>(row_bytes / 64, 1, 8);
  const int64_t end = rp[r1];
  for (int64_t r = r0; r < r1; ++r) {
    const scalar_t* ar = pa + r * F;
    for (int64_t e = rp[r]; e < rp[r + 1]; ++e) {
      if (e + ahead_n < end) {
        const char* ahead = reinterpret_cast<const char*>(
            pb + static_cast<int64_t>(c[e + ahead_n]) * F);
        for (int64_t l = 0; l < lines; ++l) __builtin_prefetch(ahead + 64 * l);
      }
      po[e] = dot(ar, pb + static_cast<int64_t>(c[e]) * F, F);
    }
  }
}

#ifdef PYG_RECSYS_X86_DISPATCH
template <typename scalar_t, typename index_t>
PYG_RECSYS_TARGET_AVX2 void sddmm_range_avx2(const int64_t* rp,
                                             const index_t* c,
                                             const scalar_t* pa,
                                             const scalar_t* pb, int64_t F,
                                             int64_t r0, int64_t r1,
                                             scalar_t* po) {
  sddmm_range<scalar_t, index_t>(rp, c, pa, pb, F, r0, r1, po);
}
#endif

at::Tensor sddmm_csr_cpu(const at::Tensor& rowptr_, const at::Tensor& col_,
                         const at::Tensor& a_, const at::Tensor& b_) {
  check_csr(rowptr_, col_, c10::nullopt, b_, "sddmm_csr");
  TORCH_CHECK(a_.dim() == 2 && a_.size(1) == b_.size(1) &&
                  a_.scalar_type() == b_.scalar_type(),
              "sddmm_csr: a and b must be 2-D with equal widths and dtypes");
  auto rowptr = rowptr_.contiguous();
  auto col = col_.contiguous();
  auto a = a_.contiguous();
  auto b = b_.contiguous();
  const int64_t num_rows = rowptr.numel() - 1;
  TORCH_CHECK(a.size(0) == num_rows, "sddmm_csr: a needs one row per CSR row");
  const int64_t F = a.size(1);
  auto out = at::empty({col.numel()}, a.options());
  AT_DISPATCH_FLOATING_TYPES(a.scalar_type(), "sddmm_csr_cpu", [&] {
    AT_DISPATCH_INDEX_TYPES(col.scalar_type(), "sddmm_csr_idx", [&] {
      const int64_t* rp = rowptr.data_ptr<int64_t>();
      const index_t* c = col.data_ptr<index_t>();
      const scalar_t* pa = a.data_ptr<scalar_t>();
      const scalar_t* pb = b.data_ptr<scalar_t>();
      scalar_t* po = out.data_ptr<scalar_t>();
#ifdef PYG_RECSYS_X86_DISPATCH
      if (cpu::active_isa() == cpu::Isa::kAvx2) {
        parallel_rows(rp, num_rows, [&](int64_t r0, int64_t r1) {
          sddmm_range_avx2<scalar_t, index_t>(rp, c, pa, pb, F, r0, r1, po);
        });
        return;
      }
#endif
      parallel_rows(rp, num_rows, [&](int64_t r0, int64_t r1) {
        sddmm_range<scalar_t, index_t>(rp, c, pa, pb, F, r0, r1, po);
      });
    });
  });
  return out;
}

}  // namespace

TORCH_LIBRARY_IMPL(pyg_recsys, CPU, m) {
  m.impl("spmm_csr", &spmm_csr_cpu);
  m.impl("sddmm_csr", &sddmm_csr_cpu);
  m.impl("light_propagate_csr", &light_propagate_csr_cpu);
}

}  // namespace pyg_recsys
