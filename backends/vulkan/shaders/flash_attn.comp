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
// GENERIC: one pipeline for every shape and flag (read from params 50..63),
// arrays sized for the largest case; the specialized build folds them.
layout(constant_id = 16) const int GENERIC = 0;
// VSTAGE: the V tile goes through shared memory too (coalesced loads, then
// the P*V loop reads shared memory instead of a chain of global loads).
layout(constant_id = 17) const int VSTAGE = 0;
const int DKMAX = GENERIC != 0 ? 256 : DK;
const int DVMAX = GENERIC != 0 ? 256 : DV;
const int RMAX = GENERIC != 0 ? 8 : G * QR;
const int BCC = GENERIC != 0 ? 16 : BC;
const int NACC = (RMAX * DVMAX + 127) / 128;
#define D_K (GENERIC != 0 ? int(P(50)) : DK)
#define D_V (GENERIC != 0 ? int(P(51)) : DV)
#define DT_Q (GENERIC != 0 ? int(P(52)) : DTQ)
#define DT_K (GENERIC != 0 ? int(P(53)) : DTK)
#define DT_V (GENERIC != 0 ? int(P(54)) : DTV)
#define F_MASK (GENERIC != 0 ? int(P(55)) : HAS_MASK)
#define DT_M (GENERIC != 0 ? int(P(56)) : DTM)
#define F_SINKS (GENERIC != 0 ? int(P(57)) : HAS_SINKS)
#define F_SOFTCAP (GENERIC != 0 ? int(P(58)) : SOFTCAP)
#define F_ALIBI (GENERIC != 0 ? int(P(59)) : ALIBI)
#define F_CAUSAL (GENERIC != 0 ? int(P(60)) : CAUSAL)
#define DT_O (GENERIC != 0 ? int(P(61)) : DTO)
#define G_ (GENERIC != 0 ? int(P(62)) : G)
#define QR_ (GENERIC != 0 ? int(P(63)) : QR)

DECLARE_SLOT(0, Q)
DECLARE_SLOT(1, K)
DECLARE_SLOT(2, V)
DECLARE_SLOT(3, Mk)
DECLARE_SLOT(4, Sk)
DECLARE_SLOT(5, O)

// params: 1 B, 2 Sq, 3 Skv, 4 Hq, 5 Hkv, 6 scale, 7 softcap, 8 alibi m0, 9 m1, 10 alibi n,
//         11 splits, 12 keys per split, 13 q T, 18 k T, 23 v T, 28 mask T, 33 out T, 38 sinks off,
//         39 head groups per KV head, 40 query-row blocks, 50..63 generic shape/flags, 64.. ALiBi slope per query head
shared float Qs[RMAX * DKMAX];
shared float Ks[BCC * DKMAX];
shared float Vs[VSTAGE != 0 ? BCC * DVMAX : 1];
shared float S[RMAX * BCC];
shared float row_m[RMAX], row_l[RMAX], row_alpha[RMAX];
shared uint any_live;

#define NINF uintBitsToFloat(0xff800000u)

float Slope(uint h) {
  if (F_ALIBI == 0) return 1.0;
  return PF(64u + h);  // computed in double on the host
}

float LoadK(uint b, uint j, uint kvh, uint d) {
  if (DT_K == DT_Q8) return LOADQ8(K, P(18) + b * P(19) + j * P(20) + kvh * P(21), d);
  const uint o = P(18) + b * P(19) + j * P(20) + kvh * P(21) + d;
  return LOADF(K, DT_K, o);
}
float LoadV(uint b, uint j, uint kvh, uint d) {
  if (DT_V == DT_Q8) return LOADQ8(V, P(23) + b * P(24) + j * P(25) + kvh * P(26), d);
  const uint o = P(23) + b * P(24) + j * P(25) + kvh * P(26) + d;
  return LOADF(V, DT_V, o);
}

