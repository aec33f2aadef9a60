// CPU kernels of matmul and linear. Large f32 products go to OpenBLAS
// (cblas_sgemm); f16/bf16/q8_0 weights are widened to f32 in blocks of rows
// first, except for few rows (decode), where Highway dot products read the
// weights directly. Many small batched matmuls run in parallel over batches.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "backends/cpu/matmul.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"

#include <cstring>

#include "backends/cpu/kernel_util.h"
#include "graph/dtype.h"

HWY_BEFORE_NAMESPACE();
namespace kiln::cpu {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;
using DF = hn::ScalableTag<float>;

// f32 lanes of n 16-bit floats at p (f16 or bf16), exact on every target.
template <DType kType>
HWY_INLINE hn::Vec<DF> Widen(const uint16_t* p) {
  const DF d;
  if constexpr (kType == DType::kBF16) {
    const hn::RebindToUnsigned<DF> du;
    const hn::Rebind<uint16_t, DF> d16;
    return hn::BitCast(d, hn::ShiftLeft<16>(hn::PromoteTo(du, hn::LoadU(d16, p))));
  } else {
#if HWY_ARCH_X86 && HWY_TARGET >= HWY_SSE4
    // Highway emulates f16 here without inf/NaN handling.
    HWY_ALIGN float t[HWY_MAX_BYTES / 4];
    for (size_t i = 0; i < hn::Lanes(d); ++i) t[i] = F16ToF32(p[i]);
    return hn::Load(d, t);
#else
    const hn::Rebind<hwy::float16_t, DF> dh;
    return hn::PromoteTo(d, hn::LoadU(dh, reinterpret_cast<const hwy::float16_t*>(p)));
#endif
  }
}

// <x, w> over n values; w is f32, f16 or bf16 (kType).
template <DType kType>
HWY_INLINE float DotT(const float* x, const void* w, int64_t n) {
  const DF d;
  const int64_t N = hn::Lanes(d);
  auto load_w = [&](int64_t i) {
    if constexpr (kType == DType::kF32) {
      return hn::LoadU(d, static_cast<const float*>(w) + i);
    } else {
      return Widen<kType>(static_cast<const uint16_t*>(w) + i);
    }
  };
  auto acc0 = hn::Zero(d), acc1 = hn::Zero(d);
  int64_t i = 0;
  for (; i + 2 * N <= n; i += 2 * N) {
    acc0 = hn::MulAdd(hn::LoadU(d, x + i), load_w(i), acc0);
    acc1 = hn::MulAdd(hn::LoadU(d, x + i + N), load_w(i + N), acc1);
  }
  for (; i + N <= n; i += N) acc0 = hn::MulAdd(hn::LoadU(d, x + i), load_w(i), acc0);
  float sum = hn::GetLane(hn::SumOfLanes(d, hn::Add(acc0, acc1)));
  for (; i < n; ++i) {
    float wi;
    if constexpr (kType == DType::kF32) {
      wi = static_cast<const float*>(w)[i];
    } else if constexpr (kType == DType::kF16) {
      wi = F16ToF32(static_cast<const uint16_t*>(w)[i]);
    } else {
      wi = BF16ToF32(static_cast<const uint16_t*>(w)[i]);
    }
    sum += x[i] * wi;
  }
  return sum;
}

// The f16 scale of a q8_0 block as f32 (one lane through the f16 unit where
// Highway has a real one).
HWY_INLINE float BlockScale(const std::byte* blk) {
#if HWY_ARCH_X86 && HWY_TARGET >= HWY_SSE4
  uint16_t h;
  std::memcpy(&h, blk, 2);
  return F16ToF32(h);
#else
  const hn::CappedTag<float, 1> d1;
  const hn::Rebind<hwy::float16_t, decltype(d1)> dh1;
  return hn::GetLane(hn::PromoteTo(d1, hn::LoadU(dh1, reinterpret_cast<const hwy::float16_t*>(blk))));
#endif
}

// <x, w> with w a row of q8_0 blocks (n a multiple of 32): per block, the
// int8 products are summed, then scaled once.
HWY_INLINE float DotQ8(const float* x, const std::byte* w, int64_t n) {
  const DF d;
  const hn::RebindToSigned<DF> di;
  const hn::Rebind<int8_t, DF> d8;
  const int64_t N = hn::Lanes(d);
  auto total0 = hn::Zero(d), total1 = hn::Zero(d);
  for (int64_t b = 0; b < n / kQ8BlockSize; ++b) {
    const std::byte* blk = w + b * kQ8BlockBytes;
    const auto* q = reinterpret_cast<const int8_t*>(blk + 2);
    const float* xb = x + b * kQ8BlockSize;
    auto acc0 = hn::Zero(d), acc1 = hn::Zero(d);
    for (int64_t j = 0; j < kQ8BlockSize; j += 2 * N) {  // N divides 16 on every target
      acc0 = hn::MulAdd(hn::ConvertTo(d, hn::PromoteTo(di, hn::LoadU(d8, q + j))), hn::LoadU(d, xb + j), acc0);
      acc1 = hn::MulAdd(hn::ConvertTo(d, hn::PromoteTo(di, hn::LoadU(d8, q + j + N))), hn::LoadU(d, xb + j + N),
                        acc1);
    }
    const auto scale = hn::Set(d, BlockScale(blk));
    total0 = hn::MulAdd(scale, acc0, total0);
    total1 = hn::MulAdd(scale, acc1, total1);
  }
  return hn::GetLane(hn::SumOfLanes(d, hn::Add(total0, total1)));
}

// y[r * ldy] = bias + <x[r * ldx], w> for r < rows: one weight row against a
// few activation rows (the weight row stays in cache).
void DotRows(DType wtype, const void* w, const float* x, int64_t ldx, int64_t rows, int64_t n, float bias,
             float* y, int64_t ldy) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * ldx;
    float v = 0;
    switch (wtype) {
      case DType::kF32: v = DotT<DType::kF32>(xr, w, n); break;
      case DType::kF16: v = DotT<DType::kF16>(xr, w, n); break;
      case DType::kBF16: v = DotT<DType::kBF16>(xr, w, n); break;
      case DType::kQ8_0: v = DotQ8(xr, static_cast<const std::byte*>(w), n); break;
      case DType::kI32: break;
    }
    y[r * ldy] = bias + v;
  }
}

