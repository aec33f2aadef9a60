#version 450
// Gated delta rule for few tokens (decode): one subgroup per (batch, value
// head, 4 state columns), no shared memory and no barrier. Lane l holds
// rows l, l + SG, ... (RPL of them) of the 4 columns as vec4s: the state
// is read with 16-byte loads all in flight at once and written once. The
// sums over the rows (u = S^T k, o = S^T q, the q/k l2 norms) are subgroup
// reductions; every subgroup computes its head's norms itself.
// gated_delta_net.comp's parameter layout (kernels_attention.cc).
#extension GL_EXT_control_flow_attributes : require
#include "common.glsl"
layout(local_size_x_id = 0) in;
layout(constant_id = 0) const int WG = 64;
layout(constant_id = 1) const int KD = 128;
layout(constant_id = 2) const int DTQ = 0;
layout(constant_id = 3) const int DTK = 0;
layout(constant_id = 4) const int DTV = 0;
layout(constant_id = 5) const int KDA = 0;
layout(constant_id = 6) const int HAS_STATE = 0;
layout(constant_id = 7) const int L2NORM = 0;
layout(constant_id = 8) const int TILED = 0;
layout(constant_id = 9) const int DTO = 0;
// GENERIC: shapes and flags from params 40..49 (K <= 256).
layout(constant_id = 10) const int GENERIC = 0;
layout(constant_id = 11) const int RPL = 4;  // rows per lane: K / subgroup size, rounded up
#define K_D (GENERIC != 0 ? int(P(40)) : KD)
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
//   30 out (off, s_b, s_t, s_h)  34 final state (off, s_b, s_h, s_i); 50 column blocks per head
// V, the state's and the final state's offsets and strides are multiples
// of 4 (vec4s; kernels_attention.cc checks).

void main() {
  const uint T = P(2), Hk = P(3), Hv = P(4);
  const int Kd = K_D;
  const uint cpg = P(50);  // column blocks (of 4) per head
  const uint sgl = gl_WorkGroupID.x * gl_NumSubgroups + gl_SubgroupID;
  const uint hv = sgl / cpg, b = gl_WorkGroupID.y;
  if (hv >= Hv) return;  // uniform per subgroup: no barrier follows
  const uint j = (sgl % cpg) * 4u;  // first of the 4 columns
  const uint kh = F_TILED != 0 ? hv % Hk : hv / (Hv / Hk);
  const uint lane = gl_SubgroupInvocationID, sgs = gl_SubgroupSize;
  const float scale = PF(5);
  vec4 s[RPL];
  [[unroll]] for (int r = 0; r < RPL; ++r) {
    const uint i = lane + uint(r) * sgs;
    s[r] = vec4(0.0);
    if (F_STATE != 0 && i < uint(Kd)) s[r] = St_f4[(P(26) + b * P(27) + hv * P(28) + i * P(29) + j) >> 2];
  }
  for (uint t = 0; t < T; ++t) {
    const float beta = Bt_f[P(22) + b * P(23) + t * P(24) + hv * P(25)];
    const uint go = P(18) + b * P(19) + t * P(20) + hv * P(21);
    const float decay = F_KDA != 0 ? 1.0 : exp(Gb_f[go]);
    const uint vo = P(14) + b * P(15) + t * P(16) + hv * P(17) + j;
    const vec4 v = vec4(LOADF(Vb, DT_V, vo), LOADF(Vb, DT_V, vo + 1u), LOADF(Vb, DT_V, vo + 2u),
                        LOADF(Vb, DT_V, vo + 3u));
    float q[RPL], k[RPL], g[RPL];
    vec2 mx = vec2(0.0);
    [[unroll]] for (int r = 0; r < RPL; ++r) {
      const uint i = lane + uint(r) * sgs;
      q[r] = k[r] = 0.0;
      g[r] = 1.0;
      if (i < uint(Kd)) {
        q[r] = LOADF(Qb, DT_Q, P(6) + b * P(7) + t * P(8) + kh * P(9) + i);
        k[r] = LOADF(Kb, DT_K, P(10) + b * P(11) + t * P(12) + kh * P(13) + i);
        if (F_KDA != 0) g[r] = exp(Gb_f[go + i]);
      }
      mx = max(mx, abs(vec2(q[r], k[r])));
    }
    float qn = 1.0, kn = 1.0;
    if (F_L2 != 0) {
      // 1 / sqrt(sum x^2 + eps) without overflow: scaled by the row's max |x|.
      mx = subgroupMax(mx);
      vec2 sq = vec2(0.0);
      [[unroll]] for (int r = 0; r < RPL; ++r) {
        const vec2 x = vec2(mx.x > 0.0 ? q[r] / mx.x : 0.0, mx.y > 0.0 ? k[r] / mx.y : 0.0);
        sq += x * x;
      }
      sq = subgroupAdd(sq);
      qn = mx.x > 0.0 ? 1.0 / (mx.x * sqrt(sq.x + 1e-6 / (mx.x * mx.x))) : 1000.0;
      kn = mx.y > 0.0 ? 1.0 / (mx.y * sqrt(sq.y + 1e-6 / (mx.y * mx.y))) : 1000.0;
    }
    vec4 u = vec4(0.0);
    [[unroll]] for (int r = 0; r < RPL; ++r) {
      s[r] *= F_KDA != 0 ? g[r] : decay;
      u += s[r] * (k[r] * kn);
    }
    u = subgroupAdd(u);
    const vec4 dlt = beta * (v - u);
    vec4 o = vec4(0.0);
    [[unroll]] for (int r = 0; r < RPL; ++r) {
      s[r] += (k[r] * kn) * dlt;
      o += s[r] * (q[r] * qn);
    }
    o = subgroupAdd(o) * scale;
    if (lane < 4u) {
      const float oc = lane == 0u ? o.x : lane == 1u ? o.y : lane == 2u ? o.z : o.w;
      STOREF(O, DT_O, P(30) + b * P(31) + t * P(32) + hv * P(33) + j + lane, oc);
    }
  }
  [[unroll]] for (int r = 0; r < RPL; ++r) {
    const uint i = lane + uint(r) * sgs;
    if (i < uint(Kd)) Fs_f4[(P(34) + b * P(35) + hv * P(36) + i * P(37) + j) >> 2] = s[r];
  }
}
