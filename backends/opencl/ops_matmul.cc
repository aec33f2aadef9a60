// linear and matmul (kernels/matmul.cl): a GEMV for a few rows of x (decode:
// memory bound, W read once, 16-byte loads where rows are aligned; the
// weight dtype is a -D so the inner loop has no dtype branch) and a
// local-memory tiled GEMM for the rest.
#include <algorithm>

#include "absl/strings/str_cat.h"
#include "dispatch.h"

namespace kiln::opencl {
namespace {

// MAXM in matmul.cl: up to 4 rows of x by default, up to 8 with -DMAXM=8
// (8 sequences decoding: the tiled GEMM would give W's 4096 rows to 64
// work-groups).
constexpr int kGemvMaxRows = 8;

// GR in matmul.cl: rows of W per work-group (1, 2, 4 or 8): 4, and 8 for
// q8_0 (1.7x faster on the H200: its work-items share x's loads over more
// rows), fewer where the q8_0 staging (GR rows of QCB = 128 blocks of 34
// bytes) and the reduction would not fit in local memory;
// KILN_OPENCL_GEMV_ROWS to measure others.
int GemvRows(DType wd, const DeviceFacts& dev) {
  const int64_t r = EnvInt("KILN_OPENCL_GEMV_ROWS", wd == DType::kQ8_0 ? 8 : 4);
  int rows = r == 1 || r == 2 || r == 8 ? static_cast<int>(r) : 4;
  auto local_bytes = [&](int gr) {
    const size_t staged = wd == DType::kQ8_0 ? size_t(gr) * 128 * 34 : 0;
    return staged + sizeof(float) * kGemvMaxRows * gr * (128 / gr + 1);
  };
  while (rows > 1 && local_bytes(rows) > dev.local_mem) rows /= 2;
  return rows;
}

// The GEMV's options: weight and x dtypes (f16 W, f32 x are the program's
// default, so the GEMM program serves them too) and VEC when W's and x's
// rows are 16-byte aligned with K a multiple of 8 (aligned vector loads).
std::string GemvOptions(const TensorArg& w, const TensorArg& x, const Int4& xstr, int64_t M, const DeviceFacts& dev) {
  const DType wd = w.info->dtype, xd = x.info->dtype;
  std::string o;
  if (M > 4) absl::StrAppend(&o, " -DMAXM=8");
  if (wd != DType::kF16) absl::StrAppend(&o, " -DWDT=", static_cast<int>(wd));
  if (xd != DType::kF32) absl::StrAppend(&o, " -DXDT=", static_cast<int>(xd));
  auto unit = [](DType t) { return t == DType::kF32 ? 4 : t == DType::kF16 || t == DType::kBF16 ? 8 : 0; };
  const int64_t K = x.dim(-1);
  bool vec = unit(wd) > 0 && unit(xd) > 0 && K % 8 == 0 && w.offset() % unit(wd) == 0 &&
             w.stride(0) % unit(wd) == 0 && w.stride(1) == 1 && x.offset() % unit(xd) == 0 && x.stride(-1) == 1;
  for (int i = 0; vec && i < 4; ++i) vec = xstr[i] % unit(xd) == 0;
  if (vec) absl::StrAppend(&o, " -DVEC=1", PtxOption(dev));
  // q8_0 rows staged through local memory as 16-byte pieces (matmul.cl QVEC).
  if (wd == DType::kQ8_0 && K % 256 == 0 && w.offset() % 16 == 0 && w.stride(0) % 16 == 0) absl::StrAppend(&o, " -DQVEC=1");
  if (GemvRows(wd, dev) != 4) absl::StrAppend(&o, " -DGR=", GemvRows(wd, dev));
  return o.empty() ? o : o.substr(1);
}

void SetGemm(Dispatch& d, int64_t M, int64_t N, int64_t Z) {
  d.work_dim = 3;
  d.local = {16, 16, 1};
  d.global = {size_t((N + 63) / 64) * 16, size_t((M + 63) / 64) * 16, size_t(Z)};
}

absl::Status PrepareLinear(PrepareContext& ctx) {
  const TensorArg &x = ctx.in[0], &w = ctx.in[1], &y = ctx.out[0];
  const TensorArg bias = ctx.in.size() > 2 ? ctx.in[2] : TensorArg{};
  const int64_t K = x.dim(-1), N = w.dim(0);
  const int64_t M = K > 0 ? x.info->numel() / K : y.info->numel() / std::max<int64_t>(N, 1);
  if (M * N == 0) return absl::OkStatus();
  Int4 rdims{1, 1, 1, 1}, rstr{0, 0, 0, 0};
  const int nr = x.rank() - 1;
  for (int i = 0; i < nr; ++i) {
    rdims[4 - nr + i] = x.dim(i);
    rstr[4 - nr + i] = x.stride(i);
  }
  const DType wdt = w.info->dtype;
  if (M <= kGemvMaxRows) {
    auto d = ctx.Add("matmul", GemvOptions(w, x, rstr, M, *ctx.device), "gemv");
    if (!d.ok()) return d.status();
    KernelArgs a((*d)->kernel);
    a.tensor(y, ctx.dummy).tensor(x, ctx.dummy).i4(rdims).i4(rstr).i32(int(x.info->dtype));
    a.tensor(w, ctx.dummy).i64(w.stride(0)).tensor(bias, ctx.dummy).i32(bias.present()).i32(M).i32(N).i32(K);
    (*d)->local = {128, 1, 1};
    const int gr = GemvRows(wdt, *ctx.device);
    (*d)->global = {size_t((N + gr - 1) / gr) * 128, 1, 1};
    return a.status();
  }
  auto d = ctx.Add("matmul", "", "gemm");
  if (!d.ok()) return d.status();
  KernelArgs a((*d)->kernel);
  a.tensor(y, ctx.dummy).tensor(x, ctx.dummy).i4(rdims).i4(rstr).i32(1).i64(0).i64(0).i32(int(x.info->dtype));
  a.tensor(w, ctx.dummy).i64(1).i64(w.stride(0)).i64(0).i64(0).i32(int(wdt)).i32(1).i32(1);
  a.tensor(bias, ctx.dummy).i32(bias.present()).i32(M).i32(N).i32(K);
  SetGemm(**d, M, N, 1);
  return a.status();
}

absl::Status PrepareMatmul(PrepareContext& ctx) {
  const TensorArg &A = ctx.in[0], &B = ctx.in[1], &y = ctx.out[0];
  const int64_t M = A.dim(-2), K = A.dim(-1), N = B.dim(-1);
  const int br = y.rank() - 2;
  int64_t nz[2] = {1, 1};
  for (int i = 0; i < br; ++i) nz[2 - br + i] = y.dim(i);
  auto batch = [&](const TensorArg& t, int64_t* z) {
    const int bt = t.rank() - 2;
    for (int i = 0; i < bt; ++i) {
      const int p = 2 - bt + i;
      z[p] = (t.dim(i) == 1 && nz[p] != 1) ? 0 : t.stride(i);
    }
  };
  int64_t az[2] = {0, 0}, bz[2] = {0, 0};
  batch(A, az);
  batch(B, bz);
  if (M * N * nz[0] * nz[1] == 0) return absl::OkStatus();
  auto d = ctx.Add("matmul", "", "gemm");
  if (!d.ok()) return d.status();
  KernelArgs a((*d)->kernel);
  a.tensor(y, ctx.dummy).tensor(A, ctx.dummy).i4({1, 1, 1, M}).i4({0, 0, 0, A.stride(-2)}).i32(A.stride(-1));
  a.i64(az[0]).i64(az[1]).i32(int(A.info->dtype));
  a.tensor(B, ctx.dummy).i64(B.stride(-2)).i64(B.stride(-1)).i64(bz[0]).i64(bz[1]).i32(int(B.info->dtype));
  a.i32(0).i32(nz[1]).tensor(TensorArg{}, ctx.dummy).i32(0).i32(M).i32(N).i32(K);
  SetGemm(**d, M, N, nz[0] * nz[1]);
  return a.status();
}

Support Any(const Graph&, const Node&, const DeviceFacts&) { return Support::Yes(); }

}  // namespace

void RegisterMatmulOps(std::vector<OpEntry>& ops) {
  ops.push_back({"linear", Any, PrepareLinear});
  ops.push_back({"matmul", Any, PrepareMatmul});
}

}  // namespace kiln::opencl
