#version 450
// Flash attention for few query rows (decode), one workgroup per (batch,
// KV head, query row, group of G query heads, KV split). LPK lanes hold one
// key: each lane reads NCH runs of 8 contiguous K and V elements as 16-byte
// vectors, the dot product is summed across the LPK lanes by subgroup
// shuffles, and each group of lanes keeps its own online softmax (m, l,
// acc) in registers for its keys: no shared memory and no barrier in the
// key loop. The G heads that share the KV head use each K/V vector once.
// Keys go in chunks of WG (one per invocation): the chunk's bias (mask *
// slope, causal) is computed first, and a chunk with no finite bias for
// any of the G heads is skipped without reading its K/V. The key groups'
// states are merged through shared memory at the end. Masked keys get
// p = 0 and their V is never multiplied in, so NaN there cannot leak.
// SPLIT: write (m, l, acc) partials for flash_attn_merge.comp.
#extension GL_KHR_shader_subgroup_shuffle : require
#include "common.glsl"
layout(local_size_x_id = 0) in;
layout(constant_id = 0) const int WG = 128;
layout(constant_id = 1) const int LPK = 16;  // lanes per key: a power of 2 <= the subgroup size
// 8-element runs per lane: D <= 8 * LPK * NCH; runs past D are not read
// (a lane holds zeros there), so any D that is a multiple of 8.
layout(constant_id = 2) const int NCH = 1;
layout(constant_id = 3) const int DTQ = 0;
layout(constant_id = 4) const int DTK = 0;
layout(constant_id = 5) const int DTV = 0;
layout(constant_id = 6) const int HAS_MASK = 0;
layout(constant_id = 7) const int DTM = 0;
layout(constant_id = 8) const int HAS_SINKS = 0;
layout(constant_id = 9) const int SOFTCAP = 0;
layout(constant_id = 10) const int ALIBI = 0;
layout(constant_id = 11) const int CAUSAL = 0;
layout(constant_id = 12) const int DTO = 0;
layout(constant_id = 13) const int G = 1;
layout(constant_id = 14) const int SPLIT = 0;
// GENERIC: dtypes, flags and G read from params 50..60 (G <= GMAX).
layout(constant_id = 15) const int GENERIC = 0;
const int GMAX = GENERIC != 0 ? 4 : G;
const int KPI = WG / LPK;  // key groups per workgroup
const int E = 8 * NCH;     // elements per lane
#define DT_Q (GENERIC != 0 ? int(P(50)) : DTQ)
#define DT_K (GENERIC != 0 ? int(P(51)) : DTK)
#define DT_V (GENERIC != 0 ? int(P(52)) : DTV)
#define F_MASK (GENERIC != 0 ? int(P(53)) : HAS_MASK)
#define DT_M (GENERIC != 0 ? int(P(54)) : DTM)
#define F_SINKS (GENERIC != 0 ? int(P(55)) : HAS_SINKS)
#define F_SOFTCAP (GENERIC != 0 ? int(P(56)) : SOFTCAP)
#define F_ALIBI (GENERIC != 0 ? int(P(57)) : ALIBI)
#define F_CAUSAL (GENERIC != 0 ? int(P(58)) : CAUSAL)
#define DT_O (GENERIC != 0 ? int(P(59)) : DTO)
#define G_ (GENERIC != 0 ? int(P(60)) : G)

DECLARE_SLOT(0, Q)
DECLARE_SLOT(1, K)
DECLARE_SLOT(2, V)
DECLARE_SLOT(3, Mk)
DECLARE_SLOT(4, Sk)
DECLARE_SLOT(5, O)

// params: 1 B, 2 Sq, 3 Skv, 4 Hq, 5 Hkv, 6 scale, 7 softcap, 11 splits, 12 keys per split,
//         13 q T, 18 k T, 23 v T, 28 mask T, 33 out T, 38 sinks off, 39 head groups per KV head,
//         50..60 generic dtypes/flags, 61 head dim D, 64.. ALiBi slope per query head
shared float bias_s[GMAX * WG];
shared uint any_live;
// The upper half of the key groups' (m, l, acc) at each step of the merge.
const int RED = KPI / 2 > 0 ? KPI / 2 : 1;
shared float red_acc[RED * GMAX * 8 * LPK * NCH];
shared float red_ml[RED * GMAX * 2];

#define NINF uintBitsToFloat(0xff800000u)

