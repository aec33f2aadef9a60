// gated_delta_net: schema, inference and the reference, exactly as shared
// OPS.md defines them: the token-by-token recurrence in f64 (backends may use
// a chunked algorithm; this is what they must match).
#include "ops/gated_delta_net.h"

#include <cmath>
#include <limits>
#include <vector>

#include "absl/strings/str_cat.h"
#include "ops/op_families.h"

namespace kiln {

GdnHeadMap GdnHeadMapOf(const Node& node) {
  return node.GetString("head_map") == "tiled" ? GdnHeadMap::kTiled : GdnHeadMap::kGrouped;
}

namespace {

// A node may list fewer inputs than the schema when trailing optional ones
// are absent; those read as absent views.
TensorView OptionalInput(absl::Span<const TensorView> inputs, int i) {
  return i < static_cast<int>(inputs.size()) ? inputs[i] : TensorView{};
}

absl::Status InferGatedDeltaNet(InferContext& ctx) {
  const TensorType* q = ctx.input(kGdnQ);
  const TensorType* k = ctx.input(kGdnK);
  const TensorType* v = ctx.input(kGdnV);
  const TensorType* g = ctx.input(kGdnG);
  const TensorType* beta = ctx.input(kGdnBeta);
  const TensorType* state = ctx.input(kGdnState);

  if (q->dims.size() != 4) return ctx.InputError(kGdnQ, "must be [B,T,Hk,K]");
  if (!IsFloat(q->dtype)) return ctx.InputError(kGdnQ, "must be f32, f16 or bf16");
  const int64_t B = q->dims[0], T = q->dims[1], Hk = q->dims[2], K = q->dims[3];
  if (Hk < 1 || K < 1) return ctx.InputError(kGdnQ, "needs Hk >= 1 and K >= 1");

  if (k->dims != q->dims || k->dtype != q->dtype) {
    return ctx.InputError(kGdnK, absl::StrCat("must have q's dtype and shape: ",
                                              DTypeName(q->dtype), " ", ShapeString(q->dims)));
  }

  if (v->dims.size() != 4) return ctx.InputError(kGdnV, "must be [B,T,Hv,V]");
  if (!IsFloat(v->dtype)) return ctx.InputError(kGdnV, "must be f32, f16 or bf16");
  const int64_t Hv = v->dims[2], V = v->dims[3];
  if (v->dims[0] != B || v->dims[1] != T) {
    return ctx.InputError(kGdnV, absl::StrCat("must be [B,T,Hv,V] with B=", B, " and T=", T,
                                              " as in q"));
  }
  if (V < 1) return ctx.InputError(kGdnV, "needs V >= 1");
  if (Hv < 1 || Hv % Hk != 0) {
    return ctx.InputError(kGdnV, absl::StrCat("its ", Hv, " heads must be a multiple of the ",
                                              Hk, " q/k heads (Hv % Hk == 0)"));
  }

  const std::vector<int64_t> gda = {B, T, Hv}, kda = {B, T, Hv, K};
  if (g->dtype != DType::kF32) return ctx.InputError(kGdnG, "must be f32");
  if (g->dims != gda && g->dims != kda) {
    return ctx.InputError(kGdnG, absl::StrCat("must be ", ShapeString(gda), " (GDA) or ",
                                              ShapeString(kda), " (KDA)"));
  }
  if (beta->dtype != DType::kF32 || beta->dims != gda) {
    return ctx.InputError(kGdnBeta, absl::StrCat("must be f32 ", ShapeString(gda)));
  }

  const std::vector<int64_t> state_dims = {B, Hv, K, V};
  if (state != nullptr && (state->dtype != DType::kF32 || state->dims != state_dims)) {
    return ctx.InputError(kGdnState, absl::StrCat("must be f32 ", ShapeString(state_dims)));
  }

  ctx.outputs = {TensorType{v->dtype, {B, T, Hv, V}}, TensorType{DType::kF32, state_dims}};
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

  const int64_t B = q.dim(0), T = q.dim(1), Hk = q.dim(2), K = q.dim(3);
  const int64_t Hv = v.dim(2), V = v.dim(3);
  const double scale = EffectiveScale(node, K);
  const bool l2norm = node.GetBool("l2norm_qk");
  const GdnHeadMap map = GdnHeadMapOf(node);
  const bool kda = GdnIsKda(g.rank);

  std::vector<double> S(K * V);  // S[i * V + j]: key index i, value index j
  std::vector<double> u(V), d(V);
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t hv = 0; hv < Hv; ++hv) {
      const int64_t kh = GdnKeyHead(hv, Hv, Hk, map);
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
  s.inplace = {{kGdnState, kGdnFinalState}};
  ops.push_back(std::move(s));
}

}  // namespace kiln
