#version 450
// Flash attention (docs/OPS.md), one workgroup per (batch, KV head, group
// of G query heads x QR query rows, KV split). The query heads that share
// a KV head read each K/V tile once. Per tile of BC keys: the mask/causal
// bias first; a tile with no finite bias for the workgroup's rows is
// skipped without reading its K/V. Masked cells never reach a dot product
// or the P*V sum, so NaN in them cannot leak. Online softmax in f32.
// SPLIT: write (m, l, acc) partials for flash_attn_merge.comp.
#include "common.glsl"
layout(local_size_x = 128) in;
layout(constant_id = 0) const int DK = 128;
layout(constant_id = 1) const int DV = 128;
layout(constant_id = 2) const int DTQ = 0;
layout(constant_id = 3) const int DTK = 0;
layout(constant_id = 4) const int DTV = 0;
layout(constant_id = 5) const int HAS_MASK = 0;
layout(constant_id = 6) const int DTM = 0;
layout(constant_id = 7) const int HAS_SINKS = 0;
layout(constant_id = 8) const int SOFTCAP = 0;
layout(constant_id = 9) const int ALIBI = 0;
layout(constant_id = 10) const int CAUSAL = 0;
layout(constant_id = 11) const int DTO = 0;
layout(constant_id = 12) const int G = 1;
layout(constant_id = 13) const int QR = 1;
layout(constant_id = 14) const int BC = 16;
layout(constant_id = 15) const int SPLIT = 0;
const int R = G * QR;
const int NACC = (R * DV + 127) / 128;

DECLARE_SLOT(0, Q)
DECLARE_SLOT(1, K)
DECLARE_SLOT(2, V)
DECLARE_SLOT(3, Mk)
DECLARE_SLOT(4, Sk)
DECLARE_SLOT(5, O)

// params: 1 B, 2 Sq, 3 Skv, 4 Hq, 5 Hkv, 6 scale, 7 softcap, 8 alibi m0, 9 m1, 10 alibi n,
//         11 splits, 12 keys per split, 13 q T, 18 k T, 23 v T, 28 mask T, 33 out T, 38 sinks off,
//         39 head groups per KV head, 40 query-row blocks, 41.. ALiBi slope per query head
shared float Qs[R * DK];
shared float Ks[BC * DK];
shared float S[R * BC];
shared float row_m[R], row_l[R], row_alpha[R];
shared uint any_live;

#define NINF uintBitsToFloat(0xff800000u)

float Slope(uint h) {
  if (ALIBI == 0) return 1.0;
  return PF(41u + h);  // computed in double on the host
}

float LoadK(uint b, uint j, uint kvh, uint d) {
  if (DTK == DT_Q8) return LOADQ8(K, P(18) + b * P(19) + j * P(20) + kvh * P(21), d);
  const uint o = P(18) + b * P(19) + j * P(20) + kvh * P(21) + d;
  return LOADF(K, DTK, o);
}
float LoadV(uint b, uint j, uint kvh, uint d) {
  if (DTV == DT_Q8) return LOADQ8(V, P(23) + b * P(24) + j * P(25) + kvh * P(26), d);
  const uint o = P(23) + b * P(24) + j * P(25) + kvh * P(26) + d;
  return LOADF(V, DTV, o);
}

