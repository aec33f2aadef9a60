// gated_delta_net: schema, inference and the reference, exactly as shared
// OPS.md defines them: the token-by-token recurrence in f64 (backends may use
// a chunked algorithm; this is what they must match).
#include "ops/gated_delta_net.h"

#include <cmath>
#include <limits>
#include <initializer_list>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "ops/op_families.h"

namespace kiln {

GdnHeadMap GdnHeadMapOf(const Node& node) {
  return node.GetString("head_map") == "tiled" ? GdnHeadMap::kTiled : GdnHeadMap::kGrouped;
}

namespace {

bool SameDims(const TensorLayout& l, std::initializer_list<int64_t> dims) {
  if (l.rank != static_cast<int>(dims.size())) return false;
  int i = 0;
  for (int64_t d : dims) {
    if (l.dims[i++] != d) return false;
  }
  return true;
}

std::string Dims(std::initializer_list<int64_t> dims) { return ShapeString(std::vector<int64_t>(dims)); }

}  // namespace

absl::StatusOr<GdnParams> ResolveGatedDeltaNet(const ParamContext& ctx) {
  if (!ctx.status().ok()) return ctx.status();
  const TensorLayout& q = ctx.input(kGdnQ);
  const TensorLayout& k = ctx.input(kGdnK);
  const TensorLayout& v = ctx.input(kGdnV);
  const TensorLayout& g = ctx.input(kGdnG);
  const TensorLayout& beta = ctx.input(kGdnBeta);
  const TensorLayout& state = ctx.input(kGdnState);
  if (!q.present || !k.present || !v.present || !g.present || !beta.present) {
    return ctx.Error("needs inputs q, k, v, g and beta");
  }

  if (q.rank != 4) return ctx.InputError(kGdnQ, "must be [B,T,Hk,K]");
  if (!IsFloat(q.dtype)) return ctx.InputError(kGdnQ, "must be f32, f16 or bf16");
  const int64_t B = q.dims[0], T = q.dims[1], Hk = q.dims[2], K = q.dims[3];
  if (Hk < 1 || K < 1) return ctx.InputError(kGdnQ, "needs Hk >= 1 and K >= 1");

  if (!SameDims(k, {B, T, Hk, K}) || k.dtype != q.dtype) {
    return ctx.InputError(kGdnK, absl::StrCat("must have q's dtype and shape: ",
                                              DTypeName(q.dtype), " ", Dims({B, T, Hk, K})));
  }

  if (v.rank != 4) return ctx.InputError(kGdnV, "must be [B,T,Hv,V]");
  if (!IsFloat(v.dtype)) return ctx.InputError(kGdnV, "must be f32, f16 or bf16");
  const int64_t Hv = v.dims[2], V = v.dims[3];
  if (v.dims[0] != B || v.dims[1] != T) {
    return ctx.InputError(kGdnV, absl::StrCat("must be [B,T,Hv,V] with B=", B, " and T=", T,
                                              " as in q"));
  }
  if (V < 1) return ctx.InputError(kGdnV, "needs V >= 1");
  if (Hv < 1 || Hv % Hk != 0) {
    return ctx.InputError(kGdnV, absl::StrCat("its ", Hv, " heads must be a multiple of the ",
                                              Hk, " q/k heads (Hv % Hk == 0)"));
  }

  if (g.dtype != DType::kF32) return ctx.InputError(kGdnG, "must be f32");
  const bool gda = SameDims(g, {B, T, Hv}), kda = SameDims(g, {B, T, Hv, K});
  if (!gda && !kda) {
    return ctx.InputError(kGdnG, absl::StrCat("must be ", Dims({B, T, Hv}), " (GDA) or ",
                                              Dims({B, T, Hv, K}), " (KDA)"));
  }
  if (beta.dtype != DType::kF32 || !SameDims(beta, {B, T, Hv})) {
    return ctx.InputError(kGdnBeta, absl::StrCat("must be f32 ", Dims({B, T, Hv})));
  }
  if (state.present && (state.dtype != DType::kF32 || !SameDims(state, {B, Hv, K, V}))) {
    return ctx.InputError(kGdnState, absl::StrCat("must be f32 ", Dims({B, Hv, K, V})));
  }
  const int64_t out_dims[4] = {B, T, Hv, V}, state_dims[4] = {B, Hv, K, V};
  if (auto st = CheckOutput(ctx, kGdnOut, v.dtype, out_dims); !st.ok()) return st;
  if (auto st = CheckOutput(ctx, kGdnFinalState, DType::kF32, state_dims); !st.ok()) return st;

  const Node& node = ctx.node();
  GdnParams p;
  p.B = B, p.T = T, p.Hk = Hk, p.Hv = Hv, p.K = K, p.V = V;
  p.group = Hv / Hk;
  p.kda = kda;
  p.head_map = GdnHeadMapOf(node);
  p.scale = EffectiveScale(node, K);
  p.l2norm_qk = node.GetBool("l2norm_qk");
  p.has_state = state.present;
  p.q = q, p.k = k, p.v = v, p.g = g, p.beta = beta, p.state = state;
  p.out = ctx.has_outputs() ? ctx.output(kGdnOut) : LayoutOf(v.dtype, out_dims);
  p.final_state =
      ctx.has_outputs() ? ctx.output(kGdnFinalState) : LayoutOf(DType::kF32, state_dims);
  return p;
}

absl::StatusOr<GdnParams> ResolveGatedDeltaNet(const Graph& graph, const Node& node) {
  return ResolveGatedDeltaNet(ParamContext(graph, node));
}

absl::StatusOr<GdnParams> ResolveGatedDeltaNet(const Node& node,
                                               absl::Span<const TensorView> inputs,
                                               absl::Span<const TensorView> outputs) {
  return ResolveGatedDeltaNet(ParamContext(node, inputs, outputs));
}

namespace {

// A node may list fewer inputs than the schema when trailing optional ones
// are absent; those read as absent views.
TensorView OptionalInput(absl::Span<const TensorView> inputs, int i) {
  return i < static_cast<int>(inputs.size()) ? inputs[i] : TensorView{};
}

absl::Status InferGatedDeltaNet(InferContext& ctx) {
  auto p = ResolveGatedDeltaNet(ParamContext(ctx));
  if (!p.ok()) return p.status();
  ctx.outputs = {TensorType{p->v.dtype, {p->B, p->T, p->Hv, p->V}},
                 TensorType{DType::kF32, {p->B, p->Hv, p->K, p->V}}};
  return absl::OkStatus();
}

// Row x (K values of q or k at [b,t,kh,:]) as doubles, l2-normalized if asked.
std::vector<double> LoadKeyRow(const TensorView& x, int64_t b, int64_t t, int64_t kh,
                               bool l2norm) {
  const int64_t K = x.dim(3);
  std::vector<double> row(K);
  double sumsq = 0;
  for (int64_t i = 0; i < K; ++i) {
    const int64_t idx[4] = {b, t, kh, i};
    row[i] = LoadElement(x, idx);
    sumsq += row[i] * row[i];
  }
  if (l2norm) {
    const double inv = 1.0 / std::sqrt(sumsq + kGdnL2Eps);
    for (double& r : row) r *= inv;
  }
  return row;
}

absl::Status ReferenceGatedDeltaNet(const Node& node, absl::Span<const TensorView> inputs,
                                    absl::Span<const TensorView> outputs) {
  const TensorView& q = inputs[kGdnQ];
  const TensorView& k = inputs[kGdnK];
  const TensorView& v = inputs[kGdnV];
  const TensorView& g = inputs[kGdnG];
  const TensorView& beta = inputs[kGdnBeta];
  const TensorView state = OptionalInput(inputs, kGdnState);
  const TensorView& out = outputs[kGdnOut];
  const TensorView& final_state = outputs[kGdnFinalState];

  auto params = ResolveGatedDeltaNet(node, inputs, outputs);
  if (!params.ok()) return params.status();
  const GdnParams& p = *params;
  const int64_t B = p.B, T = p.T, K = p.K, Hv = p.Hv, V = p.V;
  const double scale = p.scale;
  const bool l2norm = p.l2norm_qk;
  const bool kda = p.kda;

  std::vector<double> S(K * V);  // S[i * V + j]: key index i, value index j
  std::vector<double> u(V), d(V);
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t hv = 0; hv < Hv; ++hv) {
      const int64_t kh = p.key_head(hv);
      // The whole (b,hv) state is read before final_state[b,hv] is written,
      // so final_state may alias state.
      for (int64_t i = 0; i < K; ++i) {
        for (int64_t j = 0; j < V; ++j) {
          const int64_t si[4] = {b, hv, i, j};
          S[i * V + j] = state.present() ? LoadElement(state, si) : 0.0;
        }
      }

      for (int64_t t = 0; t < T; ++t) {
        const std::vector<double> qr = LoadKeyRow(q, b, t, kh, l2norm);
        const std::vector<double> kr = LoadKeyRow(k, b, t, kh, l2norm);
        const int64_t bi[3] = {b, t, hv};
        const double bt = LoadElement(beta, bi);

        // Decay: S = exp(g) * S (GDA), or each key row i by exp(g[i]) (KDA).
        for (int64_t i = 0; i < K; ++i) {
          const int64_t gi[4] = {b, t, hv, i};
          const double decay = std::exp(LoadElement(g, kda ? gi : bi));
          for (int64_t j = 0; j < V; ++j) S[i * V + j] *= decay;
        }
        // Delta rule: d = beta * (v - S^T k); S += k d^T.
        for (int64_t j = 0; j < V; ++j) {
          u[j] = 0;
          for (int64_t i = 0; i < K; ++i) u[j] += S[i * V + j] * kr[i];
          const int64_t vi[4] = {b, t, hv, j};
          d[j] = bt * (LoadElement(v, vi) - u[j]);
        }
        for (int64_t i = 0; i < K; ++i) {
          for (int64_t j = 0; j < V; ++j) S[i * V + j] += kr[i] * d[j];
        }
        // out = scale * S^T q.
        for (int64_t j = 0; j < V; ++j) {
          double o = 0;
          for (int64_t i = 0; i < K; ++i) o += S[i * V + j] * qr[i];
          const int64_t oi[4] = {b, t, hv, j};
          StoreElement(out, oi, scale * o);
        }
      }

      for (int64_t i = 0; i < K; ++i) {
        for (int64_t j = 0; j < V; ++j) {
          const int64_t si[4] = {b, hv, i, j};
          StoreElement(final_state, si, S[i * V + j]);
        }
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace

void RegisterGatedDeltaNetOps(std::vector<OpSchema>& ops) {
  constexpr double kFiniteMax = std::numeric_limits<double>::max();  // rejects inf
  OpSchema s;
  s.name = "gated_delta_net";
  s.inputs = {{"q"}, {"k"}, {"v"}, {"g"}, {"beta"}, {"state", true}};
  s.outputs = {"out", "final_state"};
  s.attrs = {
      {"scale", AttrType::kFloat, AttrValue(0.0), 0.0, kFiniteMax},
      {"l2norm_qk", AttrType::kBool, AttrValue(false)},
      {"head_map", AttrType::kString, AttrValue(std::string("grouped")), -kFiniteMax, kFiniteMax,
       {"grouped", "tiled"}},
  };
  s.infer = InferGatedDeltaNet;
  s.reference = ReferenceGatedDeltaNet;
  s.tolerance = kReductionTolerance;
  s.inplace = {{kGdnState, kGdnFinalState}};
  ops.push_back(std::move(s));
}

}  // namespace kiln
