#version 450
// Flash attention for few query rows (decode), one workgroup per (batch,
// KV head, query row, group of G query heads, KV split). The keys go in
// tiles of WG, one key per invocation:
//   1. its bias (mask * slope, causal) for the G heads; a tile with no live
//      key is skipped without reading its K/V (with a mask or causal);
//   2. its scores for the G heads from one read of its K row (UNR 16-byte
//      loads in flight, Q in shared memory): K read once for the G heads;
//   3. the tile's max per head (subgroup max, then across subgroups), one
//      rescale of the running state per tile, p = exp(s - M) to shared;
//   4. P*V: invocation (key group kg, vector vl) owns 8 output elements of
//      every head and sums the keys kg, kg + KG, ... of the tile (UNR V rows
//      in flight).
// Every invocation keeps the same running max M per head, so the key
// groups' sums add plainly at the end. A masked key has p = 0 and its K and
// V are never used (its K is not read), so NaN there cannot leak.
// SPLIT: write (m, l, acc) partials for flash_attn_merge.comp.
#include "common.glsl"
layout(local_size_x_id = 0) in;
layout(constant_id = 0) const int WG = 128;    // keys per tile
layout(constant_id = 1) const int DV8 = 16;    // D / 8 (0: from params, generic)
layout(constant_id = 2) const int DMAX8 = 16;  // D / 8 at most (shared memory)
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
layout(constant_id = 16) const int UNR = 8;  // 16-byte loads per invocation in flight
const int GMAX = GENERIC != 0 ? 4 : G;
const int DMAX = 8 * DMAX8;
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
shared vec4 q_s[GMAX * DMAX / 4];  // scaled Q rows
shared float p_s[GMAX * WG];       // the tile's p per head and key
shared float red_s[GMAX * 32];     // per subgroup: the tile's max per head
shared uint live_s[2 * 32];        // per subgroup: any live key (two tiles in turn)
shared float fin_s[8 * WG];        // the key groups' sums of one head
shared float finl_s[WG];

#define NINF uintBitsToFloat(0xff800000u)

