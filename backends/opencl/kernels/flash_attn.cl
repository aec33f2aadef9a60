// flash_attn (docs/OPS.md), tiled for every query length.
//
// A work-group takes a block of QR query rows of one batch row and one KV
// head: rows are (query i, query head h) pairs with the G = Hq/Hkv heads
// that share the KV head consecutive, so GQA heads share each K/V tile read
// (decode: QR = G, one query per block). It walks the keys of its split of
// the KV length (get_group_id(1)) in tiles of BC keys: first the tile's mask
// values (and causal limits) for its rows; a tile masked for every row is
// skipped without reading K or V. Live tiles are loaded into local memory
// (zero-padded to the bucket D), scores and an online softmax follow, and a
// masked (p == 0) cell never multiplies V, so NaN in unwritten cache cells
// cannot reach the output. With one split the work-group writes the output;
// with several, it writes (o, m, l) partials and flash_attn_merge
// (flash_attn_merge.cl) combines them (and the sinks).
//
// -D D (bucket >= Dk, Dv), QR (rows per block), BC (keys per tile).
#define WG 128
#define OACC (QR * D / WG)
#define NLD4 (BC * D / 4 / WG)  // float4 loads per work-item per K (and V) tile

inline float ld_kv(gin p, int dt, long base, int d) {
  return dt == DT_Q8 ? ld_q8(p, base, d) : ld(p, dt, base + d);
}
inline float4 ld4(gin p, int dt, long i) {
  if (dt == DT_F32) return vload4(0, (__global const float*)p + i);
  if (dt == DT_F16) return vload_half4(0, (__global const half*)p + i);
  return as_float4(convert_uint4(vload4(0, (__global const ushort*)p + i)) << 16);
}
inline float alibi_slope(int h, float max_bias, int n) {
  if (max_bias <= 0.0f) return 1.0f;
  return h < n ? exp2(-max_bias / n * (h + 1)) : exp2(-max_bias / (2 * n) * (2 * (h - n) + 1));
}

