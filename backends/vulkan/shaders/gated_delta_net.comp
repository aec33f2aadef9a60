#version 450
// Gated delta rule, fused recurrence: one workgroup per (value head, block
// of COLS state columns, batch) holds its columns of the K x V state in
// registers (invocation (j, part) owns rows part*RPT.. of column j), reads
// them once and writes them once per call, and walks the tokens in order
// (decode T = 1; prefill any T). The columns evolve independently (each
// needs only its own S^T k), so a head spreads over V / COLS workgroups.
#include "common.glsl"
layout(local_size_x_id = 11) in;
layout(constant_id = 0) const int KD = 128;
layout(constant_id = 1) const int VD = 128;
layout(constant_id = 2) const int DTQ = 0;
layout(constant_id = 3) const int DTK = 0;
layout(constant_id = 4) const int DTV = 0;
layout(constant_id = 5) const int KDA = 0;
layout(constant_id = 6) const int HAS_STATE = 0;
layout(constant_id = 7) const int L2NORM = 0;
layout(constant_id = 8) const int TILED = 0;
layout(constant_id = 9) const int KP = 4;
layout(constant_id = 10) const int DTO = 0;
layout(constant_id = 11) const int WG = 512;
// GENERIC: one pipeline for every shape and flag (params 40..49), kp = 1.
layout(constant_id = 12) const int GENERIC = 0;
// COLS: state columns per workgroup (0: all of them).
layout(constant_id = 13) const int COLS = 0;
const int RPT = GENERIC != 0 ? 256 : (KD + KP - 1) / KP;
const int KDMAX = GENERIC != 0 ? 256 : KD;
const int VDMAX = GENERIC != 0 ? 256 : VD;
#define K_D (GENERIC != 0 ? int(P(40)) : KD)
#define V_D (GENERIC != 0 ? int(P(41)) : VD)
#define DT_Q (GENERIC != 0 ? int(P(42)) : DTQ)
#define DT_K (GENERIC != 0 ? int(P(43)) : DTK)
#define DT_V (GENERIC != 0 ? int(P(44)) : DTV)
#define F_KDA (GENERIC != 0 ? int(P(45)) : KDA)
#define F_STATE (GENERIC != 0 ? int(P(46)) : HAS_STATE)
#define F_L2 (GENERIC != 0 ? int(P(47)) : L2NORM)
#define F_TILED (GENERIC != 0 ? int(P(48)) : TILED)
#define DT_O (GENERIC != 0 ? int(P(49)) : DTO)

DECLARE_SLOT(0, Qb)
DECLARE_SLOT(1, Kb)
DECLARE_SLOT(2, Vb)
DECLARE_SLOT(3, Gb)
DECLARE_SLOT(4, Bt)
DECLARE_SLOT(5, St)
DECLARE_SLOT(6, O)
DECLARE_SLOT(7, Fs)

// params: 1 B, 2 T, 3 Hk, 4 Hv, 5 scale,
//   6 q (off, s_b, s_t, s_h)  10 k  14 v  18 g  22 beta  26 state (off, s_b, s_h, s_i)
//   30 out (off, s_b, s_t, s_h)  34 final state (off, s_b, s_h, s_i)
shared float qs[KDMAX], ks[KDMAX], gs[KDMAX];
const int CWMAX = COLS > 0 ? COLS : VDMAX;
shared float part_u[KP * CWMAX];
shared float part_o[KP * CWMAX];
shared vec2 red_[64];

// q's and k's reductions together (one pair of barriers for both).
vec2 WgMax(vec2 v) {
  v = subgroupMax(v);
  if (gl_SubgroupInvocationID == 0u) red_[gl_SubgroupID] = v;
  barrier();
  vec2 s = red_[0];
  for (uint i = 1; i < gl_NumSubgroups; ++i) s = max(s, red_[i]);
  barrier();
  return s;
}
vec2 WgSum(vec2 v) {
  v = subgroupAdd(v);
  if (gl_SubgroupInvocationID == 0u) red_[gl_SubgroupID] = v;
  barrier();
  vec2 s = vec2(0.0);
  for (uint i = 0; i < gl_NumSubgroups; ++i) s += red_[i];
  barrier();
  return s;
}