// y[0..n) += a * x[0..n)
void Axpy(float a, const float* x, int64_t n, float* y) {
  const DF d;
  const int64_t N = hn::Lanes(d);
  const auto va = hn::Set(d, a);
  int64_t i = 0;
  for (; i + N <= n; i += N) hn::StoreU(hn::MulAdd(va, hn::LoadU(d, x + i), hn::LoadU(d, y + i)), d, y + i);
  for (; i < n; ++i) y[i] += a * x[i];
}

}  // namespace HWY_NAMESPACE
}  // namespace kiln::cpu
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
#include <cblas.h>

#include <algorithm>
#include <climits>
#include <vector>

#include "absl/strings/str_cat.h"
#include "backends/cpu/cpu_kernel.h"

namespace kiln::cpu {
namespace {

HWY_EXPORT(DotRows);
HWY_EXPORT(Axpy);

// Activation rows up to which linear with a non-f32 weight uses dot
// products instead of widening the weight for a GEMM.
constexpr int64_t kDotRows = 8;
// Per-batch multiply-adds below which batched matmuls skip OpenBLAS and run
// in parallel over batches.
constexpr int64_t kSmallGemm = 64 * 64 * 64;

// An f32 matrix: rows x cols with a leading dimension (elements).
struct Matrix {
  const float* data = nullptr;
  int64_t ld = 0;
};

// Rows x cols of a 2-D window (row stride in bytes) as f32: the memory
// itself when it is f32 with a usable stride, else widened into `buf`.
Matrix AsF32(DType t, const std::byte* data, int64_t row_stride, int64_t rows, int64_t cols,
             std::vector<float>& buf) {
  if (t == DType::kF32 && row_stride % 4 == 0 && (rows <= 1 || row_stride / 4 >= cols) &&
      row_stride / 4 <= INT_MAX) {
    return {reinterpret_cast<const float*>(data), std::max<int64_t>(rows <= 1 ? cols : row_stride / 4, 1)};
  }
  buf.resize(rows * cols);
  for (int64_t r = 0; r < rows; ++r) LoadRow(t, data + r * row_stride, cols, buf.data() + r * cols);
  return {buf.data(), std::max<int64_t>(cols, 1)};
}

// C[M,N] (ldc) = A[M,K] B[K,N] (+ C when accumulate).
void Gemm(int64_t M, int64_t N, int64_t K, Matrix a, Matrix b, bool b_transposed, float* c, int64_t ldc,
          bool accumulate) {
  if (M == 0 || N == 0) return;
  if (K == 0) {
    if (!accumulate) for (int64_t m = 0; m < M; ++m) std::fill(c + m * ldc, c + m * ldc + N, 0.0f);
    return;
  }
  cblas_sgemm(CblasRowMajor, CblasNoTrans, b_transposed ? CblasTrans : CblasNoTrans, static_cast<int>(M),
              static_cast<int>(N), static_cast<int>(K), 1.0f, a.data, static_cast<int>(a.ld), b.data,
              static_cast<int>(b.ld), accumulate ? 1.0f : 0.0f, c, static_cast<int>(ldc));
}

// Byte offset of a matrix operand for output batch index `bi` (broadcast).
int64_t BatchOffset(const TensorView& t, const TensorView& y, int64_t bi) {
  const int yb = y.rank - 2, tb = t.rank - 2;
  int64_t off = 0;
  for (int d = yb - 1; d >= 0; --d) {
    const int64_t k = bi % y.dims[d];
    bi /= y.dims[d];
    const int td = d - (yb - tb);
    if (td >= 0 && t.dims[td] != 1) off += k * t.strides[td];
  }
  return off;
}

absl::Status MatmulKernel(const KernelArgs& args) {
  const TensorView &a = args.inputs[0], &b = args.inputs[1], &y = args.outputs[0];
  const int64_t M = a.dim(-2), K = a.dim(-1), N = b.dim(-1);
  int64_t batches = 1;
  for (int d = 0; d < y.rank - 2; ++d) batches *= y.dims[d];
  if (M * N == 0 || batches == 0) return absl::OkStatus();
  auto* out = reinterpret_cast<float*>(y.data);
  if (batches > 1 && M * N * K < kSmallGemm) {
    // Small products: one batch per work item, rows by axpy over B's rows.
#pragma omp parallel num_threads(ThreadsFor(batches * M * N * K / 4, args.threads))
    {
      std::vector<float> abuf, bbuf;
#pragma omp for schedule(static)
      for (int64_t bi = 0; bi < batches; ++bi) {
        const Matrix ma = AsF32(a.dtype, a.data + BatchOffset(a, y, bi), a.stride(-2), M, K, abuf);
        const Matrix mb = AsF32(b.dtype, b.data + BatchOffset(b, y, bi), b.stride(-2), K, N, bbuf);
        float* c = out + bi * M * N;
        for (int64_t m = 0; m < M; ++m) {
          std::fill(c + m * N, c + (m + 1) * N, 0.0f);
          for (int64_t k = 0; k < K; ++k) {
            HWY_DYNAMIC_DISPATCH(Axpy)(ma.data[m * ma.ld + k], mb.data + k * mb.ld, N, c + m * N);
          }
        }
      }
    }
    return absl::OkStatus();
  }
  // One OpenBLAS call per batch (it threads inside); a broadcast operand is
  // widened once, not per batch.
  std::vector<float> abuf, bbuf;
  const std::byte* a_last = nullptr;
  const std::byte* b_last = nullptr;
  Matrix ma, mb;
  for (int64_t bi = 0; bi < batches; ++bi) {
    const std::byte* pa = a.data + BatchOffset(a, y, bi);
    const std::byte* pb = b.data + BatchOffset(b, y, bi);
    if (pa != a_last) ma = AsF32(a.dtype, pa, a.stride(-2), M, K, abuf), a_last = pa;
    if (pb != b_last) mb = AsF32(b.dtype, pb, b.stride(-2), K, N, bbuf), b_last = pb;
    Gemm(M, N, K, ma, mb, false, out + bi * M * N, N, false);
  }
  return absl::OkStatus();
}

// Whether the rows of t (all dims but the innermost) are evenly spaced;
// sets their byte stride.
bool UniformRows(const TensorView& t, int64_t* row_stride) {
  *row_stride = t.rank >= 2 ? t.stride(-2) : RowBytes(t.dtype, t.dim(-1));
  int64_t want = *row_stride;
  for (int d = t.rank - 2; d >= 0; --d) {
    if (t.dims[d] != 1 && t.strides[d] != want) return false;
    want *= t.dims[d];
  }
  return true;
}

absl::Status LinearKernel(const KernelArgs& args) {
  const TensorView &x = args.inputs[0], &w = args.inputs[1], &y = args.outputs[0];
  const TensorView bias = args.inputs.size() > 2 ? args.inputs[2] : TensorView{};
  const int64_t K = x.dim(-1), N = w.dim(0), R = NumRows(x);
  if (R * N == 0) return absl::OkStatus();
  auto* out = reinterpret_cast<float*>(y.data);
  const float* bias_f = bias.present() ? reinterpret_cast<const float*>(bias.data) : nullptr;
  // Activations as f32 rows.
  std::vector<float> xbuf;
  Matrix mx;
  int64_t x_stride = 0;
  if (x.dtype == DType::kF32 && UniformRows(x, &x_stride)) {
    mx = AsF32(x.dtype, x.data, x_stride, R, K, xbuf);
  } else {
    xbuf.resize(R * K);
    for (int64_t r = 0; r < R; ++r) LoadRow(x.dtype, RowAt(x, r), K, xbuf.data() + r * K);
    mx = {xbuf.data(), std::max<int64_t>(K, 1)};
  }
  const int64_t w_stride = w.strides[0];
  if (w.dtype != DType::kF32 && R <= kDotRows) {
    // Decode: read each weight row once, in place, on all threads.
#pragma omp parallel for num_threads(ThreadsFor(R * N * K, args.threads)) schedule(static)
    for (int64_t n = 0; n < N; ++n) {
      HWY_DYNAMIC_DISPATCH(DotRows)(w.dtype, w.data + n * w_stride, mx.data, mx.ld, R, K,
                                    bias_f ? bias_f[n] : 0.0f, out + n, N);
    }
    return absl::OkStatus();
  }
  if (bias_f) {
    for (int64_t r = 0; r < R; ++r) std::memcpy(out + r * N, bias_f, 4 * N);
  }
  if (w.dtype == DType::kF32) {
    std::vector<float> wbuf;
    const Matrix mw = AsF32(w.dtype, w.data, w_stride, N, K, wbuf);
    Gemm(R, N, K, mx, mw, true, out, N, bias_f != nullptr);
    return absl::OkStatus();
  }
  // Widen blocks of weight rows (about 8 MB of f32 each), then GEMM each.
  const int64_t block = std::clamp<int64_t>((int64_t{1} << 21) / std::max<int64_t>(K, 1), 64, N);
  std::vector<float> wbuf(block * K);
  for (int64_t n0 = 0; n0 < N; n0 += block) {
    const int64_t nb = std::min(block, N - n0);
#pragma omp parallel for num_threads(ThreadsFor(nb * K, args.threads)) schedule(static)
    for (int64_t n = 0; n < nb; ++n) LoadRow(w.dtype, w.data + (n0 + n) * w_stride, K, wbuf.data() + n * K);
    Gemm(R, nb, K, mx, Matrix{wbuf.data(), std::max<int64_t>(K, 1)}, true, out + n0, N, bias_f != nullptr);
  }
  return absl::OkStatus();
}

// OpenBLAS takes 32-bit sizes.
Support SupportsGemm(const Graph& graph, const Node& node) {
  for (const std::vector<int>* ids : {&node.inputs, &node.outputs}) {
    for (int id : *ids) {
      if (id < 0) continue;
      for (int64_t d : graph.tensors[id].dims) {
        if (d > INT_MAX) {
          return Support::No(absl::StrCat("dim ", d, " of tensor ", Describe(graph.tensors[id]),
                                          " exceeds OpenBLAS's 32-bit sizes"));
        }
      }
    }
  }
  return Support::Yes();
}

absl::StatusOr<CpuPipeline> SelectMatmul(const Graph& graph, const Node& node) {
  return CpuPipeline{absl::StrCat("matmul[", DTypeName(graph.tensors[node.inputs[0]].dtype), ",",
                                  DTypeName(graph.tensors[node.inputs[1]].dtype), "]"),
                     MatmulKernel};
}

absl::StatusOr<CpuPipeline> SelectLinear(const Graph& graph, const Node& node) {
  return CpuPipeline{absl::StrCat("linear[", DTypeName(graph.tensors[node.inputs[0]].dtype), ",",
                                  DTypeName(graph.tensors[node.inputs[1]].dtype),
                                  node.has_input(2) ? ",bias" : "", "]"),
                     LinearKernel};
}

}  // namespace

void RegisterCpuMatmulKernels(std::vector<CpuKernelEntry>& k) {
  k.push_back({"matmul", SupportsGemm, SelectMatmul});
  k.push_back({"linear", SupportsGemm, SelectLinear});
}

}  // namespace kiln::cpu
#endif  // HWY_ONCE
