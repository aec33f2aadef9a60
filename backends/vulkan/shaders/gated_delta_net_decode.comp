#version 450
// Gated delta rule for few tokens (decode) on GPUs: no barrier and no shared
// memory. A subgroup owns CPS state columns of one value head and holds all
// K rows of them in registers: lane (c, p) = (lane % CPS, lane / CPS) keeps
// rows p*RPT .. p*RPT+RPT-1 of column c, so one load instruction reads CPS
// contiguous floats (a 32-byte sector at CPS = 8) of SG / CPS rows. Every
// sum over K (the q/k norms, S^T k, S^T q) is the lane's own rows plus
// shuffles across the PARTS lanes of a column: all of the state's loads are
// in flight at once and nothing waits on another subgroup.
// (gated_delta_net.comp, with shared memory and barriers, takes long T and
// devices whose subgroup size is not fixed.)
#extension GL_EXT_control_flow_attributes : require
#extension GL_KHR_shader_subgroup_shuffle : require
#include "common.glsl"
layout(local_size_x_id = 0) in;
layout(constant_id = 0) const int WG = 64;    // NSGW subgroups of SG
layout(constant_id = 1) const int SG = 32;    // the subgroup size (fixed on the device)
layout(constant_id = 2) const int CPS = 8;    // state columns per subgroup
layout(constant_id = 3) const int KD = 128;
layout(constant_id = 4) const int VD = 128;
layout(constant_id = 5) const int DTQ = 0;
layout(constant_id = 6) const int DTK = 0;
layout(constant_id = 7) const int DTV = 0;
layout(constant_id = 8) const int KDA = 0;
layout(constant_id = 9) const int HAS_STATE = 0;
layout(constant_id = 10) const int L2NORM = 0;
layout(constant_id = 11) const int TILED = 0;
layout(constant_id = 12) const int DTO = 0;
const int PARTS = SG / CPS;                 // lanes per column
const int RPT = (KD + PARTS - 1) / PARTS;   // rows per lane

DECLARE_SLOT(0, Qb)
DECLARE_SLOT(1, Kb)
DECLARE_SLOT(2, Vb)
DECLARE_SLOT(3, Gb)
DECLARE_SLOT(4, Bt)
DECLARE_SLOT(5, St)
DECLARE_SLOT(6, O)
DECLARE_SLOT(7, Fs)

// params: gated_delta_net.comp's layout (PushGdnParams).
// Sum / max over the PARTS lanes of a column (lanes c, c + CPS, ...).
float ColSum(float x) {
  [[unroll]] for (int o = CPS; o < SG; o <<= 1) x += subgroupShuffleXor(x, uint(o));
  return x;
}
float ColMax(float x) {
  [[unroll]] for (int o = CPS; o < SG; o <<= 1) x = max(x, subgroupShuffleXor(x, uint(o)));
  return x;
}
// 1 / sqrt(sum x^2 + 1e-6) of a row spread over the column's lanes. The
// plain sum of squares first (the same in every lane of the column, so the
// branch is uniform there); only where it overflows, the row scaled by its
// max |x| (as gated_delta_net.comp). A sum that underflows needs no care:
// the 1e-6 outweighs it. (The scaled sum's 2 * RPT divisions per lane were
// most of the kernel's instructions.)
float InvNorm(float x[RPT]) {
  float s = 0.0;
  [[unroll]] for (int r = 0; r < RPT; ++r) s += x[r] * x[r];
  s = ColSum(s);
  if (!isinf(s)) return 1.0 / sqrt(s + 1e-6);
  float mx = 0.0;
  [[unroll]] for (int r = 0; r < RPT; ++r) mx = max(mx, abs(x[r]));
  mx = ColMax(mx);
  const float inv = 1.0 / mx;
  s = 0.0;
  [[unroll]] for (int r = 0; r < RPT; ++r) { const float y = x[r] * inv; s += y * y; }
  s = ColSum(s);
  return 1.0 / (mx * sqrt(s + 1e-6 * inv * inv));
}

void main() {
  const uint T = P(2), Hk = P(3), Hv = P(4);
  const uint cblocks = uint((VD + CPS - 1) / CPS);
  const uint sgid = gl_WorkGroupID.x * uint(WG / SG) + gl_SubgroupID;  // (head, column block)
  const uint hv = sgid / cblocks, b = gl_WorkGroupID.y;
  if (hv >= Hv) return;  // the last workgroup's spare subgroups (no barrier below)
  const uint lane = gl_SubgroupInvocationID;
  const uint c = lane % uint(CPS), p = lane / uint(CPS);
  const uint j = (sgid % cblocks) * uint(CPS) + c;
  const bool col = j < uint(VD);
  const uint i0 = p * uint(RPT);
  const uint kh = TILED != 0 ? hv % Hk : hv / (Hv / Hk);
  const float scale = PF(5);
  float s[RPT];
  [[unroll]] for (int r = 0; r < RPT; ++r) {
    const uint i = i0 + uint(r);
    s[r] = (col && HAS_STATE != 0 && i < uint(KD)) ? St_f[P(26) + b * P(27) + hv * P(28) + i * P(29) + j] : 0.0;
  }
  for (uint t = 0; t < T; ++t) {
    const float beta = Bt_f[P(22) + b * P(23) + t * P(24) + hv * P(25)];
    const float v = col ? LOADF(Vb, DTV, P(14) + b * P(15) + t * P(16) + hv * P(17) + j) : 0.0;
    float q[RPT], k[RPT], dec[RPT];
    const uint qo = P(6) + b * P(7) + t * P(8) + kh * P(9), ko = P(10) + b * P(11) + t * P(12) + kh * P(13);
    const uint go = P(18) + b * P(19) + t * P(20) + hv * P(21);
    [[unroll]] for (int r = 0; r < RPT; ++r) {
      const uint i = i0 + uint(r);
      const bool in_k = i < uint(KD);
      q[r] = in_k ? LOADF(Qb, DTQ, qo + i) : 0.0;
      k[r] = in_k ? LOADF(Kb, DTK, ko + i) : 0.0;
      if (KDA != 0) dec[r] = in_k ? exp(Gb_f[go + i]) : 0.0;
    }
    const float decay = KDA != 0 ? 1.0 : exp(Gb_f[go]);
    float qn = 1.0, kn = 1.0;
    if (L2NORM != 0) {
      qn = InvNorm(q);
      kn = InvNorm(k);
    }
    float u = 0.0;
    [[unroll]] for (int r = 0; r < RPT; ++r) {
      s[r] *= KDA != 0 ? dec[r] : decay;
      u += s[r] * k[r] * kn;
    }
    u = ColSum(u);
    const float dlt = beta * (v - u);
    float o = 0.0;
    [[unroll]] for (int r = 0; r < RPT; ++r) {
      s[r] += k[r] * kn * dlt;
      o += s[r] * q[r] * qn;
    }
    o = ColSum(o);
    if (col && p == 0u) STOREF(O, DTO, P(30) + b * P(31) + t * P(32) + hv * P(33) + j, scale * o);
  }
  [[unroll]] for (int r = 0; r < RPT; ++r) {
    const uint i = i0 + uint(r);
    if (col && i < uint(KD)) Fs_f[P(34) + b * P(35) + hv * P(36) + i * P(37) + j] = s[r];
  }
}
