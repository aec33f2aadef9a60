#version 450
// Gated delta rule (GDA: a scalar gate; KDA: a gate per key row), chunked
// (WY / UT form) for long T: chunks of C = 64 tokens, each in a few
// parallel phases instead of 64 dependent steps. One workgroup per (value
// head, block of VB state columns, batch); invocation (column jl, part p)
// holds rows p, p+CL, ... of its column of the K x V state in registers, so
// a column's CL parts are adjacent lanes and combine by shuffles.
// With G_t the log gate summed from the chunk's start through token t (per
// key row i for KDA: G_ti), S0 the state at the chunk's start and q, k the
// (normalized) rows, D_ts = exp(G_t - G_s) (KDA: diag over i):
//   A[t][s] = beta_t k_t D_ts k_s                       s < t
//   (I + A) U = beta (V - exp(G) k S0)                  (forward substitution)
//   out_t = scale (q_t exp(G_t) S0 + sum_{s<=t} (q_t D_ts k_s) U_s)
//   S_end = exp(G_L) S0 + sum_s D_Ls k_s U_s^T          (L: the chunk's last token)
// Every exponent is <= 0, so nothing overflows. KDA's exponents per (t, s,
// i) are summed on the fly along t (nothing of size C x K is stored).
#extension GL_KHR_shader_subgroup_shuffle : require
#include "common.glsl"
layout(local_size_x_id = 0) in;
layout(constant_id = 0) const int WG = 256;  // VB * CL
layout(constant_id = 1) const int KD = 128;
layout(constant_id = 2) const int VD = 128;
layout(constant_id = 3) const int DTQ = 0;
layout(constant_id = 4) const int DTK = 0;
layout(constant_id = 5) const int DTV = 0;
layout(constant_id = 6) const int HAS_STATE = 0;
layout(constant_id = 7) const int L2NORM = 0;
layout(constant_id = 8) const int TILED = 0;
layout(constant_id = 9) const int DTO = 0;
layout(constant_id = 10) const int VB = 32;  // state columns per workgroup, <= 32
layout(constant_id = 11) const int KDA = 0;
// GENERIC: one pipeline for every shape and flag (params 40..49, as
// gated_delta_net.comp), arrays sized for K = 256.
layout(constant_id = 12) const int GENERIC = 0;
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
const uint C = 64u;
const uint CL = 8u;  // parts per column (lanes that shuffle together)
const int RPT = GENERIC != 0 ? 32 : (KD + int(CL) - 1) / int(CL);
const int CPT = int(C / CL);  // chunk tokens per part

DECLARE_SLOT(0, Qb)
DECLARE_SLOT(1, Kb)
DECLARE_SLOT(2, Vb)
DECLARE_SLOT(3, Gb)
DECLARE_SLOT(4, Bt)
DECLARE_SLOT(5, St)
DECLARE_SLOT(6, O)
DECLARE_SLOT(7, Fs)

// params (as gated_delta_net.comp): 1 B, 2 T, 3 Hk, 4 Hv, 5 scale,
//   6 q (off, s_b, s_t, s_h)  10 k  14 v  18 g  22 beta  26 state (off, s_b, s_h, s_i)
//   30 out (off, s_b, s_t, s_h)  34 final state (off, s_b, s_h, s_i)
// M: A strictly below the diagonal (M[t][s], s < t), q_t . k_s scaled at
// and above it (M[s][t], s <= t).
shared float M[C * (C + 1u)];
shared float U[C * uint(VB)];
shared float Gc[C], beta_s[C], qn_s[C], kn_s[C], dl[C];

float PartSum(float x) {
  x += subgroupShuffleXor(x, 1u);
  x += subgroupShuffleXor(x, 2u);
  x += subgroupShuffleXor(x, 4u);
  return x;
}

