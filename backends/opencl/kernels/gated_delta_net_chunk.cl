// gated_delta_net (docs/OPS.md), chunked (WY / UT-transform) form for long T,
// in two kernels over a scratch buffer. Tokens go in chunks of C = 64. G is
// the gate's cumulative sum from the chunk's start (per key channel for KDA),
// so every exponent below is G_t - G_s with t >= s, G_t, or G_last - G_t:
// never positive, whatever the chunk's gates (no overflow; FLA keeps its
// exponents bounded the same way, relative to the chunk).
//
// The host runs the two over windows of NC chunks starting at chunk c0 (a
// bounded scratch whatever T), the state carried from one window to the next
// in final_state.
//
// gdn_chunk_prep: one work-group per (batch row, value head, chunk of the
// window), all at once. With q, k rows normalized (l2norm_qk) and beta:
//   A[t][s] = beta_t sum_i k_t[i] k_s[i] exp(G_t[i] - G_s[i])   (s < t)
//   P[t][s] =        sum_i q_t[i] k_s[i] exp(G_t[i] - G_s[i])   (s <= t)
//   Tm = (I + A)^-1 by forward substitution (unit lower triangular)
//   W = Tm (beta exp(G) k),  U = Tm (beta v)
//   Qg = exp(G) q,  Kr = exp(G_last - G) k,  gam = exp(G_last)
// gdn_chunk_state: with S0 the state at a chunk's start, the delta rule's
// corrections of the chunk are d = U - W S0, its outputs scale (Qg S0 + P d)
// and the next state gam * S0 + Kr^T d (gam scales S0's key rows). The
// columns of S are independent, so one work-group per (batch row, value head,
// block of VC value columns) runs the chunks in order with its K x VC slice
// of the state in local memory.
//
// Scratch, per (b, hv, chunk of the window) slot: G [C][K] (GDA: column 0), W, Qg, Kr
// [C][K], U [C][V], P [C][C], gam [K]; rows of tokens past T are zero.
#define C 64
#define WG 128
#define SL 32          // key channels (or W/U columns) per local slice
#define LDA (C + 1)    // row pitches that keep column reads off one bank
#define LDS (SL + 1)
#define VC 16          // value columns per state work-group
#define TG (WG / VC)   // token (or key row) groups of the state kernel
#define KMAX 256

inline long slot_floats(int K, int V) { return (long)C * (4 * K + V + C) + K; }