void main() {
  const uint T = P(2), Hk = P(3), Hv = P(4);
  const int Kd = K_D, Vd = V_D;
  const int CW = COLS > 0 ? COLS : Vd;  // columns of this workgroup
  const uint cblocks = uint((Vd + CW - 1) / CW);
  const uint hv = gl_WorkGroupID.x / cblocks, b = gl_WorkGroupID.y;
  const uint col0 = (gl_WorkGroupID.x % cblocks) * uint(CW);
  const uint kh = F_TILED != 0 ? hv % Hk : hv / (Hv / Hk);
  const uint tid = gl_LocalInvocationID.x;
  // Invocations past the columns (generic build, last block) still meet every barrier.
  const uint jl = tid % uint(CW), part = tid / uint(CW);
  const uint j = col0 + jl;
  const bool live_col = tid < uint(CW * KP) && j < uint(Vd);
  const uint i0 = part * uint(RPT);
  const float scale = PF(5);
  float s[RPT];
  for (int r = 0; r < RPT; ++r) {
    const uint i = i0 + uint(r);
    s[r] = (live_col && F_STATE != 0 && i < uint(Kd)) ? St_f[P(26) + b * P(27) + hv * P(28) + i * P(29) + j] : 0.0;
  }
  for (uint t = 0; t < T; ++t) {
    // The token's scalars and v first: their loads overlap the norms'.
    const float beta = Bt_f[P(22) + b * P(23) + t * P(24) + hv * P(25)];
    const float decay = F_KDA != 0 ? 1.0 : exp(Gb_f[P(18) + b * P(19) + t * P(20) + hv * P(21)]);
    const float v = live_col ? LOADF(Vb, DT_V, P(14) + b * P(15) + t * P(16) + hv * P(17) + j) : 0.0;
    float qa = 0.0, ka = 0.0;
    for (uint e = tid; e < uint(Kd); e += uint(WG)) {
      const float qv = LOADF(Qb, DT_Q, P(6) + b * P(7) + t * P(8) + kh * P(9) + e);
      const float kv = LOADF(Kb, DT_K, P(10) + b * P(11) + t * P(12) + kh * P(13) + e);
      qs[e] = qv;
      ks[e] = kv;
      qa = max(qa, abs(qv));
      ka = max(ka, abs(kv));
      if (F_KDA != 0) gs[e] = exp(Gb_f[P(18) + b * P(19) + t * P(20) + hv * P(21) + e]);
    }
    float qn = 1.0, kn = 1.0;
    if (F_L2 != 0) {
      // 1 / sqrt(sum x^2 + eps) without overflow: scale by the row's max |x|.
      const vec2 mx = WgMax(vec2(qa, ka));
      qa = mx.x;
      ka = mx.y;
      float q2 = 0.0, k2 = 0.0;
      for (uint e = tid; e < uint(Kd); e += uint(WG)) {
        if (qa > 0.0) { const float x = qs[e] / qa; q2 += x * x; }
        if (ka > 0.0) { const float x = ks[e] / ka; k2 += x * x; }
      }
      const vec2 sq = WgSum(vec2(q2, k2));
      q2 = sq.x;
      k2 = sq.y;
      qn = qa > 0.0 ? 1.0 / (qa * sqrt(q2 + 1e-6 / (qa * qa))) : 1000.0;
      kn = ka > 0.0 ? 1.0 / (ka * sqrt(k2 + 1e-6 / (ka * ka))) : 1000.0;
    } else {
      barrier();
    }
    float pu = 0.0;
    for (int r = 0; r < RPT; ++r) {
      const uint i = i0 + uint(r);
      if (i >= uint(Kd)) break;
      s[r] *= F_KDA != 0 ? gs[i] : decay;
      pu += s[r] * ks[i] * kn;
    }
    if (live_col) part_u[part * uint(CW) + jl] = pu;
    barrier();
    float u = 0.0;
    for (int p = 0; p < KP; ++p) u += part_u[uint(p) * uint(CW) + jl];
    const float dlt = beta * (v - u);
    float po = 0.0;
    for (int r = 0; r < RPT; ++r) {
      const uint i = i0 + uint(r);
      if (i >= uint(Kd)) break;
      s[r] += ks[i] * kn * dlt;
      po += s[r] * qs[i] * qn;
    }
    if (live_col) part_o[part * uint(CW) + jl] = po;
    barrier();
    if (live_col && part == 0u) {
      float o = 0.0;
      for (int p = 0; p < KP; ++p) o += part_o[uint(p) * uint(CW) + jl];
      STOREF(O, DT_O, P(30) + b * P(31) + t * P(32) + hv * P(33) + j, scale * o);
    }
    barrier();
  }
  for (int r = 0; r < RPT; ++r) {
    const uint i = i0 + uint(r);
    if (live_col && i < uint(Kd)) Fs_f[P(34) + b * P(35) + hv * P(36) + i * P(37) + j] = s[r];
  }
}