uint b, kh, hv;
// Row t's first element of q, k (head kh) and of the gate (head hv): the
// bases and token strides are read from the params once.
uint qb, qst, kb, kst, gb, gst;
float Qv(uint t, uint i) { return LOADF(Qb, DT_Q, qb + t * qst + i); }
float Kv(uint t, uint i) { return LOADF(Kb, DT_K, kb + t * kst + i); }
// The log gate of token t (GDA) or of token t and key row i (KDA).
float Gate(uint t, uint i) { return Gb_f[gb + t * gst + (F_KDA != 0 ? i : 0u)]; }
float PartMax(float x) {
  x = max(x, subgroupShuffleXor(x, 1u));
  x = max(x, subgroupShuffleXor(x, 2u));
  x = max(x, subgroupShuffleXor(x, 4u));
  return x;
}
// 1 / sqrt(sum x^2 + 1e-6) of row t of q or k, scaled by the max |x| as the
// recurrence does; the CL parts of a group each take rows p, p+CL, ...
float InvNorm(uint t, bool q, uint p) {
  float a = 0.0;
  for (uint i = p; i < uint(K_D); i += CL) a = max(a, abs(q ? Qv(t, i) : Kv(t, i)));
  a = PartMax(a);
  float s2 = 0.0;
  if (a > 0.0) {
    for (uint i = p; i < uint(K_D); i += CL) {
      const float x = (q ? Qv(t, i) : Kv(t, i)) / a;
      s2 += x * x;
    }
  }
  s2 = PartSum(s2);
  return a == 0.0 ? 1000.0 : 1.0 / (a * sqrt(s2 + 1e-6 / (a * a)));
}