void main() {
  const uint Sq = P(2), Skv = P(3), Hq = P(4), Hkv = P(5);
  const uint groups = P(39);
  const uint gx = gl_WorkGroupID.x;
  const uint hg = gx % groups, qb = gx / groups;
  const uint kvh = gl_WorkGroupID.y;
  const uint b = gl_WorkGroupID.z / P(11), split = gl_WorkGroupID.z % P(11);
  const uint gqa = Hq / Hkv;
  const uint h0 = kvh * gqa + hg * uint(G_);
  const uint i0 = qb * uint(QR_);
  const uint t = gl_LocalInvocationID.x;
  const int R = G_ * QR_, Dk = D_K, Dv = D_V;
  const float scale = PF(6), softcap = PF(7);

  // Rows: r = g * QR + qi -> head h0 + g, query row i0 + qi.
  for (uint e = t; e < uint(R * Dk); e += 128u) {
    const uint r = e / uint(Dk), d = e % uint(Dk);
    const uint h = h0 + r / uint(QR_), i = i0 + r % uint(QR_);
    float v = 0.0;
    if (i < Sq) {
      const uint o = P(13) + b * P(14) + i * P(15) + h * P(16) + d;
      v = LOADF(Q, DT_Q, o);
    }
    Qs[e] = v;
  }
  if (t < uint(R)) { row_m[t] = NINF; row_l[t] = 0.0; }
  float acc[NACC];
  for (int a = 0; a < NACC; ++a) acc[a] = 0.0;

  const uint k_begin = split * P(12);
  const uint k_end = min(Skv, k_begin + P(12));
  for (uint j0 = k_begin; j0 < k_end; j0 += uint(BCC)) {
    if (t == 0u) any_live = 0u;
    barrier();
    // 1. Bias (mask * slope, causal) for every (row, key) of the tile.
    for (uint e = t; e < uint(R * BCC); e += 128u) {
      const uint r = e / uint(BCC), c = e % uint(BCC);
      const uint h = h0 + r / uint(QR_), i = i0 + r % uint(QR_), j = j0 + c;
      float bias = NINF;
      if (i < Sq && j < k_end) {
        bias = 0.0;
        if (F_CAUSAL != 0 && CausalHidden(i, j, Sq, Skv)) bias = NINF;
        else if (F_MASK != 0) {
          const float m = LOADF(Mk, DT_M, P(28) + b * P(29) + h * P(30) + i * P(31) + j * P(32));
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
    for (uint e = t; e < uint(BCC * Dk); e += 128u) {
      const uint c = e / uint(Dk), d = e % uint(Dk);
      const uint j = j0 + c;
      Ks[e] = j < k_end ? LoadK(b, j, kvh, d) : 0.0;
    }
    if (VSTAGE != 0) {
      for (uint e = t; e < uint(BCC * Dv); e += 128u) {
        const uint c = e / uint(Dv), d = e % uint(Dv);
        const uint j = j0 + c;
        Vs[e] = j < k_end ? LoadV(b, j, kvh, d) : 0.0;
      }
    }
    barrier();
    // 3. Scores for live cells only.
    for (uint e = t; e < uint(R * BCC); e += 128u) {
      const float bias = S[e];
      if (bias == NINF) continue;
      const uint r = e / uint(BCC), c = e % uint(BCC);
      float s = 0.0;
      for (int d = 0; d < Dk; ++d) s += Qs[r * uint(Dk) + d] * Ks[c * uint(Dk) + d];
      s *= scale;
      if (F_SOFTCAP != 0) s = softcap * tanh(s / softcap);
      S[e] = s + bias;
    }
    barrier();
    // 4. Online softmax statistics, one invocation per row.
    if (t < uint(R)) {
      float mx = row_m[t];
      for (int c = 0; c < BCC; ++c) mx = max(mx, S[t * uint(BCC) + c]);
      const float alpha = mx == NINF ? 1.0 : exp(row_m[t] - mx);
      float l = row_l[t] * alpha;
      for (int c = 0; c < BCC; ++c) {
        const float s = S[t * uint(BCC) + c];
        const float p = s == NINF ? 0.0 : exp(s - mx);
        S[t * uint(BCC) + c] = p;
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
      if (p >= uint(R * Dv)) break;
      const uint r = p / uint(Dv), d = p % uint(Dv);
      float s = acc[a] * row_alpha[r];
      for (int c = 0; c < BCC; ++c) {
        const float w = S[r * uint(BCC) + c];
        if (w != 0.0) s += w * (VSTAGE != 0 ? Vs[uint(c) * uint(Dv) + d] : LoadV(b, j0 + c, kvh, d));
      }
      acc[a] = s;
    }
    barrier();
  }

  for (int a = 0; a < NACC; ++a) {
    const uint p = t + uint(a) * 128u;
    if (p >= uint(R * Dv)) break;
    const uint r = p / uint(Dv), d = p % uint(Dv);
    const uint h = h0 + r / uint(QR_), i = i0 + r % uint(QR_);
    if (i >= Sq) continue;
    float m = row_m[r], l = row_l[r], v = acc[a];
    if (SPLIT != 0) {
      // Partials [b][h][i][split] of (m, l, acc[DV]).
      const uint rec = (((b * Hq + h) * Sq + i) * P(11) + split) * uint(Dv + 2);
      if (d == 0u) { O_f[rec] = m; O_f[rec + 1u] = l; }
      O_f[rec + 2u + d] = v;
      continue;
    }
    if (F_SINKS != 0) {
      const float sink = Sk_f[P(38) + h];
      const float M = max(m, sink);
      const float f = m == NINF ? 0.0 : exp(m - M);
      v *= f;
      l = l * f + exp(sink - M);
    }
    const float res = l == 0.0 ? 0.0 : v / l;
    const uint o = P(33) + b * P(34) + i * P(35) + h * P(36) + d;
    STOREF(O, DT_O, o, res);
  }
}
