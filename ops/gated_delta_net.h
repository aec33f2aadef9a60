// gated_delta_net: what backends need besides the schema (see shared OPS.md).
//   inputs  q, k [B,T,Hk,K], v [B,T,Hv,V], g [B,T,Hv] (GDA) or [B,T,Hv,K]
//           (KDA), beta [B,T,Hv], state? [B,Hv,K,V]
//   outputs out [B,T,Hv,V] (dtype of v), final_state [B,Hv,K,V] f32
//   attrs   scale (0 = 1/sqrt(K)), l2norm_qk, head_map ("grouped" | "tiled")
// final_state may alias state (OpSchema.inplace {5, 1}).
#pragma once

#include <cstdint>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "graph/graph.h"
#include "graph/node.h"
#include "graph/tensor_view.h"
#include "ops/attention_scale.h"  // EffectiveScale(node, K)
#include "ops/op_params.h"

namespace kiln {

// Input and output indices of a gated_delta_net node.
inline constexpr int kGdnQ = 0;
inline constexpr int kGdnK = 1;
inline constexpr int kGdnV = 2;
inline constexpr int kGdnG = 3;
inline constexpr int kGdnBeta = 4;
inline constexpr int kGdnState = 5;  // optional
inline constexpr int kGdnOut = 0;
inline constexpr int kGdnFinalState = 1;

// l2norm_qk divides q and k rows by sqrt(sum x^2 + kGdnL2Eps).
inline constexpr double kGdnL2Eps = 1e-6;

enum class GdnHeadMap { kGrouped, kTiled };

// The node's head_map attribute.
GdnHeadMap GdnHeadMapOf(const Node& node);

// The q/k head that value head hv reads (Hv % Hk == 0):
// grouped: hv / (Hv/Hk) (consecutive value heads share a key head);
// tiled:   hv % Hk.
inline int64_t GdnKeyHead(int64_t hv, int64_t num_v_heads, int64_t num_k_heads,
                          GdnHeadMap map) {
  return map == GdnHeadMap::kGrouped ? hv / (num_v_heads / num_k_heads) : hv % num_k_heads;
}

// KDA (a per-key gate g [B,T,Hv,K]) rather than GDA (g [B,T,Hv]).
inline bool GdnIsKda(int g_rank) { return g_rank == 4; }

// Everything a backend needs of a gated_delta_net node, resolved once
// (shapes, dtypes, attributes with their defaults, GDA/KDA, strides), with the
// node's checks. Every backend reads this instead of the node.
struct GdnParams {
  int64_t B = 0, T = 0, Hk = 0, Hv = 0, K = 0, V = 0;
  int64_t group = 1;  // Hv / Hk: value heads per q/k head
  bool kda = false;   // per-key gate g [B,T,Hv,K] (KDA); else g [B,T,Hv] (GDA)
  GdnHeadMap head_map = GdnHeadMap::kGrouped;
  double scale = 1;   // the attribute, or 1/sqrt(K) when it is 0
  bool l2norm_qk = false;
  bool has_state = false;
  // Operands: q, k [B,T,Hk,K] (same dtype), v [B,T,Hv,V], g (f32), beta
  // [B,T,Hv] f32, state [B,Hv,K,V] f32 (absent: present == false), out
  // [B,T,Hv,V] (dtype of v), final_state [B,Hv,K,V] f32 (may alias state).
  TensorLayout q, k, v, g, beta, state, out, final_state;

  int64_t key_head(int64_t hv) const { return GdnKeyHead(hv, Hv, Hk, head_map); }
};

// Resolves and checks a gated_delta_net node of a graph (a backend's
// supports() or Prepare): layouts carry view offsets and storage ids.
absl::StatusOr<GdnParams> ResolveGatedDeltaNet(const Graph& graph, const Node& node);
// The same from kernel views (the reference, CPU kernels: once per call).
absl::StatusOr<GdnParams> ResolveGatedDeltaNet(const Node& node,
                                               absl::Span<const TensorView> inputs,
                                               absl::Span<const TensorView> outputs);
// The same from any ParamContext (inference uses this).
absl::StatusOr<GdnParams> ResolveGatedDeltaNet(const ParamContext& ctx);

}  // namespace kiln
