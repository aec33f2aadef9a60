// rope: rotary position embedding (see ops/rope.h for the exact definition).
#include <cmath>
#include <vector>

#include "absl/strings/str_cat.h"
#include "ops/op_families.h"
#include "ops/rope.h"

namespace kiln {

absl::StatusOr<RopeParams> ResolveRope(const ParamContext& ctx) {
  if (absl::Status st = ctx.CheckWithSchema(); !st.ok()) return st;
  const TensorLayout& x = ctx.input(kRopeX);
  const TensorLayout& pos = ctx.input(kRopePositions);
  if (!x.present || x.rank != 4) return ctx.InputError(kRopeX, "must be [B, T, H, D] (rank 4)");
  if (!pos.present || pos.rank < 1 || pos.rank > 2) {
    return ctx.InputError(kRopePositions, "must be [T] or [B, T]");
  }
  const Node& node = ctx.node();
  RopeParams p;
  p.B = x.dims[0], p.T = x.dims[1], p.H = x.dims[2], p.D = x.dims[3];
  p.rotary_dim = RopeRotaryDim(node, p.D);
  p.half = p.rotary_dim / 2;
  p.theta = node.GetFloat("theta");
  p.interleaved = RopeInterleaved(node);
  p.positions_per_batch = pos.rank == 2;
  p.x = x;
  p.positions = pos;
  p.out = ctx.has_outputs() ? ctx.output(0) : LayoutOf(x.dtype, absl::MakeConstSpan(x.dims.data(), x.rank));
  return p;
}

absl::StatusOr<RopeParams> ResolveRope(const Graph& graph, const Node& node) {
  return ResolveRope(ParamContext(graph, node));
}

absl::StatusOr<RopeParams> ResolveRope(const Node& node, absl::Span<const TensorView> inputs,
                            absl::Span<const TensorView> outputs) {
  return ResolveRope(ParamContext(node, inputs, outputs));
}

namespace {

absl::Status InferRope(InferContext& ctx) {
  const TensorType& x = *ctx.input(kRopeX);
  const TensorType& pos = *ctx.input(kRopePositions);
  if (x.dims.size() != 4) return ctx.InputError(kRopeX, "must be [B, T, H, D] (rank 4)");
  if (!IsFloat(x.dtype)) return ctx.InputError(kRopeX, "must be f32, f16 or bf16");
  const int64_t B = x.dims[0], T = x.dims[1], D = x.dims[3];
  if (pos.dtype != DType::kI32) return ctx.InputError(kRopePositions, "must be i32");
  const bool per_token = pos.dims.size() == 1 && pos.dims[0] == T;
  const bool per_batch = pos.dims.size() == 2 && pos.dims[0] == B && pos.dims[1] == T;
  if (!per_token && !per_batch) {
    return ctx.InputError(kRopePositions,
                          absl::StrCat("must be [T] = [", T, "] or [B, T] = [", B, ",", T, "]"));
  }
  const double theta = ctx.node().GetFloat("theta");
  if (!(theta > 0) || !std::isfinite(theta)) {
    return ctx.Error(absl::StrCat("attribute 'theta' must be finite and > 0, got ", theta));
  }
  const int64_t rd = RopeRotaryDim(ctx.node(), D);
  if (rd % 2 != 0 || rd > D) {
    return ctx.Error(absl::StrCat("rotary_dim ", rd, " must be even and at most the head dim D = ",
                                  D, " of input 'x'"));
  }
  ctx.outputs = {{x.dtype, x.dims}};
  return absl::OkStatus();
}

absl::Status RopeReference(const Node& node, absl::Span<const TensorView> in,
                           absl::Span<const TensorView> out) {
  const TensorView& x = in[kRopeX];
  const TensorView& pos = in[kRopePositions];
  const TensorView& y = out[0];
  auto params = ResolveRope(node, in, out);
  if (!params.ok()) return params.status();
  const RopeParams& prm = *params;
  const int64_t D = prm.D;
  const int64_t rd = prm.rotary_dim;
  const int64_t half = prm.half;
  const bool interleaved = prm.interleaved;
  const double theta = prm.theta;
  std::vector<double> row(D);
  ForEachIndex(3, x.dims, [&](const int64_t* bth) {
    const int64_t b = bth[0], t = bth[1];
    const int64_t bt[2] = {b, t};  // positions is [B,T], or [T] read at &bt[1]
    const double p = LoadElement(pos, pos.rank == 2 ? bt : &bt[1]);
    int64_t idx[4] = {bth[0], bth[1], bth[2], 0};
    for (idx[3] = 0; idx[3] < D; ++idx[3]) row[idx[3]] = LoadElement(x, idx);
    for (int64_t i = 0; i < half; ++i) {
      const double angle = p * RopeInvFreq(theta, i, rd);
      const double c = std::cos(angle), s = std::sin(angle);
      const int64_t a = interleaved ? 2 * i : i;
      const int64_t b2 = interleaved ? 2 * i + 1 : i + half;
      const double xa = row[a], xb = row[b2];
      row[a] = xa * c - xb * s;
      row[b2] = xa * s + xb * c;
    }
    for (idx[3] = 0; idx[3] < D; ++idx[3]) StoreElement(y, idx, row[idx[3]]);
  });
  return absl::OkStatus();
}

}  // namespace

void RegisterRopeOps(std::vector<OpSchema>& ops) {
  ops.push_back(OpSchema{
      .name = "rope",
      .inputs = {{"x"}, {"positions"}},
      .outputs = {"out"},
      .attrs = {{.name = "theta", .type = AttrType::kFloat, .default_value = 10000.0},
                {.name = "rotary_dim", .type = AttrType::kInt, .default_value = int64_t{0},
                 .min = 0},
                {.name = "mode", .type = AttrType::kString, .default_value = std::string("neox"),
                 .choices = {"neox", "interleaved"}}},
      .infer = InferRope,
      .reference = RopeReference,
  });
}

}  // namespace kiln