__kernel __attribute__((reqd_work_group_size(WG, 1, 1)))
void flash_attn(gout out, long o_off, int odt, gin q, long q_off, int4 qs, int qdt, gin k, long k_off, int4 ks,
                int kdt, gin v, long v_off, int4 vs, int vdt, gin mask, long m_off, int4 ms, int mdt, int has_mask,
                gin sinks, long s_off, int has_sinks, __global float* part, int B, int Sq, int Skv, int Hq, int Hkv,
                int dk, int dv, float scale, float softcap, float max_bias, int n_alibi, int causal, int nsplit,
                int split_len, int n_rowblocks, int vec4) {
  __local float Qs[QR][D];
  __local float Ks[BC][D + 1];
  __local float Vs[BC][D];
  __local float S[QR][BC];
  __local float row_m[QR], row_l[QR], row_alpha[QR];
  __local int live;

  const int lid = get_local_id(0);
  const int g0 = get_group_id(0);
  const int rb = g0 % n_rowblocks;
  const int kvh = (g0 / n_rowblocks) % Hkv;
  const int b = g0 / n_rowblocks / Hkv;
  const int split = get_group_id(1);
  const int G = Hq / Hkv;
  const int causal_shift = Skv - Sq;

  for (int e = lid; e < QR * D; e += WG) {
    const int r = e / D, d = e % D;
    const int rr = rb * QR + r, i = rr / G, h = kvh * G + rr % G;
    Qs[r][d] = (i < Sq && d < dk) ? ld(q, qdt, q_off + (long)b * qs.x + (long)i * qs.y + (long)h * qs.z + d) : 0.0f;
  }
  if (lid < QR) {
    row_m[lid] = -INFINITY;
    row_l[lid] = 0.0f;
  }
  float o[OACC];
  for (int x = 0; x < OACC; ++x) o[x] = 0.0f;

  const int i_max = min(Sq - 1, (rb * QR + QR - 1) / G);
  int j_begin = split * split_len;
  int j_end = min(Skv, j_begin + split_len);
  if (causal) j_end = min(j_end, i_max + causal_shift + 1);
  barrier(CLK_LOCAL_MEM_FENCE);

  for (int j0 = j_begin; j0 < j_end; j0 += BC) {
    const int nk = min(BC, j_end - j0);
    if (lid == 0) live = 0;
    barrier(CLK_LOCAL_MEM_FENCE);
    // Mask values of the tile (-inf: masked, invalid row or key).
    for (int e = lid; e < QR * BC; e += WG) {
      const int r = e / BC, c = e % BC, j = j0 + c;
      const int rr = rb * QR + r, i = rr / G, h = kvh * G + rr % G;
      float mv = -INFINITY;
      if (i < Sq && c < nk && !(causal && j > i + causal_shift)) {
        mv = has_mask ? ld(mask, mdt, m_off + (long)b * ms.x + (long)h * ms.y + (long)i * ms.z + (long)j * ms.w) : 0.0f;
      }
      S[r][c] = mv;
      if (mv != -INFINITY) live = 1;
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    const int tile_live = live;
    if (!tile_live) continue;  // uniform: every work-item read the same flag
    if (vec4) {
      // 4 values per load (f32/f16/bf16 with Dk, Dv multiples of 4); all of
      // a work-item's loads are issued before any is stored, so the tile's
      // memory latency is paid once, not once per load.
      float4 kr[NLD4], vr[NLD4];
#pragma unroll
      for (int x = 0; x < NLD4; ++x) {
        const int e = lid + WG * x;
        const int c = (4 * e) / D, d = (4 * e) % D;
        const bool kin = c < nk && d < dk, vin = c < nk && d < dv;
        const long j = j0 + (c < nk ? c : 0);
        const long kb = k_off + (long)b * ks.x + j * ks.y + (long)kvh * ks.z + (kin ? d : 0);
        const long vb = v_off + (long)b * vs.x + j * vs.y + (long)kvh * vs.z + (vin ? d : 0);
        kr[x] = ld4(k, kdt, kb);
        vr[x] = ld4(v, vdt, vb);
        if (!kin) kr[x] = (float4)(0.0f);
        if (!vin) vr[x] = (float4)(0.0f);
      }
#pragma unroll
      for (int x = 0; x < NLD4; ++x) {
        const int e = lid + WG * x;
        const int c = (4 * e) / D, d = (4 * e) % D;
        Ks[c][d] = kr[x].x; Ks[c][d + 1] = kr[x].y; Ks[c][d + 2] = kr[x].z; Ks[c][d + 3] = kr[x].w;
        vstore4(vr[x], 0, &Vs[c][d]);
      }
    } else {
      for (int e = lid; e < BC * D; e += WG) {
        const int c = e / D, d = e % D;
        const long j = j0 + c;
        const long kb = k_off + (long)b * ks.x + j * ks.y + (long)kvh * ks.z;
        const long vb = v_off + (long)b * vs.x + j * vs.y + (long)kvh * vs.z;
        Ks[c][d] = (c < nk && d < dk) ? ld_kv(k, kdt, kb, d) : 0.0f;
        Vs[c][d] = (c < nk && d < dv) ? ld_kv(v, vdt, vb, d) : 0.0f;
      }
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int e = lid; e < QR * BC; e += WG) {
      const int r = e / BC, c = e % BC;
      const float mv = S[r][c];
      if (mv != -INFINITY) {
        float acc = 0.0f;
        for (int d = 0; d < D; ++d) acc = fma(Qs[r][d], Ks[c][d], acc);
        float s = scale * acc;
        if (softcap > 0.0f) s = softcap * tanh(s / softcap);
        const int h = kvh * G + (rb * QR + r) % G;
        S[r][c] = s + alibi_slope(h, max_bias, n_alibi) * mv;
      }
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    if (lid < QR) {
      const int r = lid;
      float mt = -INFINITY;
      for (int c = 0; c < BC; ++c) mt = fmax(mt, S[r][c]);
      const float m_old = row_m[r];
      const float m_new = fmax(m_old, mt);
      const float alpha = m_new == -INFINITY ? 1.0f : exp(m_old - m_new);
      float lsum = 0.0f;
      for (int c = 0; c < BC; ++c) {
        const float sv = S[r][c];
        const float p = (sv == -INFINITY || m_new == -INFINITY) ? 0.0f : exp(sv - m_new);
        S[r][c] = p;
        lsum += p;
      }
      row_l[r] = row_l[r] * alpha + lsum;
      row_m[r] = m_new;
      row_alpha[r] = alpha;
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int x = 0; x < OACC; ++x) {
      const int e = lid + WG * x, r = e / D, d = e % D;
      float acc = o[x] * row_alpha[r];
      for (int c = 0; c < BC; ++c) {
        const float p = S[r][c];
        acc += p != 0.0f ? p * Vs[c][d] : 0.0f;
      }
      o[x] = acc;
    }
    barrier(CLK_LOCAL_MEM_FENCE);
  }

  for (int x = 0; x < OACC; ++x) {
    const int e = lid + WG * x, r = e / D, d = e % D;
    const int rr = rb * QR + r, i = rr / G, h = kvh * G + rr % G;
    if (i >= Sq || d >= dv) continue;
    const float m = row_m[r], l = row_l[r];
    if (nsplit == 1) {
      const float sink = has_sinks ? ((__global const float*)sinks)[s_off + h] : -INFINITY;
      const float val = fa_normalize(o[x], l, m, has_sinks, sink);
      st(out, odt, o_off + (((long)b * Sq + i) * Hq + h) * dv + d, val);
    } else {
      const long P = ((((long)split * B + b) * Sq + i) * Hq + h) * (D + 2);
      part[P + d] = o[x];
      if (d == 0) {
        part[P + D] = m;
        part[P + D + 1] = l;
      }
    }
  }
}