// 8 elements at element index o (a multiple of 8; f32: of 4) of slot N,
// loaded raw (f32: two vectors) and unpacked to f32 later, so that a key
// group's loads for UNR keys are all in flight before the first use.
#define RAW8(N, DT, o, r0, r1) { \
    if ((DT) == DT_F32) { r0 = N##_v4[(o) >> 2]; r1 = N##_v4[((o) >> 2) + 1u]; } \
    else { r0 = N##_v4[(o) >> 3]; r1 = uvec4(0u); } }
#define UNPACK8(DT, r0, r1, dst, at) { \
    if ((DT) == DT_F32) { \
      for (int j_ = 0; j_ < 4; ++j_) { dst[at + j_] = uintBitsToFloat(r0[j_]); dst[at + 4 + j_] = uintBitsToFloat(r1[j_]); } \
    } else { \
      for (int j_ = 0; j_ < 4; ++j_) { \
        if ((DT) == DT_F16) { const vec2 h_ = unpackHalf2x16(r0[j_]); dst[at + 2 * j_] = h_.x; dst[at + 2 * j_ + 1] = h_.y; } \
        else { dst[at + 2 * j_] = uintBitsToFloat(r0[j_] << 16); dst[at + 2 * j_ + 1] = uintBitsToFloat(r0[j_] & 0xffff0000u); } \
      } \
    } }
// UNR: keys per pass of a key group (their K and V loads all in flight).
layout(constant_id = 16) const int UNR = 4;

void main() {
  const uint Sq = P(2), Skv = P(3), Hq = P(4), Hkv = P(5);
  const uint groups = P(39);
  const uint hg = gl_WorkGroupID.x % groups, i = gl_WorkGroupID.x / groups;
  const uint kvh = gl_WorkGroupID.y;
  const uint b = gl_WorkGroupID.z / P(11), split = gl_WorkGroupID.z % P(11);
  const uint h0 = kvh * (Hq / Hkv) + hg * uint(G_);
  const uint t = gl_LocalInvocationID.x;
  const uint lane = t % uint(LPK), slot = t / uint(LPK);
  const float scale = PF(6), softcap = PF(7);
  const uint Dh = P(61);

  float q[GMAX][E];
  float acc[GMAX][E];
  float m[GMAX], l[GMAX];
  for (int g = 0; g < GMAX; ++g) {
    m[g] = NINF;
    l[g] = 0.0;
    for (int e = 0; e < E; ++e) {
      acc[g][e] = 0.0;
      q[g][e] = 0.0;
      const uint d = (uint(e / 8) * uint(LPK) + lane) * 8u + uint(e % 8);
      if (g < G_ && d < Dh) {
        const uint o = P(13) + b * P(14) + i * P(15) + (h0 + uint(g)) * P(16) + d;
        q[g][e] = LOADF(Q, DT_Q, o) * scale;
      }
    }
  }

  const uint k_begin = split * P(12);
  const uint k_end = min(Skv, k_begin + P(12));
  for (uint j0 = k_begin; j0 < k_end; j0 += uint(WG)) {
    barrier();  // the previous chunk is done with bias_s
    if (t == 0u) any_live = 0u;
    barrier();
    {
      const uint j = j0 + t;
      bool live = false;
      for (int g = 0; g < GMAX; ++g) {
        float bias = NINF;
        if (g < G_ && j < k_end) {
          const uint h = h0 + uint(g);
          bias = 0.0;
          if (F_CAUSAL != 0 && j > i + (Skv - Sq)) bias = NINF;
          else if (F_MASK != 0) {
            const float mv = LOADF(Mk, DT_M, P(28) + b * P(29) + h * P(30) + i * P(31) + j * P(32));
            bias = mv == NINF ? NINF : (F_ALIBI != 0 ? PF(64u + h) : 1.0) * mv;
          }
        }
        bias_s[g * WG + int(t)] = bias;
        live = live || bias != NINF;
      }
      if (live) any_live = 1u;
    }
    barrier();
    if (any_live == 0u) continue;  // uniform: no head sees a key of this chunk
    // Key groups take the chunk's keys in turn, UNR at a time; a key past
    // the end (or past the chunk) is read clamped and has bias -inf.
    for (uint c0 = slot; c0 < uint(WG); c0 += uint(KPI * UNR)) {
      uvec4 kr[UNR][2 * NCH], vr[UNR][2 * NCH];
      for (int u = 0; u < UNR; ++u) {
        const uint c = min(c0 + uint(u * KPI), uint(WG) - 1u);
        const uint j = min(j0 + c, k_end - 1u);
        const uint kb = P(18) + b * P(19) + j * P(20) + kvh * P(21);
        const uint vb = P(23) + b * P(24) + j * P(25) + kvh * P(26);
        for (int ch = 0; ch < NCH; ++ch) {
          const uint d = (uint(ch) * uint(LPK) + lane) * 8u;
          kr[u][2 * ch] = kr[u][2 * ch + 1] = vr[u][2 * ch] = vr[u][2 * ch + 1] = uvec4(0u);
          if (d < Dh) {
            RAW8(K, DT_K, kb + d, kr[u][2 * ch], kr[u][2 * ch + 1]);
            RAW8(V, DT_V, vb + d, vr[u][2 * ch], vr[u][2 * ch + 1]);
          }
        }
      }
      for (int u = 0; u < UNR; ++u) {
        const uint c = c0 + uint(u * KPI);
        const bool in_chunk = c < uint(WG);
        float kf[E], vf[E];
        for (int ch = 0; ch < NCH; ++ch) {
          UNPACK8(DT_K, kr[u][2 * ch], kr[u][2 * ch + 1], kf, ch * 8);
          UNPACK8(DT_V, vr[u][2 * ch], vr[u][2 * ch + 1], vf, ch * 8);
        }
        for (int g = 0; g < GMAX; ++g) {
          if (g >= G_) break;
          float s = 0.0;
          for (int e = 0; e < E; ++e) s = fma(q[g][e], kf[e], s);
          for (int w = 1; w < LPK; w *= 2) s += subgroupShuffleXor(s, uint(w));
          const float bias = in_chunk ? bias_s[g * WG + int(c)] : NINF;
          if (bias == NINF) continue;  // the same for every lane of the key
          if (F_SOFTCAP != 0) s = softcap * tanh(s / softcap);
          s += bias;
          const float mx = max(m[g], s);
          const float alpha = exp(m[g] - mx);  // m = -inf: 0
          const float p = exp(s - mx);
          l[g] = l[g] * alpha + p;
          m[g] = mx;
          if (p != 0.0) {
            for (int e = 0; e < E; ++e) acc[g][e] = fma(p, vf[e], acc[g][e] * alpha);
          } else {
            for (int e = 0; e < E; ++e) acc[g][e] *= alpha;
          }
        }
      }
    }
  }

  // Merge the key groups: at each step the upper half hands its state to
  // the lower half through shared memory.
  for (int hw = KPI / 2; hw >= 1; hw /= 2) {
    barrier();
    if (slot >= uint(hw) && slot < uint(2 * hw)) {
      const uint r = slot - uint(hw);
      for (int g = 0; g < GMAX; ++g) {
        if (lane == 0u) {
          red_ml[(r * uint(GMAX) + uint(g)) * 2u] = m[g];
          red_ml[(r * uint(GMAX) + uint(g)) * 2u + 1u] = l[g];
        }
        for (int e = 0; e < E; ++e) red_acc[((r * uint(GMAX) + uint(g)) * uint(LPK) + lane) * uint(E) + uint(e)] = acc[g][e];
      }
    }
    barrier();
    if (slot < uint(hw)) {
      for (int g = 0; g < GMAX; ++g) {
        const float m2 = red_ml[(slot * uint(GMAX) + uint(g)) * 2u];
        const float l2 = red_ml[(slot * uint(GMAX) + uint(g)) * 2u + 1u];
        const float mx = max(m[g], m2);
        if (mx == NINF) continue;
        const float a1 = exp(m[g] - mx), a2 = exp(m2 - mx);
        l[g] = l[g] * a1 + l2 * a2;
        m[g] = mx;
        for (int e = 0; e < E; ++e) {
          const float v2 = red_acc[((slot * uint(GMAX) + uint(g)) * uint(LPK) + lane) * uint(E) + uint(e)];
          acc[g][e] = acc[g][e] * a1 + (a2 != 0.0 ? v2 * a2 : 0.0);
        }
      }
    }
  }
  if (slot != 0u) return;

  const uint Dv = Dh;
  for (int g = 0; g < GMAX; ++g) {
    if (g >= G_) break;
    const uint h = h0 + uint(g);
    float mm = m[g], ll = l[g];
    if (SPLIT != 0) {
      // Partials [b][h][i][split] of (m, l, acc[Dv]).
      const uint rec = (((b * Hq + h) * Sq + i) * P(11) + split) * (Dv + 2u);
      if (lane == 0u) { O_f[rec] = mm; O_f[rec + 1u] = ll; }
      for (int e = 0; e < E; ++e) {
        const uint d = (uint(e / 8) * uint(LPK) + lane) * 8u + uint(e % 8);
        if (d < Dv) O_f[rec + 2u + d] = acc[g][e];
      }
      continue;
    }
    float f = 1.0;
    if (F_SINKS != 0) {
      const float sink = Sk_f[P(38) + h];
      const float M = max(mm, sink);
      f = mm == NINF ? 0.0 : exp(mm - M);
      ll = ll * f + exp(sink - M);
    }
    for (int e = 0; e < E; ++e) {
      const uint d = (uint(e / 8) * uint(LPK) + lane) * 8u + uint(e % 8);
      if (d >= Dv) continue;
      const float res = ll == 0.0 ? 0.0 : acc[g][e] * f / ll;
      const uint o = P(33) + b * P(34) + i * P(35) + h * P(36) + d;
      STOREF(O, DT_O, o, res);
    }
  }
}
