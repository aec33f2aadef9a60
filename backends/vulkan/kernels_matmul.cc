// matmul and linear: GEMV for up to 8 rows (weights read once, vector loads
// when aligned), a tiled GEMM otherwise; both in shaders/matmul.comp.
#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "backends/vulkan/vk_kernels.h"
#include "ops/op_schema.h"

namespace kiln::vk {
namespace {

constexpr int kGemvRows = 8;

// 16-byte weight loads per lane in flight (matmul.comp's NV): 2. On the
// H200 (f16 4096x4096) fewer were faster: 14.0 us against 15.7 for 4, 17.3
// for 8, 19.8 for 16 (bench/RESULTS.md). KILN_VULKAN_GEMV_NV is a tuning knob.
int GemvLoads() {
  const char* v = std::getenv("KILN_VULKAN_GEMV_NV");
  const int n = v ? std::atoi(v) : 0;
  return n >= 1 && n <= 32 ? n : 2;
}

// Output columns per subgroup of the GEMV (matmul.comp's NR): each piece
// of A loaded serves that many weight rows. 4 for q8_0 weights (H200,
// 4096x4096: 1 token 26.2 -> 16.3 us, 8 tokens 145 -> 55 us), 1 for the
// rest (f16 1 token 13.8 us against 14.3 / 15.0 for 2 / 4, 8 tokens 48.5
// against 50 / 53; bench/RESULTS.md). KILN_VULKAN_GEMV_NR (1, 2 or 4) is a
// tuning knob. With A in shared memory (several rows of A), 2: f16 8
// tokens 47.4-47.9 us unstaged, 68.2 staged with 1, 40.9 with 2 and 4.
int GemvColumns(DType weights, bool staged_a) {
  const char* v = std::getenv("KILN_VULKAN_GEMV_NR");
  const int n = v ? std::atoi(v) : 0;
  if (n == 1 || n == 2 || n == 4) return n;
  return weights == DType::kQ8_0 ? 4 : staged_a ? 2 : 1;
}

Support SupportsMatmul(const Graph& graph, const Node& node, const DeviceFacts& facts) {
  if (node.op == "linear") {
    const TensorInfo& w = graph.tensors[node.inputs[1]];
    if (w.dtype == DType::kQ8_0 && w.dims[1] % 32 != 0) return Support::No("q8_0 weight rows must hold whole blocks");
    const TensorInfo& x = graph.tensors[node.inputs[0]];
    if (x.dtype == DType::kQ8_0) return Support::No("q8_0 activations");
  } else {
    for (int i = 0; i < 2; ++i) {
      if (graph.tensors[node.inputs[i]].dtype == DType::kQ8_0) return Support::No("matmul does not take q8_0");
    }
  }
  return Support::Yes();
}

// Rows contiguous in k and every row start a whole 16-byte vector.
bool VectorRows(DType t, uint64_t K, uint32_t off, const std::array<int64_t, 4>& s, int k_stride, int row_stride) {
  if (t == DType::kQ8_0 || s[k_stride] != 1) return false;
  const int64_t unit = t == DType::kF32 ? 4 : 8;
  return K % unit == 0 && off % unit == 0 && s[row_stride] % unit == 0 && s[0] % unit == 0 && s[1] % unit == 0;
}

struct Gemm {
  uint64_t M, N, K, b0, b1;
  const TensorArg* A;
  std::array<int64_t, 4> a;  // s_b0, s_b1, s_m, s_k
  uint32_t a_off;
  const TensorArg* B;
  std::array<int64_t, 4> b;  // s_b0, s_b1, s_k, s_n
  uint32_t b_off;
  const TensorArg* out;
  std::array<int64_t, 3> o;  // s_b0, s_b1, s_m
  const TensorArg* bias = nullptr;
};

// The push constants and bindings matmul.comp and matmul_cm.comp share.
void PushGemm(Dispatch& d, const Gemm& g) {
  d.U(g.M).U(g.N).U(g.K).U(g.b1);
  d.U(g.a_off);
  for (int64_t s : g.a) d.U(s);
  d.U(g.b_off);
  for (int64_t s : g.b) d.U(s);
  d.U(g.out->offset);
  for (int64_t s : g.o) d.U(s);
  d.U(g.bias ? g.bias->offset : 0);
  d.Bind(0, *g.A).Bind(1, *g.B).Bind(2, *g.out);
  if (g.bias) d.Bind(3, *g.bias);
}

void RecordGemm(KernelContext& ctx, const Gemm& g) {
  const bool gemv = g.M <= kGemvRows;
  const DType bt = g.B->dtype();
  bool vec = false;
  if (gemv && g.b[2] == 1 && bt != DType::kQ8_0) {
    const int64_t unit = bt == DType::kF32 ? 4 : 8;  // elements per 16-byte load
    vec = g.K % unit == 0 && g.b_off % unit == 0 && g.b[3] % unit == 0 && g.b[0] % unit == 0 &&
          g.b[1] % unit == 0;
  } else if (gemv && bt == DType::kQ8_0) {
    // Pairs of blocks from word-aligned starts (offsets and strides in bytes).
    vec = g.K % 64 == 0 && g.b_off % 4 == 0 && g.b[3] % 4 == 0 && g.b[0] % 4 == 0 && g.b[1] % 4 == 0;
  }
  if (!gemv && HasCoopmat16(ctx.facts) && (bt == DType::kF16 || bt == DType::kBF16) &&
      g.A->dtype() != DType::kQ8_0) {
    // f16 products, f32 sums: within the f16/bf16 tolerance of OPS.md (A
    // is rounded to f16; bf16 B converts exactly unless out of f16 range).
    Dispatch& d = ctx.Add("matmul_cm",
                          {DtCode(g.A->dtype()), DtCode(bt), g.bias ? 1 : 0, g.bias ? DtCode(g.bias->dtype()) : 0,
                           VectorRows(g.A->dtype(), g.K, g.a_off, g.a, 3, 2) ? 1 : 0,
                           VectorRows(bt, g.K, g.b_off, g.b, 2, 3) ? 1 : 0},
                          (g.N + 127) / 128, (g.M + 127) / 128, g.b0 * g.b1);
    PushGemm(d, g);
    return;
  }
  const int32_t rows = gemv ? (g.M <= 1 ? 1 : g.M <= 2 ? 2 : g.M <= 4 ? 4 : 8) : 1;
  const bool veca = gemv && g.A->dtype() == DType::kF32 && VectorRows(DType::kF32, g.K, g.a_off, g.a, 3, 2);
  // Several rows of A over 16-bit or f32 weights: A staged through shared
  // memory (matmul.comp's XS, the most values of k per row, up to 1024,
  // that fit beside the GEMM's tiles; KILN_VULKAN_GEMV_XS=0: not).
  int32_t xs = 0;
  if (gemv && vec && veca && g.M > 1 && (bt == DType::kF32 || bt == DType::kF16 || bt == DType::kBF16)) {
    const char* env = std::getenv("KILN_VULKAN_GEMV_XS");
    const int64_t room = static_cast<int64_t>(ctx.facts.props.limits.maxComputeSharedMemorySize) - 2 * 16 * 65 * 4;
    if (!env || std::atoi(env) != 0) {
      for (int32_t v = 1024; v >= 64 && xs == 0; v /= 2) {
        if (int64_t{rows} * v * 4 <= room) xs = v;
      }
    }
  }
  const uint64_t batches = g.b0 * g.b1;
  uint64_t gx, gy;
  // GEMV: 256 / NR invocations a workgroup (at least a subgroup), so that
  // a workgroup covers about 8 output columns whatever NR; 256 with A in
  // shared memory (fewer copies of it).
  const int nr = gemv ? GemvColumns(bt, xs > 0) : 1;
  const uint32_t sgs = std::max<uint32_t>(1, ctx.facts.subgroup_size);
  const uint32_t wgs = gemv && xs == 0 ? std::max<uint32_t>(sgs, 256 / nr / sgs * sgs) : 256;
  if (gemv) {
    const uint64_t per_group = uint64_t{wgs / sgs} * nr;
    gx = std::min<uint64_t>(65535, (g.N + per_group - 1) / per_group);
    gy = 1;
  } else {
    gx = (g.N + 63) / 64;
    gy = (g.M + 63) / 64;
  }
  Dispatch& d = ctx.Add("matmul",
                        {gemv ? 0 : 1, DtCode(g.A->dtype()), DtCode(bt), g.bias ? 1 : 0,
                         g.bias ? DtCode(g.bias->dtype()) : 0, vec ? 1 : 0, rows,
                         veca ? 1 : 0, GemvLoads(), static_cast<int32_t>(wgs), nr, xs},
                        gx, gy, batches);
  PushGemm(d, g);
}

// Leading-dim strides of a [..., M, K]-style arg for output batch dims
// (b0, b1) = padded dims 0 and 1 (broadcast: size 1 -> 0).
int64_t BatchStride(const TensorArg& t, int i) { return t.dims[i] == 1 ? 0 : t.strides[i]; }

absl::Status RecordMatmul(KernelContext& ctx) {
  const TensorArg& a = ctx.in(0);
  const TensorArg& b = ctx.in(1);
  const TensorArg& y = ctx.out(0);
  Gemm g;
  g.M = y.dims[2];
  g.N = y.dims[3];
  g.K = a.dims[3];
  g.b0 = y.dims[0];
  g.b1 = y.dims[1];
  g.A = &a;
  g.a = {BatchStride(a, 0), BatchStride(a, 1), a.strides[2], a.strides[3]};
  g.a_off = a.offset;
  g.B = &b;
  g.b = {BatchStride(b, 0), BatchStride(b, 1), b.strides[2], b.strides[3]};
  g.b_off = b.offset;
  g.out = &y;
  g.o = {y.strides[0], y.strides[1], y.strides[2]};
  if (y.numel() == 0) return absl::OkStatus();
  RecordGemm(ctx, g);
  return absl::OkStatus();
}

absl::Status RecordLinear(KernelContext& ctx) {
  const TensorArg& x = ctx.in(0);
  const TensorArg& w = ctx.in(1);
  const TensorArg& bias = ctx.in(2);
  const TensorArg& y = ctx.out(0);
  Gemm g;
  // x [d0, d1, d2, K]: (d0, d1) are batches, d2 the rows.
  g.M = x.dims[2];
  g.N = w.dims[2];
  g.K = x.dims[3];
  g.b0 = x.dims[0];
  g.b1 = x.dims[1];
  g.A = &x;
  g.a = {x.strides[0], x.strides[1], x.strides[2], x.strides[3]};
  g.a_off = x.offset;
  g.B = &w;
  // B(k, n) = W[n, k]: k stride 1, n stride the weight row (bytes for q8_0).
  g.b = {0, 0, w.dtype() == DType::kQ8_0 ? 0 : 1, w.strides[2]};
  g.b_off = w.offset;
  g.out = &y;
  g.o = {y.strides[0], y.strides[1], y.strides[2]};
  g.bias = bias.present() ? &bias : nullptr;
  // Rows of several batches in one GEMM when x's rows are uniformly strided.
  if (g.M * g.b0 * g.b1 > 0 && x.dims[1] > 1 && x.strides[1] == x.strides[2] * x.dims[2] &&
      y.strides[1] == y.strides[2] * y.dims[2]) {
    g.M *= g.b1;
    g.b1 = 1;
    g.a[1] = 0;
    g.o[1] = 0;
  }
  if (g.M > 0 && x.dims[0] > 1 && g.b1 == 1 && x.strides[0] == x.strides[2] * int64_t(g.M) &&
      y.strides[0] == y.strides[2] * int64_t(g.M)) {
    g.M *= g.b0;
    g.b0 = 1;
    g.a[0] = 0;
    g.o[0] = 0;
  }
  if (y.numel() == 0) return absl::OkStatus();
  RecordGemm(ctx, g);
  return absl::OkStatus();
}

}  // namespace

void RegisterMatmulKernels(std::vector<VkKernelEntry>& k) {
  k.push_back({"matmul", SupportsMatmul, RecordMatmul});
  k.push_back({"linear", SupportsMatmul, RecordLinear});
}

}  // namespace kiln::vk
