// CPU kernel of softmax_ce_rows_: one block of logits [R, G * I] becomes,
// in place, the gradient of the softmax cross-entropy with respect to the
// logits (softmax within each of the G groups of I columns, minus one at
// each group's target column), and the op returns the per-row loss
// sum_g (logsumexp_g - logit at the target of g).
//
// Three passes over each group's segment of a row, which stays in cache
// between them: the maximum (and a NaN flag), exp(x - max) stored in place
// with its running sum, and the scaling by 1 / sum. Rows are split over
// at::parallel_for. The AVX2 + FMA version computes exp with its own
// polynomial (Cephes' single-precision coefficients on the reduced range,
// about 1 ulp; torch.exp reaches about 1 G/s per core on the test machine,
// this about 4x that), on raw pointers only, like the other AVX2 kernels
// (see ops/cpu/isa.h); the baseline loop uses std::exp.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <cmath>
#include <cstdint>
#include <limits>

#include "ops/cpu/isa.h"

#ifdef PYG_RECSYS_X86_DISPATCH
#include <immintrin.h>
#endif

namespace pyg_recsys {
namespace {

// One group's segment x[0..n): in place to softmax minus the one-hot of t;
// returns logsumexp - x[t] (NaN when the segment holds a NaN).
template <typename scalar_t>
scalar_t segment_generic(scalar_t* x, int64_t n, int64_t t) {
  scalar_t peak = -std::numeric_limits<scalar_t>::infinity();
  bool nan = false;
  for (int64_t j = 0; j < n; ++j) {
    nan |= std::isnan(x[j]);
    peak = x[j] > peak ? x[j] : peak;
  }
  const scalar_t target = x[t];
  if (nan || !std::isfinite(peak)) {
    const scalar_t q = std::numeric_limits<scalar_t>::quiet_NaN();
    for (int64_t j = 0; j < n; ++j) x[j] = q;
    return q;
  }
  scalar_t sum = 0;
  for (int64_t j = 0; j < n; ++j) {
    x[j] = std::exp(x[j] - peak);
    sum += x[j];
  }
  const scalar_t inv = scalar_t(1) / sum;
  for (int64_t j = 0; j < n; ++j) x[j] *= inv;
  x[t] -= scalar_t(1);
  return peak + std::log(sum) - target;
}

#ifdef PYG_RECSYS_X86_DISPATCH
// exp of 8 floats, x <= 0 expected (x - max); NaN propagates. The range is
// clamped at -87.3 (exp ~ 1.2e-38, the smallest normal) so that 2^n stays a
// normal number; smaller values give that instead of 0, which changes a sum
// of terms >= 1 by less than 1e-37.
PYG_RECSYS_TARGET_AVX2 inline __m256 exp8(__m256 x) {
  const __m256 lo = _mm256_set1_ps(-87.3f);
  x = _mm256_max_ps(lo, x);  // max_ps returns its second operand on NaN
  const __m256 n = _mm256_round_ps(
      _mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
      _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  // r = x - n ln 2, in two steps (Cody-Waite) to keep r accurate.
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
  __m256 p = _mm256_set1_ps(1.9875691500e-4f);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
  const __m256 r2 = _mm256_mul_ps(r, r);
  p = _mm256_fmadd_ps(p, r2, _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
  const __m256i e = _mm256_slli_epi32(
      _mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}

PYG_RECSYS_TARGET_AVX2 inline float hsum8(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 0x55));
  return _mm_cvtss_f32(s);
}

PYG_RECSYS_TARGET_AVX2 inline float hmax8(__m256 v) {
  __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_max_ps(s, _mm_movehl_ps(s, s));
  s = _mm_max_ss(s, _mm_shuffle_ps(s, s, 0x55));
  return _mm_cvtss_f32(s);
}

PYG_RECSYS_TARGET_AVX2 float segment_avx2(float* x, int64_t n, int64_t t) {
  const float ninf = -std::numeric_limits<float>::infinity();
  __m256 vmax = _mm256_set1_ps(ninf);
  __m256 vnan = _mm256_setzero_ps();
  int64_t j = 0;
  for (; j + 8 <= n; j += 8) {
    const __m256 v = _mm256_loadu_ps(x + j);
    vnan = _mm256_or_ps(vnan, _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
    vmax = _mm256_max_ps(vmax, v);
  }
  float peak = hmax8(vmax);
  bool nan = _mm256_movemask_ps(vnan) != 0;
  for (; j < n; ++j) {
    nan |= x[j] != x[j];
    peak = x[j] > peak ? x[j] : peak;
  }
  const float target = x[t];
  if (nan || peak == ninf || peak == -ninf) {
    const float q = std::numeric_limits<float>::quiet_NaN();
    for (j = 0; j < n; ++j) x[j] = q;
    return q;
  }
  const __m256 vp = _mm256_set1_ps(peak);
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  j = 0;
  for (; j + 16 <= n; j += 16) {
    const __m256 e0 = exp8(_mm256_sub_ps(_mm256_loadu_ps(x + j), vp));
    const __m256 e1 = exp8(_mm256_sub_ps(_mm256_loadu_ps(x + j + 8), vp));
    _mm256_storeu_ps(x + j, e0);
    _mm256_storeu_ps(x + j + 8, e1);
    acc0 = _mm256_add_ps(acc0, e0);
    acc1 = _mm256_add_ps(acc1, e1);
  }
  float sum = hsum8(_mm256_add_ps(acc0, acc1));
  for (; j < n; ++j) {
    x[j] = std::exp(x[j] - peak);
    sum += x[j];
  }
  const float inv = 1.0f / sum;
  const __m256 vi = _mm256_set1_ps(inv);
  j = 0;
  for (; j + 8 <= n; j += 8)
    _mm256_storeu_ps(x + j, _mm256_mul_ps(_mm256_loadu_ps(x + j), vi));
  for (; j < n; ++j) x[j] *= inv;
  x[t] -= 1.0f;
  return peak + std::log(sum) - target;
}
#endif

// The version of the active ISA (AVX2 for float where the CPU has it).
double segment(double* x, int64_t n, int64_t t) {
  return segment_generic<double>(x, n, t);
}

float segment(float* x, int64_t n, int64_t t) {
#ifdef PYG_RECSYS_X86_DISPATCH
  if (cpu::active_isa() == cpu::Isa::kAvx2) return segment_avx2(x, n, t);
#endif
  return segment_generic<float>(x, n, t);
}

at::Tensor softmax_ce_rows_cpu(at::Tensor& logits, const at::Tensor& target_,
                               int64_t groups) {
  TORCH_CHECK(logits.dim() == 2 && logits.is_contiguous(),
              "softmax_ce_rows_: logits must be a contiguous [R, G * I] "
              "tensor");
  TORCH_CHECK(groups > 0 && logits.size(1) % groups == 0,
              "softmax_ce_rows_: the columns must split into ", groups,
              " groups of equal size");
  auto target = target_.to(at::kLong).contiguous();
  TORCH_CHECK(target.dim() == 2 && target.size(0) == logits.size(0) &&
                  target.size(1) == groups,
              "softmax_ce_rows_: target must have shape [R, groups]");
  const int64_t rows = logits.size(0), size = logits.size(1) / groups;
  TORCH_CHECK(size > 0 || rows == 0, "softmax_ce_rows_: empty groups");
  if (rows > 0) {
    TORCH_CHECK(target.min().item<int64_t>() >= 0 &&
                    target.max().item<int64_t>() < size,
                "softmax_ce_rows_: targets must lie in [0, ", size, ")");
  }
  auto loss = at::empty({rows}, logits.options());
  const int64_t* pt = target.data_ptr<int64_t>();
  AT_DISPATCH_FLOATING_TYPES(logits.scalar_type(), "softmax_ce_rows_", [&] {
    scalar_t* px = logits.data_ptr<scalar_t>();
    scalar_t* pl = loss.data_ptr<scalar_t>();
    at::parallel_for(0, rows, 1, [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) {
        scalar_t total = 0;
        for (int64_t g = 0; g < groups; ++g) {
          scalar_t* seg = px + (r * groups + g) * size;
          total += segment(seg, size, pt[r * groups + g]);
        }
        pl[r] = total;
      }
    });
  });
  return loss;
}

}  // namespace

TORCH_LIBRARY_IMPL(pyg_recsys, CPU, m) {
  m.impl("softmax_ce_rows_", &softmax_ce_rows_cpu);
}

}  // namespace pyg_recsys
