// CPU kernels of matmul and linear: products go to kiln's own GEMM/GEMV
// (gemm.h), which widens f16/bf16/q8_0 weights per packed panel. Many small
// batched matmuls run in parallel over batches.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "backends/cpu/matmul.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"

#include <cstdint>

HWY_BEFORE_NAMESPACE();
namespace kiln::cpu {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;
using DF = hn::ScalableTag<float>;

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
#include <algorithm>
#include <cstring>
#include <vector>

#include "absl/strings/str_cat.h"
#include "backends/cpu/cpu_kernel.h"
#include "backends/cpu/gemm.h"
#include "backends/cpu/kernel_util.h"
#include "backends/cpu/parallel.h"

namespace kiln::cpu {
namespace {

HWY_EXPORT(Axpy);

// Per-batch multiply-adds below which batched matmuls skip the GEMM and run
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
  if (t == DType::kF32 && row_stride % 4 == 0 && (rows <= 1 || row_stride / 4 >= cols)) {
    return {reinterpret_cast<const float*>(data), std::max<int64_t>(rows <= 1 ? cols : row_stride / 4, 1)};
  }
  buf.resize(rows * cols);
  for (int64_t r = 0; r < rows; ++r) LoadRow(t, data + r * row_stride, cols, buf.data() + r * cols);
  return {buf.data(), std::max<int64_t>(cols, 1)};
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
    ParallelFor(batches, ThreadsFor(batches * M * N * K / 4, args.threads), [&](int64_t bi_begin, int64_t bi_end) {
      std::vector<float> abuf, bbuf;
      for (int64_t bi = bi_begin; bi < bi_end; ++bi) {
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
    });
    return absl::OkStatus();
  }
  // One GEMM per batch (it threads inside); B is read in its own dtype
  // (widened per packed panel), A as f32, widened once when broadcast.
  std::vector<float> abuf, bbuf;
  const std::byte* a_last = nullptr;
  Matrix ma;
  const bool b_direct = b.dtype != DType::kQ8_0;
  for (int64_t bi = 0; bi < batches; ++bi) {
    const std::byte* pa = a.data + BatchOffset(a, y, bi);
    const std::byte* pb = b.data + BatchOffset(b, y, bi);
    if (pa != a_last) ma = AsF32(a.dtype, pa, a.stride(-2), M, K, abuf), a_last = pa;
    GemmB gb{b.dtype, pb, b.stride(-2), /*rows_are_n=*/false};
    if (!b_direct) {
      const Matrix mb = AsF32(b.dtype, pb, b.stride(-2), K, N, bbuf);
      gb = GemmB{DType::kF32, reinterpret_cast<const std::byte*>(mb.data), 4 * mb.ld, false};
    }
    Gemm(M, N, K, ma.data, ma.ld, gb, out + bi * M * N, N, false, args.threads);
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
  if (bias_f) {
    for (int64_t r = 0; r < R; ++r) std::memcpy(out + r * N, bias_f, 4 * N);
  }
  Gemm(R, N, K, mx.data, mx.ld, GemmB{w.dtype, w.data, w.strides[0], /*rows_are_n=*/true}, out, N,
       bias_f != nullptr, args.threads);
  return absl::OkStatus();
}

// Every valid matmul and linear runs (64-bit sizes throughout).
Support SupportsGemm(const Graph&, const Node&) { return Support::Yes(); }

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
