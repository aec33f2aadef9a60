// gated_delta_net (docs/OPS.md), fused recurrent: one work-group per (batch
// row, value head, block of VC value columns) keeps its K x VC slice of the
// state in registers for all T tokens (KSPLIT work-items per column, RPT key
// rows each), so the state is read and written once. Per token, one
// local-memory reduction gives both u = S^T k and w = S^T q of the decayed
// state; the output uses S'^T q = w + d (k.q), so the update needs no second
// reduction. final_state may alias state: each work-item reads its elements
// before the loop and writes the same ones after it.
//
// -D KB (bucket >= K: 32, 64, 128, 256).
#define VC 32
#define KSPLIT 4
#define WG (VC * KSPLIT)
#define RPT (KB / KSPLIT)

__kernel __attribute__((reqd_work_group_size(WG, 1, 1)))
void gdn_recurrent(gout out, long o_off, gin q, long q_off, int4 qs, int qdt, gin k, long k_off, int4 kst, int kdt,
                   gin v, long v_off, int4 vst, int vdt, __global const float* g, long g_off, int4 gs, int kda,
                   __global const float* beta, long be_off, int4 bes, __global const float* state, long s_off,
                   int4 ss, int has_state, __global float* fstate, long f_off, int B, int T, int Hk, int Hv, int K,
                   int V, float scale, int l2norm, int tiled) {
  __local float qv[KB], kv[KB], gk[KB];
  __local float red_u[KSPLIT][VC], red_w[KSPLIT][VC];
  __local float dcol[VC];
  const int lid = get_local_id(0);
  const int ncb = (V + VC - 1) / VC;
  const int g0 = get_group_id(0);
  const int cb = g0 % ncb, hv = (g0 / ncb) % Hv, b = g0 / ncb / Hv;
  const int kh = tiled ? hv % Hk : hv / (Hv / Hk);
  const int col = lid % VC, ksi = lid / VC;
  const int j = cb * VC + col;
  const bool jv = j < V;

  float s[RPT];
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
    barrier(CLK_LOCAL_MEM_FENCE);
    float rq = 1.0f, rk = 1.0f, kq = 0.0f;
    {
      float nq = 0.0f, nk = 0.0f;
      for (int i = 0; i < KB; ++i) {
        nq = fma(qv[i], qv[i], nq);
        nk = fma(kv[i], kv[i], nk);
        kq = fma(kv[i], qv[i], kq);
      }
      if (l2norm) {
        rq = 1.0f / sqrt(nq + 1e-6f);
        rk = 1.0f / sqrt(nk + 1e-6f);
      }
    }
    const float decay = kda ? 1.0f : exp(g[gb]);
    float up = 0.0f, wp = 0.0f;
    for (int r = 0; r < RPT; ++r) {
      const int i = ksi * RPT + r;
      s[r] *= kda ? gk[i] : decay;
      up = fma(s[r], kv[i], up);
      wp = fma(s[r], qv[i], wp);
    }
    red_u[ksi][col] = up * rk;
    red_w[ksi][col] = wp * rq;
    barrier(CLK_LOCAL_MEM_FENCE);
    if (ksi == 0) {
      float u = 0.0f, w = 0.0f;
      for (int x = 0; x < KSPLIT; ++x) {
        u += red_u[x][col];
        w += red_w[x][col];
      }
      const float bt = beta[be_off + (long)b * bes.x + (long)t * bes.y + (long)hv * bes.z];
      const float vj = jv ? ld(v, vdt, v_off + (long)b * vst.x + (long)t * vst.y + (long)hv * vst.z + j) : 0.0f;
      const float d = bt * (vj - u);
      dcol[col] = d;
      if (jv) st(out, vdt, o_off + (((long)b * T + t) * Hv + hv) * V + j, scale * (w + d * kq * rq * rk));
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    const float d = dcol[col] * rk;
    for (int r = 0; r < RPT; ++r) s[r] = fma(kv[ksi * RPT + r], d, s[r]);
    barrier(CLK_LOCAL_MEM_FENCE);
  }
  for (int r = 0; r < RPT; ++r) {
    const int i = ksi * RPT + r;
    if (jv && i < K) fstate[f_off + (((long)b * Hv + hv) * K + i) * V + j] = s[r];
  }
}
