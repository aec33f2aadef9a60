// Data-dependent indexing and state ops: gather, write_rows (in place when
// out aliases dst), conv1d_causal with its carried state.
#include "absl/strings/str_cat.h"
#include "backends/vulkan/vk_kernels.h"
#include "ops/conv1d_causal.h"
#include "ops/layout.h"
#include "ops/write_rows.h"

namespace kiln::vk {
namespace {

Support Yes(const Graph&, const Node&, const DeviceFacts&) { return Support::Yes(); }

absl::Status RecordGather(KernelContext& ctx) {
  const TensorArg& table = ctx.in(kGatherTable);
  const TensorArg& ids = ctx.in(kGatherIds);
  const TensorArg& y = ctx.out(0);
  const uint64_t nid = ids.numel(), C = table.dims[3];
  if (nid * C == 0) return absl::OkStatus();
  Dispatch& d = ctx.Add("gather", {DtCode(table.dtype()), DtCode(y.dtype())}, GridGroups(nid * C, 256));
  d.U(nid).U(C).Dims(ids.dims).T(ids).U(table.offset).U(table.strides[2]).U(table.dims[2]).U(y.offset);
  d.Bind(0, table).Bind(1, ids).Bind(2, y);
  return absl::OkStatus();
}

// Row addressing of a [..., R, C] tensor: up to two lead dims.
struct RowView {
  uint32_t off;
  int64_t s_l0, s_l1, s_row;
};
RowView Rows(const TensorArg& t) { return {t.offset, t.strides[0], t.strides[1], t.strides[2]}; }

Support SupportsWriteRows(const Graph& graph, const Node& node, const DeviceFacts&) {
  const TensorInfo& dst = graph.tensors[node.inputs[kWriteRowsDst]];
  if (dst.dtype == DType::kQ8_0 && dst.dims.back() % 32 != 0) return Support::No("q8_0 rows of partial blocks");
  return Support::Yes();
}

absl::Status RecordWriteRows(KernelContext& ctx) {
  const TensorArg& dst = ctx.in(kWriteRowsDst);
  const TensorArg& src = ctx.in(kWriteRowsSrc);
  const TensorArg& rows = ctx.in(kWriteRowsRows);
  const TensorArg& y = ctx.out(0);
  const bool q8 = y.dtype() == DType::kQ8_0;
  const uint64_t C = q8 ? y.dims[3] / 32 * 34 : y.dims[3];
  const uint64_t R = y.dims[2], n = rows.dims[3];
  const uint64_t lead = y.dims[0] * y.dims[1];
  if (lead == 0 || C == 0) return absl::OkStatus();
  auto params = [&](Dispatch& d, const RowView& o, const RowView& s) {
    d.U(n).U(R).U(C).U(y.dims[1]);
    d.U(o.off).U(o.s_l0).U(o.s_l1).U(o.s_row);
    d.U(s.off).U(s.s_l0).U(s.s_l1).U(s.s_row);
    d.U(rows.offset).U(rows.strides[3]);
  };
  if (!y.SameMemory(dst) && R > 0) {
    Dispatch& c = ctx.Add("write_rows", {DtCode(dst.dtype()), DtCode(y.dtype()), 1}, R, lead);
    params(c, Rows(y), Rows(dst));
    c.Bind(0, dst).Bind(1, rows).Bind(2, y);
  }
  if (n == 0) return absl::OkStatus();
  Dispatch& d = ctx.Add("write_rows", {DtCode(src.dtype()), DtCode(y.dtype()), 0}, n, lead);
  params(d, Rows(y), Rows(src));
  d.Bind(0, src).Bind(1, rows).Bind(2, y);
  return absl::OkStatus();
}

constexpr int kConvMaxK = 16;

Support SupportsConv(const Graph& graph, const Node& node, const DeviceFacts&) {
  const TensorInfo& w = graph.tensors[node.inputs[kConvWeight]];
  if (w.dims[1] > kConvMaxK) return Support::No(absl::StrCat("conv1d_causal kernel size above ", kConvMaxK));
  return Support::Yes();
}

absl::Status RecordConv(KernelContext& ctx) {
  const TensorArg& x = ctx.in(kConvX);
  const TensorArg& w = ctx.in(kConvWeight);
  const TensorArg& s = ctx.in(kConvState);
  const TensorArg& y = ctx.out(kConvOut);
  const TensorArg& ns = ctx.out(kConvNewState);
  const uint64_t B = x.dims[1], T = x.dims[2], C = x.dims[3], K = w.dims[3];
  if (B * C == 0) return absl::OkStatus();
  Dispatch& d = ctx.Add("conv1d_causal",
                        {DtCode(x.dtype()), DtCode(w.dtype()), s.present() ? DtCode(s.dtype()) : 0, DtCode(ns.dtype()),
                         s.present() ? 1 : 0, ctx.node.GetBool("silu") ? 1 : 0, kConvMaxK},
                        (B * C + 63) / 64);
  d.U(B).U(T).U(C).U(K);
  d.U(x.offset).U(x.strides[1]).U(x.strides[2]);
  d.U(w.offset).U(w.strides[2]).U(w.strides[3]);
  if (s.present()) d.U(s.offset).U(s.strides[1]).U(s.strides[2]); else d.U(0).U(0).U(0);
  d.U(y.offset).U(y.strides[1]).U(y.strides[2]);
  d.U(ns.offset).U(ns.strides[1]).U(ns.strides[2]);
  d.Bind(0, x).Bind(1, w).Bind(3, y).Bind(4, ns);
  if (s.present()) d.Bind(2, s);
  return absl::OkStatus();
}

}  // namespace

void RegisterIndexKernels(std::vector<VkKernelEntry>& k) {
  k.push_back({"gather", Yes, RecordGather});
  k.push_back({"write_rows", SupportsWriteRows, RecordWriteRows});
  k.push_back({"conv1d_causal", SupportsConv, RecordConv});
}

}  // namespace kiln::vk