void main() {
  const uint Sq = P(2), Skv = P(3), Hq = P(4), Hkv = P(5);
  const uint groups = P(39);
  const uint gx = gl_WorkGroupID.x;
  const uint hg = gx % groups, qb = gx / groups;
  const uint kvh = gl_WorkGroupID.y;
  const uint b = gl_WorkGroupID.z / P(11), split = gl_WorkGroupID.z % P(11);
  const uint gqa = Hq / Hkv;
  const uint h0 = kvh * gqa + hg * uint(G);
  const uint i0 = qb * uint(QR);
  const uint t = gl_LocalInvocationID.x;
  const float scale = PF(6), softcap = PF(7);

  // Rows: r = g * QR + qi -> head h0 + g, query row i0 + qi.
  for (uint e = t; e < uint(R * DK); e += 128u) {
    const uint r = e / uint(DK), d = e % uint(DK);
    const uint h = h0 + r / uint(QR), i = i0 + r % uint(QR);
    float v = 0.0;
    if (i < Sq) {
      const uint o = P(13) + b * P(14) + i * P(15) + h * P(16) + d;
      v = LOADF(Q, DTQ, o);
    }
    Qs[e] = v;
  }
  if (t < uint(R)) { row_m[t] = NINF; row_l[t] = 0.0; }
  float acc[NACC];
  for (int a = 0; a < NACC; ++a) acc[a] = 0.0;

  const uint k_begin = split * P(12);
  const uint k_end = min(Skv, k_begin + P(12));
  for (uint j0 = k_begin; j0 < k_end; j0 += uint(BC)) {
    if (t == 0u) any_live = 0u;
    barrier();
    // 1. Bias (mask * slope, causal) for every (row, key) of the tile.
    for (uint e = t; e < uint(R * BC); e += 128u) {
      const uint r = e / uint(BC), c = e % uint(BC);
      const uint h = h0 + r / uint(QR), i = i0 + r % uint(QR), j = j0 + c;
      float bias = NINF;
      if (i < Sq && j < k_end) {
        bias = 0.0;
        if (CAUSAL != 0 && j > i + (Skv - Sq)) bias = NINF;
        else if (HAS_MASK != 0) {
          const float m = LOADF(Mk, DTM, P(28) + b * P(29) + h * P(30) + i * P(31) + j * P(32));
          bias = m == NINF ? NINF : Slope(h) * m;
        }
      }
      S[e] = bias;
      if (bias != NINF) any_live = 1u;
    }
    barrier();
    const bool live = any_live != 0u;
    barrier();
    if (!live) continue;  // uniform: the whole tile is masked for these rows
    // 2. K tile to shared memory.
    for (uint e = t; e < uint(BC * DK); e += 128u) {
      const uint c = e / uint(DK), d = e % uint(DK);
      const uint j = j0 + c;
      Ks[e] = j < k_end ? LoadK(b, j, kvh, d) : 0.0;
    }
    barrier();
    // 3. Scores for live cells only.
    for (uint e = t; e < uint(R * BC); e += 128u) {
      const float bias = S[e];
      if (bias == NINF) continue;
      const uint r = e / uint(BC), c = e % uint(BC);
      float s = 0.0;
      for (int d = 0; d < DK; ++d) s += Qs[r * uint(DK) + d] * Ks[c * uint(DK) + d];
      s *= scale;
      if (SOFTCAP != 0) s = softcap * tanh(s / softcap);
      S[e] = s + bias;
    }
    barrier();
    // 4. Online softmax statistics, one invocation per row.
    if (t < uint(R)) {
      float mx = row_m[t];
      for (int c = 0; c < BC; ++c) mx = max(mx, S[t * uint(BC) + c]);
      const float alpha = mx == NINF ? 1.0 : exp(row_m[t] - mx);
      float l = row_l[t] * alpha;
      for (int c = 0; c < BC; ++c) {
        const float s = S[t * uint(BC) + c];
        const float p = s == NINF ? 0.0 : exp(s - mx);
        S[t * uint(BC) + c] = p;
        l += p;
      }
      row_m[t] = mx;
      row_l[t] = l;
      row_alpha[t] = alpha;
    }
    barrier();
    // 5. acc = acc * alpha + P V, skipping P == 0 (masked V may be NaN).
    for (int a = 0; a < NACC; ++a) {
      const uint p = t + uint(a) * 128u;
      if (p >= uint(R * DV)) break;
      const uint r = p / uint(DV), d = p % uint(DV);
      float s = acc[a] * row_alpha[r];
      for (int c = 0; c < BC; ++c) {
        const float w = S[r * uint(BC) + c];
        if (w != 0.0) s += w * LoadV(b, j0 + c, kvh, d);
      }
      acc[a] = s;
    }
    barrier();
  }

  for (int a = 0; a < NACC; ++a) {
    const uint p = t + uint(a) * 128u;
    if (p >= uint(R * DV)) break;
    const uint r = p / uint(DV), d = p % uint(DV);
    const uint h = h0 + r / uint(QR), i = i0 + r % uint(QR);
    if (i >= Sq) continue;
    float m = row_m[r], l = row_l[r], v = acc[a];
    if (SPLIT != 0) {
      // Partials [b][h][i][split] of (m, l, acc[DV]).
      const uint rec = (((b * Hq + h) * Sq + i) * P(11) + split) * uint(DV + 2);
      if (d == 0u) { O_f[rec] = m; O_f[rec + 1u] = l; }
      O_f[rec + 2u + d] = v;
      continue;
    }
    if (HAS_SINKS != 0) {
      const float sink = Sk_f[P(38) + h];
      const float M = max(m, sink);
      const float f = m == NINF ? 0.0 : exp(m - M);
      v *= f;
      l = l * f + exp(sink - M);
    }
    const float res = l == 0.0 ? 0.0 : v / l;
    const uint o = P(33) + b * P(34) + i * P(35) + h * P(36) + d;
    STOREF(O, DTO, o, res);
  }
}
