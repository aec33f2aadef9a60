// flash_attn: what backends need besides the schema (see shared OPS.md).
//   inputs  q [B,Sq,Hq,Dk], k [B,Skv,Hkv,Dk], v [B,Skv,Hkv,Dv],
//           mask? [Bm,Hm,Sq,Skv] (Bm in {1,B}, Hm in {1,Hq}), sinks? [Hq]
//   output  out [B,Sq,Hq,Dv] (attr out_dtype, default f32)
//   attrs   scale (0 = 1/sqrt(Dk)), softcap (0 = off), max_bias (0 = off),
//           causal, out_dtype
#pragma once

#include <cstdint>

#include "ops/attention_scale.h"  // EffectiveScale(node, Dk)

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

}  // namespace kiln