// 8 elements at element index o (a multiple of 8; f32: of 4) of slot N,
// loaded raw (f32: two vectors) and unpacked to f32 later, so that several
// loads are in flight before the first use.
#define RAW8(N, DT, o, r0, r1) { \
    if ((DT) == DT_F32) { r0 = N##_v4[(o) >> 2]; r1 = N##_v4[((o) >> 2) + 1u]; } \
    else { r0 = N##_v4[(o) >> 3]; r1 = uvec4(0u); } }
#define UNPACK8(DT, r0, r1, dst) { \
    if ((DT) == DT_F32) { \
      for (int j_ = 0; j_ < 4; ++j_) { dst[j_] = uintBitsToFloat(r0[j_]); dst[4 + j_] = uintBitsToFloat(r1[j_]); } \
    } else { \
      for (int j_ = 0; j_ < 4; ++j_) { \
        if ((DT) == DT_F16) { const vec2 h_ = unpackHalf2x16(r0[j_]); dst[2 * j_] = h_.x; dst[2 * j_ + 1] = h_.y; } \
        else { dst[2 * j_] = uintBitsToFloat(r0[j_] << 16); dst[2 * j_ + 1] = uintBitsToFloat(r0[j_] & 0xffff0000u); } \
      } \
    } }

void main() {
  const uint Sq = P(2), Skv = P(3), Hq = P(4);
  const uint groups = P(39);
  const uint hg = gl_WorkGroupID.x % groups, i = gl_WorkGroupID.x / groups;
  const uint kvh = gl_WorkGroupID.y;
  const uint b = gl_WorkGroupID.z / P(11), split = gl_WorkGroupID.z % P(11);
  const uint h0 = kvh * (Hq / P(5)) + hg * uint(G_);
  const uint t = gl_LocalInvocationID.x;
  const float scale = PF(6), softcap = PF(7);
  const uint Dh = P(61);
  const uint nv = DV8 > 0 ? uint(DV8) : Dh / 8u;  // 8-element vectors per row
  // P*V: key group kg, vector vl of the output elements.
  const uint KG = uint(WG) / nv;
  const uint vl = t % nv, kg = t / nv;
  const bool pv = kg < KG;

  for (uint e = t; e < uint(G_) * Dh; e += uint(WG)) {
    const uint g = e / Dh, d = e % Dh;
    const uint o = P(13) + b * P(14) + i * P(15) + (h0 + g) * P(16) + d;
    const uint at = uint(g) * uint(DMAX) + d;
    q_s[at >> 2][at & 3u] = LOADF(Q, DT_Q, o) * scale;
  }
  float M[GMAX], l[GMAX], acc[GMAX][8];
  for (int g = 0; g < GMAX; ++g) {
    M[g] = NINF;
    l[g] = 0.0;
    for (int e = 0; e < 8; ++e) acc[g][e] = 0.0;
  }
  barrier();

  const uint k_begin = split * P(12);
  const uint k_end = min(Skv, k_begin + P(12));
  const uint sg = gl_SubgroupID, nsg = gl_NumSubgroups;
  uint turn = 0u;
  for (uint j0 = k_begin; j0 < k_end; j0 += uint(WG)) {
    const uint j = j0 + t;
    float bias[GMAX];
    bool live = false;
    for (int g = 0; g < GMAX; ++g) {
      bias[g] = NINF;
      if (g < G_ && j < k_end) {
        const uint h = h0 + uint(g);
        bias[g] = 0.0;
        if (F_CAUSAL != 0 && j > i + (Skv - Sq)) bias[g] = NINF;
        else if (F_MASK != 0) {
          const float mv = LOADF(Mk, DT_M, P(28) + b * P(29) + h * P(30) + i * P(31) + j * P(32));
          bias[g] = mv == NINF ? NINF : (F_ALIBI != 0 ? PF(64u + h) : 1.0) * mv;
        }
      }
      live = live || bias[g] != NINF;
    }
    if (F_MASK != 0 || F_CAUSAL != 0) {
      // Skip a tile no head sees (uniform: every invocation reads the same flags).
      const uint any = subgroupOr(live ? 1u : 0u);
      if (subgroupElect()) live_s[turn * 32u + sg] = any;
      barrier();
      uint n = 0u;
      for (uint s = 0u; s < nsg; ++s) n |= live_s[turn * 32u + s];
      turn ^= 1u;
      if (n == 0u) continue;
    }

    // 2. Scores of key j.
    float s[GMAX];
    for (int g = 0; g < GMAX; ++g) s[g] = 0.0;
    if (live) {
      const uint kb = P(18) + b * P(19) + j * P(20) + kvh * P(21);
      for (uint c0 = 0u; c0 < nv; c0 += uint(UNR)) {
        uvec4 kr[UNR][2];
        for (int u = 0; u < UNR; ++u) {
          kr[u][0] = kr[u][1] = uvec4(0u);
          if (c0 + uint(u) < nv) RAW8(K, DT_K, kb + (c0 + uint(u)) * 8u, kr[u][0], kr[u][1]);
        }
        for (int u = 0; u < UNR; ++u) {
          const uint c = c0 + uint(u);
          if (c >= nv) break;
          float kf[8];
          UNPACK8(DT_K, kr[u][0], kr[u][1], kf);
          const vec4 k0 = vec4(kf[0], kf[1], kf[2], kf[3]), k1 = vec4(kf[4], kf[5], kf[6], kf[7]);
          for (int g = 0; g < GMAX; ++g) {
            if (g >= G_) break;
            const uint at = (uint(g) * uint(DMAX) + c * 8u) >> 2;
            s[g] += dot(q_s[at], k0) + dot(q_s[at + 1u], k1);
          }
        }
      }
    }
    for (int g = 0; g < GMAX; ++g) {
      if (bias[g] == NINF) {
        s[g] = NINF;
      } else {
        if (F_SOFTCAP != 0) s[g] = softcap * tanh(s[g] / softcap);
        s[g] += bias[g];
      }
    }

    // 3. The tile's max per head, the rescale, p to shared memory.
    for (int g = 0; g < GMAX; ++g) {
      const float mx = subgroupMax(s[g]);
      if (subgroupElect()) red_s[uint(g) * 32u + sg] = mx;
    }
    barrier();
    for (int g = 0; g < GMAX; ++g) {
      if (g >= G_) break;
      float mx = NINF;
      for (uint q = 0u; q < nsg; ++q) mx = max(mx, red_s[uint(g) * 32u + q]);
      const float mn = max(M[g], mx);
      p_s[g * WG + int(t)] = s[g] == NINF ? 0.0 : exp(s[g] - mn);
      if (mn != M[g]) {
        const float alpha = M[g] == NINF ? 0.0 : exp(M[g] - mn);
        l[g] *= alpha;
        for (int e = 0; e < 8; ++e) acc[g][e] *= alpha;
        M[g] = mn;
      }
    }
    barrier();

    // 4. P*V: keys kg, kg + KG, ... of the tile, UNR at a time.
    if (pv) {
      for (uint c0 = kg; c0 < uint(WG); c0 += KG * uint(UNR)) {
        uvec4 vr[UNR][2];
        for (int u = 0; u < UNR; ++u) {
          const uint c = c0 + uint(u) * KG;
          const uint jj = min(j0 + min(c, uint(WG) - 1u), k_end - 1u);
          const uint vb = P(23) + b * P(24) + jj * P(25) + kvh * P(26) + vl * 8u;
          vr[u][0] = vr[u][1] = uvec4(0u);
          if (c < uint(WG)) RAW8(V, DT_V, vb, vr[u][0], vr[u][1]);
        }
        for (int u = 0; u < UNR; ++u) {
          const uint c = c0 + uint(u) * KG;
          if (c >= uint(WG)) break;
          float vf[8];
          UNPACK8(DT_V, vr[u][0], vr[u][1], vf);
          for (int g = 0; g < GMAX; ++g) {
            if (g >= G_) break;
            const float p = p_s[g * WG + int(c)];
            if (p == 0.0) continue;  // masked (or underflowed): its V unused
            l[g] += p;
            for (int e = 0; e < 8; ++e) acc[g][e] = fma(p, vf[e], acc[g][e]);
          }
        }
      }
    }
  }

  // The key groups' sums (same M) per head, then the output or the partial.
  for (int g = 0; g < GMAX; ++g) {
    if (g >= G_) break;
    barrier();
    if (pv) {
      for (int e = 0; e < 8; ++e) fin_s[(kg * nv + vl) * 8u + uint(e)] = acc[g][e];
      if (vl == 0u) finl_s[kg] = l[g];
    }
    barrier();
    if (kg == 0u) {
      float o[8];
      for (int e = 0; e < 8; ++e) o[e] = 0.0;
      float ll = 0.0;
      for (uint q = 0u; q < KG; ++q) {
        for (int e = 0; e < 8; ++e) o[e] += fin_s[(q * nv + vl) * 8u + uint(e)];
        ll += finl_s[q];
      }
      const uint h = h0 + uint(g);
      const float mm = M[g];
      if (SPLIT != 0) {
        // Partials [b][h][i][split] of (m, l, acc[D]).
        const uint rec = (((b * Hq + h) * Sq + i) * P(11) + split) * (Dh + 2u);
        if (vl == 0u) { O_f[rec] = mm; O_f[rec + 1u] = ll; }
        for (int e = 0; e < 8; ++e) O_f[rec + 2u + vl * 8u + uint(e)] = o[e];
      } else {
        float f = 1.0;
        if (F_SINKS != 0) {
          const float sink = Sk_f[P(38) + h];
          const float Mx = max(mm, sink);
          f = mm == NINF ? 0.0 : exp(mm - Mx);
          ll = ll * f + exp(sink - Mx);
        }
        for (int e = 0; e < 8; ++e) {
          const float res = ll == 0.0 ? 0.0 : o[e] * f / ll;
          STOREF(O, DT_O, P(33) + b * P(34) + i * P(35) + h * P(36) + vl * 8u + uint(e), res);
        }
      }
    }
  }
}