__kernel __attribute__((reqd_work_group_size(WG, 1, 1)))
void gdn_chunk_prep(gin q, long q_off, int4 qs, int qdt, gin k, long k_off, int4 kst, int kdt, gin v, long v_off,
                    int4 vst, int vdt, __global const float* g, long g_off, int4 gs, int kda,
                    __global const float* beta, long be_off, int4 bes, __global float* ws, int T, int Hk, int Hv,
                    int K, int V, int c0, int NC, int l2norm, int tiled) {
  __local float bl[C], rq[C], rk[C], gg[C];  // beta, 1/norms, G (GDA)
  __local float Al[C * LDA];
  __local float R[3 * C * LDS];  // k, q and G slices for A and P; then Tm and a W/U slice
  const int lid = get_local_id(0);
  const int z = get_group_id(0);
  const int c = z % NC, hv = (z / NC) % Hv, b = z / NC / Hv;
  const int kh = tiled ? hv % Hk : hv / (Hv / Hk);
  const int t0 = (c0 + c) * C;
  const int Tc = min(C, T - t0);
  __global float* Gw = ws + (long)z * slot_floats(K, V);
  __global float* Ww = Gw + C * K;
  __global float* Qw = Gw + 2 * C * K;
  __global float* Krw = Gw + 3 * C * K;
  __global float* Uw = Gw + 4 * C * K;
  __global float* Pw = Uw + C * V;
  __global float* gamw = Pw + C * C;
  const long qb = q_off + (long)b * qs.x + (long)t0 * qs.y + (long)kh * qs.z;
  const long kb = k_off + (long)b * kst.x + (long)t0 * kst.y + (long)kh * kst.z;
  const long vb = v_off + (long)b * vst.x + (long)t0 * vst.y + (long)hv * vst.z;
  const long gb = g_off + (long)b * gs.x + (long)t0 * gs.y + (long)hv * gs.z;
  const long bb = be_off + (long)b * bes.x + (long)t0 * bes.y + (long)hv * bes.z;
  const int gk = kda ? K : 1;  // G's columns in use

  // a. beta, the norms' reciprocals, the gates' cumulative sums (tokens past
  // T: zero beta, rows and gate).
  if (lid < C) {
    const int t = lid;
    float nq = 0.0f, nk = 0.0f;
    if (t < Tc) {
      for (int i = 0; i < K; ++i) {
        const float qi = ld(q, qdt, qb + (long)t * qs.y + i), ki = ld(k, kdt, kb + (long)t * kst.y + i);
        nq = fma(qi, qi, nq);
        nk = fma(ki, ki, nk);
      }
    }
    bl[t] = t < Tc ? beta[bb + (long)t * bes.y] : 0.0f;
    rq[t] = t < Tc ? (l2norm ? 1.0f / sqrt(nq + 1e-6f) : 1.0f) : 0.0f;
    rk[t] = t < Tc ? (l2norm ? 1.0f / sqrt(nk + 1e-6f) : 1.0f) : 0.0f;
  }
  for (int i = lid; i < gk; i += WG) {
    float run = 0.0f;
    for (int t = 0; t < C; ++t) {
      if (t < Tc) run += g[gb + (long)t * gs.y + (long)i * gs.w];
      Gw[t * K + i] = run;
      if (!kda) gg[t] = run;
    }
  }
  barrier(CLK_LOCAL_MEM_FENCE | CLK_GLOBAL_MEM_FENCE);

  // b. A and P: work-item pairs (t = pt + 2m, s = ps), summed over slices of
  // SL key channels staged in local memory.
  {
    __local float* kl = R;
    __local float* ql = R + C * LDS;
    __local float* gl = R + 2 * C * LDS;
    const int ps = lid % C, pt = lid / C;
    float aa[C / 2], pp[C / 2];  // registers where the loops over m unroll (NVIDIA)
#ifdef KILN_PTX
#pragma unroll
#endif
    for (int m = 0; m < C / 2; ++m) aa[m] = pp[m] = 0.0f;
    for (int i0 = 0; i0 < K; i0 += SL) {
      for (int e = lid; e < C * SL; e += WG) {
        const int t = e / SL, x = e % SL, i = i0 + x;
        const bool ok = t < Tc && i < K;
        kl[t * LDS + x] = ok ? ld(k, kdt, kb + (long)t * kst.y + i) * rk[t] : 0.0f;
        ql[t * LDS + x] = ok ? ld(q, qdt, qb + (long)t * qs.y + i) * rq[t] : 0.0f;
        gl[t * LDS + x] = (kda && ok) ? Gw[t * K + i] : 0.0f;
      }
      barrier(CLK_LOCAL_MEM_FENCE);
      for (int x = 0; x < SL; ++x) {
        const float ks = kl[ps * LDS + x], gsx = gl[ps * LDS + x];
#ifdef KILN_PTX
#pragma unroll
#endif
        for (int m = 0; m < C / 2; ++m) {
          const int t = pt + 2 * m;
          // Pairs with t < s are dropped below; their exponent is not taken.
          const float kse = kda ? ks * exp(t >= ps ? gl[t * LDS + x] - gsx : -1e30f) : ks;
          aa[m] = fma(kl[t * LDS + x], kse, aa[m]);
          pp[m] = fma(ql[t * LDS + x], kse, pp[m]);
        }
      }
      barrier(CLK_LOCAL_MEM_FENCE);
    }
#ifdef KILN_PTX
#pragma unroll
#endif
    for (int m = 0; m < C / 2; ++m) {
      const int t = pt + 2 * m, s = ps;
      const float e = kda ? 1.0f : exp(t >= s ? gg[t] - gg[s] : -1e30f);
      Al[t * LDA + s] = s < t ? bl[t] * aa[m] * e : 0.0f;
      Pw[t * C + s] = s <= t ? pp[m] * e : 0.0f;
    }
  }

  // c. Tm = (I + A)^-1: row t from the rows above it,
  // Tm[t][s] = -A[t][s] - sum_{s<r<t} A[t][r] Tm[r][s].
  __local float* Tm = R;
  __local float* X = R + C * LDA;
  for (int e = lid; e < C * LDA; e += WG) Tm[e] = (e / LDA == e % LDA) ? 1.0f : 0.0f;
  barrier(CLK_LOCAL_MEM_FENCE);
  for (int t = 1; t < Tc; ++t) {
    if (lid < t) {
      const int s = lid;
      float acc = -Al[t * LDA + s];
      for (int r = s + 1; r < t; ++r) acc = fma(-Al[t * LDA + r], Tm[r * LDA + s], acc);
      Tm[t * LDA + s] = acc;
    }
    barrier(CLK_LOCAL_MEM_FENCE);
  }

  // d. W = Tm (beta exp(G) k) and U = Tm (beta v), a slice of SL columns at a
  // time (the K columns of W, then the V of U); Qg, Kr and gam on the way.
  const int nkb = (K + SL - 1) / SL, nvb = (V + SL - 1) / SL;
  for (int blk = 0; blk < nkb + nvb; ++blk) {
    const bool isk = blk < nkb;
    const int c0 = (isk ? blk : blk - nkb) * SL, ncol = isk ? K : V;
    for (int e = lid; e < C * SL; e += WG) {
      const int s = e / SL, x = e % SL, col = c0 + x;
      float xv = 0.0f;
      if (isk && col < K) {
        const int gc = kda ? col : 0;
        const float G = Gw[s * K + gc], Gl = Gw[(C - 1) * K + gc];
        const bool ok = s < Tc;
        const float kv = ok ? ld(k, kdt, kb + (long)s * kst.y + col) * rk[s] : 0.0f;
        const float qv = ok ? ld(q, qdt, qb + (long)s * qs.y + col) * rq[s] : 0.0f;
        xv = bl[s] * exp(G) * kv;
        Qw[s * K + col] = exp(G) * qv;
        Krw[s * K + col] = exp(Gl - G) * kv;
        if (s == 0) gamw[col] = exp(Gl);
      } else if (!isk && col < V && s < Tc) {
        xv = bl[s] * ld(v, vdt, vb + (long)s * vst.y + col);
      }
      X[s * LDS + x] = xv;
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    const int x = lid % SL, col = c0 + x;
    if (col < ncol) {
      __global float* dst = isk ? Ww : Uw;
      for (int t = lid / SL; t < C; t += WG / SL) {
        float acc = 0.0f;
        for (int s = 0; s <= t; ++s) acc = fma(Tm[t * LDA + s], X[s * LDS + x], acc);
        dst[t * ncol + col] = acc;
      }
    }
    barrier(CLK_LOCAL_MEM_FENCE);
  }
}

// final_state may alias state: a work-group reads its whole slice before the
// first chunk and writes the same elements after the last.
__kernel __attribute__((reqd_work_group_size(WG, 1, 1)))
void gdn_chunk_state(gout out, long o_off, int odt, __global const float* ws, __global const float* state, long s_off,
                     int4 ss, int has_state, __global float* fstate, long f_off, int T, int Hv, int K, int V, int c0,
                     int NC, float scale) {
  __local float Sl[KMAX * VC];
  __local float dl[C * VC], hl[C * VC];
  const int lid = get_local_id(0);
  const int ncb = (V + VC - 1) / VC;
  const int g0 = get_group_id(0);
  const int cb = g0 % ncb, hv = (g0 / ncb) % Hv, b = g0 / ncb / Hv;
  const int col = lid % VC, grp = lid / VC;
  const int j = cb * VC + col;
  const bool jv = j < V;
  for (int i = grp; i < K; i += TG) {
    Sl[i * VC + col] = (has_state && jv)
                           ? state[s_off + (long)b * ss.x + (long)hv * ss.y + (long)i * ss.z + (long)j * ss.w]
                           : 0.0f;
  }
  barrier(CLK_LOCAL_MEM_FENCE);
  for (int c = 0; c < NC; ++c) {
    const int t0 = (c0 + c) * C;
    const int Tc = min(C, T - t0);
    __global const float* W = ws + ((long)(b * Hv + hv) * NC + c) * slot_floats(K, V) + C * K;
    __global const float* Qg = W + C * K;
    __global const float* Kr = W + 2 * C * K;
    __global const float* U = W + 3 * C * K;
    __global const float* P = U + C * V;
    __global const float* gam = P + C * C;
    // d = U - W S0 and h = Qg S0 (the rows of tokens t = grp + TG n).
    for (int t = grp; t < Tc; t += TG) {
      float dw = 0.0f, hq = 0.0f;
      for (int i = 0; i < K; ++i) {
        const float sv = Sl[i * VC + col];
        dw = fma(W[t * K + i], sv, dw);
        hq = fma(Qg[t * K + i], sv, hq);
      }
      dl[t * VC + col] = jv ? U[t * V + j] - dw : 0.0f;
      hl[t * VC + col] = hq;
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    // o = scale (h + P d).
    for (int t = grp; t < Tc; t += TG) {
      float acc = hl[t * VC + col];
      for (int s = 0; s <= t; ++s) acc = fma(P[t * C + s], dl[s * VC + col], acc);
      if (jv) st(out, odt, o_off + (((long)b * T + t0 + t) * Hv + hv) * V + j, scale * acc);
    }
    // S = gam * S0 + Kr^T d (key rows i = grp + TG n; S0 was read by all
    // before the barrier above).
    for (int i = grp; i < K; i += TG) {
      float acc = gam[i] * Sl[i * VC + col];
      for (int s = 0; s < Tc; ++s) acc = fma(Kr[s * K + i], dl[s * VC + col], acc);
      Sl[i * VC + col] = acc;
    }
    barrier(CLK_LOCAL_MEM_FENCE);
  }
  for (int i = grp; i < K; i += TG) {
    if (jv) fstate[f_off + (((long)b * Hv + hv) * K + i) * V + j] = Sl[i * VC + col];
  }
}
