// linear and matmul (kernels/matmul.cl): a GEMV for a few rows of x (decode:
// memory bound, W read once, 8 values per load; the weight dtype is a -D so
// the inner loop has no dtype branch) and a local-memory tiled GEMM for the
// rest.
#include <algorithm>

#include "absl/strings/str_cat.h"
#include "dispatch.h"

namespace kiln::opencl {
namespace {

constexpr int kGemvMaxRows = 4;  // MAXM in matmul.cl

// The GEMV's weight and x dtypes; f16 weights with f32 x are the program's
// default, so the GEMM program serves them too.
std::string GemvOptions(DType w, DType x) {
  std::string o;
  if (w != DType::kF16) absl::StrAppend(&o, "-DWDT=", static_cast<int>(w));
  if (x != DType::kF32) absl::StrAppend(&o, o.empty() ? "" : " ", "-DXDT=", static_cast<int>(x));
  return o;
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
    auto d = ctx.Add("matmul", GemvOptions(wdt, x.info->dtype), "gemv");
    if (!d.ok()) return d.status();
    KernelArgs a((*d)->kernel);
    a.tensor(y, ctx.dummy).tensor(x, ctx.dummy).i4(rdims).i4(rstr).i32(int(x.info->dtype));
    a.tensor(w, ctx.dummy).i64(w.stride(0)).tensor(bias, ctx.dummy).i32(bias.present()).i32(M).i32(N).i32(K);
    (*d)->local = {128, 1, 1};
    (*d)->global = {size_t(N) * 128, 1, 1};
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
