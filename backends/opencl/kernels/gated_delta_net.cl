// gated_delta_net (docs/OPS.md), fused recurrent: one work-group per (batch
// row, value head, block of VC value columns) keeps its K x VC slice of the
// state in registers for all T tokens (KSPLIT work-items per column, RPT key
// rows each), so the state is read and written once. Per token, one
// local-memory reduction gives u = S^T k and w = S^T q of the decayed state
// and the norms of q and k (each work-item sums only its RPT rows); the
// output uses S'^T q = w + d (k.q), so the update needs no second
// reduction. final_state may alias state: each work-item reads its elements
// before the loop and writes the same ones after it.
//
// -D KB (bucket >= K: 32, 64, 128, 256).
#ifndef VC
#define VC 16  // value columns per work-group
#endif
#define KSPLIT (128 / VC)  // work-items per column
#define WG (VC * KSPLIT)
#define RPT (KB / KSPLIT)  // key rows per work-item

__kernel __attribute__((reqd_work_group_size(WG, 1, 1)))
void gdn_recurrent(gout out, long o_off, gin q, long q_off, int4 qs, int qdt, gin k, long k_off, int4 kst, int kdt,
                   gin v, long v_off, int4 vst, int vdt, __global const float* g, long g_off, int4 gs, int kda,
                   __global const float* beta, long be_off, int4 bes, __global const float* state, long s_off,
                   int4 ss, int has_state, __global float* fstate, long f_off, int B, int T, int Hk, int Hv, int K,
                   int V, float scale, int l2norm, int tiled) {
  __local float qv[KB], kv[KB], gk[KB];
  __local float red[5][KSPLIT][VC];  // u, w and the three norms' partials
  const int lid = get_local_id(0);
  const int ncb = (V + VC - 1) / VC;
  const int g0 = get_group_id(0);
  const int cb = g0 % ncb, hv = (g0 / ncb) % Hv, b = g0 / ncb / Hv;
  const int kh = tiled ? hv % Hk : hv / (Hv / Hk);
  const int col = lid % VC, ksi = lid / VC;
  const int j = cb * VC + col;
  const bool jv = j < V;

  float s[RPT];
#pragma unroll
  for (int r = 0; r < RPT; ++r) {
    const int i = ksi * RPT + r;
    s[r] = (has_state && jv && i < K)
               ? state[s_off + (long)b * ss.x + (long)hv * ss.y + (long)i * ss.z + (long)j * ss.w]
               : 0.0f;
  }
  for (int t = 0; t < T; ++t) {
    const long qb = q_off + (long)b * qs.x + (long)t * qs.y + (long)kh * qs.z;
    const long kb = k_off + (long)b * kst.x + (long)t * kst.y + (long)kh * kst.z;
    const long gb = g_off + (long)b * gs.x + (long)t * gs.y + (long)hv * gs.z;
    for (int e = lid; e < KB; e += WG) {
      qv[e] = e < K ? ld(q, qdt, qb + e) : 0.0f;
      kv[e] = e < K ? ld(k, kdt, kb + e) : 0.0f;
      if (kda) gk[e] = e < K ? exp(g[gb + (long)e * gs.w]) : 1.0f;
    }
    // Loaded now, used after the reduction: their latency overlaps it.
    const float bt = beta[be_off + (long)b * bes.x + (long)t * bes.y + (long)hv * bes.z];
    const float vj = jv ? ld(v, vdt, v_off + (long)b * vst.x + (long)t * vst.y + (long)hv * vst.z + j) : 0.0f;
    const float decay = kda ? 1.0f : exp(g[gb]);
    barrier(CLK_LOCAL_MEM_FENCE);
    // u = S^T k and w = S^T q of the decayed state, and |q|^2, |k|^2, k.q,
    // each as KSPLIT partial sums over this work-item's key rows.
    float up = 0.0f, wp = 0.0f, nq = 0.0f, nk = 0.0f, kq = 0.0f;
#pragma unroll
    for (int r = 0; r < RPT; ++r) {
      const int i = ksi * RPT + r;
      const float ki = kv[i], qi = qv[i];
      s[r] *= kda ? gk[i] : decay;
      up = fma(s[r], ki, up);
      wp = fma(s[r], qi, wp);
      nq = fma(qi, qi, nq);
      nk = fma(ki, ki, nk);
      kq = fma(ki, qi, kq);
    }
    red[0][ksi][col] = up;
    red[1][ksi][col] = wp;
    if (col == 0) {
      red[2][ksi][0] = nq;
      red[3][ksi][0] = nk;
      red[4][ksi][0] = kq;
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    float rq = 1.0f, rk = 1.0f;
    {
      float sq = 0.0f, sk = 0.0f;
      for (int x = 0; x < KSPLIT; ++x) {
        sq += red[2][x][0];
        sk += red[3][x][0];
      }
      if (l2norm) {
        rq = 1.0f / sqrt(sq + 1e-6f);
        rk = 1.0f / sqrt(sk + 1e-6f);
      }
    }
    // Every work-item of the column sums u itself (no second barrier for a
    // broadcast); one writes the output.
    float u = 0.0f;
    for (int x = 0; x < KSPLIT; ++x) u += red[0][x][col];
    const float dl = bt * (vj - u * rk);
    if (ksi == 0) {
      float w = 0.0f, kqs = 0.0f;
      for (int x = 0; x < KSPLIT; ++x) {
        w += red[1][x][col];
        kqs += red[4][x][0];
      }
      if (jv) st(out, vdt, o_off + (((long)b * T + t) * Hv + hv) * V + j, scale * (w * rq + dl * kqs * rq * rk));
    }
    const float d = dl * rk;
#pragma unroll
    for (int r = 0; r < RPT; ++r) s[r] = fma(kv[ksi * RPT + r], d, s[r]);
    // red, qv and kv are the next token's (none after the last).
    if (t + 1 < T) barrier(CLK_LOCAL_MEM_FENCE);
  }
#pragma unroll
  for (int r = 0; r < RPT; ++r) {
    const int i = ksi * RPT + r;
    if (jv && i < K) fstate[f_off + (((long)b * Hv + hv) * K + i) * V + j] = s[r];
  }
}