void main() {
  const uint T = P(2), Hk = P(3), Hv = P(4);
  const uint cblocks = uint((V_D + VB - 1) / VB);
  hv = gl_WorkGroupID.x / cblocks;
  b = gl_WorkGroupID.y;
  kh = F_TILED != 0 ? hv % Hk : hv / (Hv / Hk);
  const uint tid = gl_LocalInvocationID.x;
  const uint jl = tid / CL, p = tid % CL;
  const uint j = (gl_WorkGroupID.x % cblocks) * uint(VB) + jl;
  const bool live_col = j < uint(V_D);  // the rest still meet every barrier and shuffle
  const float scale = PF(5);
  qb = P(6) + b * P(7) + kh * P(9);
  qst = P(8);
  kb = P(10) + b * P(11) + kh * P(13);
  kst = P(12);
  gb = P(18) + b * P(19) + hv * P(21);
  gst = P(20);
  const uint vb0 = P(14) + b * P(15) + hv * P(17) + j, vst = P(16);
  const uint bb0 = P(22) + b * P(23) + hv * P(25), bst = P(24);
  const uint ob0 = P(30) + b * P(31) + hv * P(33) + j, ost = P(32);

  float s[RPT];
  for (int r = 0; r < RPT; ++r) {
    const uint i = p + CL * uint(r);
    s[r] = (live_col && F_STATE != 0 && i < uint(K_D)) ? St_f[P(26) + b * P(27) + hv * P(28) + i * P(29) + j] : 0.0;
  }

  for (uint t0 = 0u; t0 < T; t0 += C) {
    const uint n = min(C, T - t0);
    // 1. Per token: beta, the gate summed from the chunk's start, norms
    //    (by groups of CL invocations).
    if (tid < n) {
      beta_s[tid] = Bt_f[bb0 + (t0 + tid) * bst];
      if (F_KDA == 0) {
        float g = 0.0;
        for (uint u = t0; u <= t0 + tid; ++u) g += Gate(u, 0u);
        Gc[tid] = g;
      }
    }
    for (uint tb = 0u; tb < C; tb += uint(VB)) {
      const uint t = min(tb + jl, n - 1u);  // past n: a repeat, not stored
      const float qn = F_L2 != 0 ? InvNorm(t0 + t, true, p) : 1.0;
      const float kn = F_L2 != 0 ? InvNorm(t0 + t, false, p) : 1.0;
      if (p == 0u && tb + jl < n) {
        qn_s[t] = qn * scale;
        kn_s[t] = kn;
      }
    }
    barrier();
    // The state update's weight of each token: D_Ls k_s's scalar factors.
    if (tid < n) dl[tid] = F_KDA != 0 ? kn_s[tid] : exp(Gc[n - 1u] - Gc[tid]) * kn_s[tid];
    // 2. M, by (key token sv, part p): k_sv's rows p, p+CL, ... in registers
    //    while t walks the chunk (KDA: the exponents G_ti - G_si summed along).
    for (uint base = 0u; base < C; base += uint(VB)) {
      const uint sv = base + jl;
      float ksr[RPT], dk[RPT];
      for (int r = 0; r < RPT; ++r) {
        const uint i = p + CL * uint(r);
        ksr[r] = (sv < n && i < uint(K_D)) ? Kv(t0 + sv, i) : 0.0;
        dk[r] = 0.0;
      }
      for (uint t = 0u; t < n; ++t) {
        float kk = 0.0, qk = 0.0;
        if (t >= sv) {
          for (int r = 0; r < RPT; ++r) {
            const uint i = p + CL * uint(r);
            if (i >= uint(K_D)) break;
            float e = 1.0;
            if (F_KDA != 0) {
              if (t > sv) dk[r] += Gate(t0 + t, i);
              e = exp(dk[r]);
            }
            kk += Kv(t0 + t, i) * ksr[r] * e;
            qk += Qv(t0 + t, i) * ksr[r] * e;
          }
        }
        kk = PartSum(kk);
        qk = PartSum(qk);
        if (p == 0u && t >= sv) {
          const float dec = F_KDA != 0 ? 1.0 : exp(Gc[t] - Gc[sv]);
          if (t > sv) M[t * (C + 1u) + sv] = beta_s[t] * dec * kn_s[t] * kn_s[sv] * kk;
          M[sv * (C + 1u) + t] = dec * qn_s[t] * kn_s[sv] * qk;
        }
      }
    }
    // 3. S0's terms: (k_s S0) and (q_s S0) per token, summed over the parts;
    //    part p keeps tokens p, p+CL, ...
    float rhs[CPT], oi[CPT];
    float gk[RPT];  // KDA: G_sv,i of this invocation's rows
    for (int r = 0; r < RPT; ++r) gk[r] = 0.0;
    for (uint sv = 0u; sv < n; ++sv) {
      float pk = 0.0, pq = 0.0;
      for (int r = 0; r < RPT; ++r) {
        const uint i = p + CL * uint(r);
        if (i >= uint(K_D)) break;
        float x = s[r];
        if (F_KDA != 0) {
          gk[r] += Gate(t0 + sv, i);
          x *= exp(gk[r]);
        }
        pk += Kv(t0 + sv, i) * x;
        pq += Qv(t0 + sv, i) * x;
      }
      pk = PartSum(pk);
      pq = PartSum(pq);
      if (sv % CL == p) {
        const float gam = F_KDA != 0 ? 1.0 : exp(Gc[sv]);
        const float v = live_col ? LOADF(Vb, DT_V, vb0 + (t0 + sv) * vst) : 0.0;
        rhs[sv / CL] = beta_s[sv] * (v - gam * kn_s[sv] * pk);
        oi[sv / CL] = gam * qn_s[sv] * pq;
      }
    }
    barrier();  // M is complete
    // 4. Forward substitution: U_s = rhs_s - sum_{r<s} A[s][r] U_r.
    float u[CPT];
    for (uint sv = 0u; sv < n; ++sv) {
      float acc = 0.0;
      for (uint r = p; r < sv; r += CL) acc += M[sv * (C + 1u) + r] * u[r / CL];
      acc = PartSum(acc);
      if (sv % CL == p) u[sv / CL] = rhs[sv / CL] - acc;
    }
    for (uint sv = p; sv < n; sv += CL) U[sv * uint(VB) + jl] = u[sv / CL];
    barrier();
    // 5. Outputs of the chunk's tokens (part p: tokens p, p+CL, ...).
    for (uint t = p; t < n; t += CL) {
      float o = oi[t / CL];
      for (uint sv = 0u; sv <= t; ++sv) o += M[sv * (C + 1u) + t] * U[sv * uint(VB) + jl];
      if (live_col) STOREF(O, DT_O, ob0 + (t0 + t) * ost, o);
    }
    // 6. The state at the chunk's end.
    //    KDA: sv walks back from L, summing G_L,i - G_sv,i on the way.
    const float gl = F_KDA != 0 ? 0.0 : Gc[n - 1u];
    for (int r = 0; r < RPT; ++r) {
      const uint i = p + CL * uint(r);
      if (i >= uint(K_D)) break;
      float acc = 0.0, suf = 0.0;
      for (uint sv = n; sv-- > 0u;) {
        const float w = F_KDA != 0 ? exp(suf) * dl[sv] : dl[sv];
        acc += w * Kv(t0 + sv, i) * U[sv * uint(VB) + jl];
        if (F_KDA != 0) suf += Gate(t0 + sv, i);
      }
      s[r] = exp(F_KDA != 0 ? suf : gl) * s[r] + acc;
    }
    barrier();  // the next chunk rewrites M, U and the per-token values
  }
  for (int r = 0; r < RPT; ++r) {
    const uint i = p + CL * uint(r);
    if (live_col && i < uint(K_D)) Fs_f[P(34) + b * P(35) + hv * P(36) + i * P(37) + j] = s[r];
  }
}
