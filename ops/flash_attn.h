// flash_attn: what backends need besides the schema (see shared OPS.md).
//   inputs  q [B,Sq,Hq,Dk], k [B,Skv,Hkv,Dk], v [B,Skv,Hkv,Dv],
//           mask? [Bm,Hm,Sq,Skv] (Bm in {1,B}, Hm in {1,Hq}), sinks? [Hq]
//   output  out [B,Sq,Hq,Dv] (attr out_dtype, default f32)
//   attrs   scale (0 = 1/sqrt(Dk)), softcap (0 = off), max_bias (0 = off),
//           causal, out_dtype
#pragma once

#include <cstdint>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "graph/graph.h"
#include "graph/tensor_view.h"
#include "ops/attention_scale.h"  // EffectiveScale(node, Dk)
#include "ops/op_params.h"

namespace kiln {

// Input and output indices of a flash_attn node.
inline constexpr int kFlashAttnQ = 0;
inline constexpr int kFlashAttnK = 1;
inline constexpr int kFlashAttnV = 2;
inline constexpr int kFlashAttnMask = 3;   // optional
inline constexpr int kFlashAttnSinks = 4;  // optional
inline constexpr int kFlashAttnOut = 0;

// ALiBi slope of query head h (of Hq): 1 when max_bias == 0; otherwise, with
// n = 2^floor(log2 Hq): (2^(-max_bias/n))^(h+1) for h < n, else
// (2^(-max_bias/(2n)))^(2(h-n)+1).
double AlibiSlope(int64_t h, int64_t num_q_heads, double max_bias);

// The KV head query head h reads: consecutive query heads share a KV head.
inline int64_t FlashAttnKvHead(int64_t h, int64_t num_q_heads, int64_t num_kv_heads) {
  return h / (num_q_heads / num_kv_heads);
}

// Causal masking for query row i of Sq and key j of Skv: the queries are the
// last Sq of the Skv positions.
inline bool CausalMasked(int64_t i, int64_t j, int64_t sq, int64_t skv) {
  return j > i + (skv - sq);
}

// Everything a backend needs of a flash_attn node, resolved once (shapes,
// dtypes, attributes with their defaults, broadcast dims, strides), with the
// node's checks. Every backend reads this instead of the node.
struct FlashAttnParams {
  int64_t B = 0, Sq = 0, Skv = 0, Hq = 0, Hkv = 0, Dk = 0, Dv = 0;
  int64_t gqa = 1;  // Hq / Hkv: query head h reads KV head h / gqa
  bool has_mask = false, has_sinks = false, causal = false;
  // The mask's broadcast dims: mask_b in {1, B}, mask_h in {1, Hq} (mask
  // index [b % mask_b, h % mask_h, i, j]); 0 without a mask.
  int64_t mask_b = 0, mask_h = 0;
  double scale = 1;     // the attribute, or 1/sqrt(Dk) when it is 0
  double softcap = 0;   // 0 = off
  double max_bias = 0;  // 0 = off (no ALiBi; then slope(h) == 1)
  // ALiBi in closed form (what a shader computes per head): n = 2^floor(log2
  // Hq), m0 = 2^(-max_bias/n), m1 = 2^(-max_bias/(2n)); slope(h) = m0^(h+1)
  // for h < n, else m1^(2(h-n)+1). n = 0 and m0 = m1 = 1 without ALiBi.
  int64_t alibi_n = 0;
  double alibi_m0 = 1, alibi_m1 = 1;
  // Operands: q [B,Sq,Hq,Dk], k [B,Skv,Hkv,Dk], v [B,Skv,Hkv,Dv],
  // mask [mask_b,mask_h,Sq,Skv], sinks [Hq] (f32), out [B,Sq,Hq,Dv]. Absent
  // ones have present == false. Dtypes: q.dtype, k.dtype, ...
  TensorLayout q, k, v, mask, sinks, out;

  int64_t kv_head(int64_t h) const { return h / gqa; }
  double slope(int64_t h) const { return AlibiSlope(h, Hq, max_bias); }
};

// Resolves and checks a flash_attn node of a graph (a backend's supports() or
// Prepare): layouts carry view offsets and storage ids.
absl::StatusOr<FlashAttnParams> ResolveFlashAttn(const Graph& graph, const Node& node);
// The same from kernel views (the reference, CPU kernels: once per call).
absl::StatusOr<FlashAttnParams> ResolveFlashAttn(const Node& node,
                                                 absl::Span<const TensorView> inputs,
                                                 absl::Span<const TensorView> outputs);
// The same from any ParamContext (inference uses this).
absl::StatusOr<FlashAttnParams> ResolveFlashAttn(const ParamContext& ctx);

}  // namespace kiln
