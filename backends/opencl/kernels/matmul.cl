// Matrix products into a contiguous f32 output:
//   gemm: Y[z][m][n] = sum_k A(z,m,k) B(z,k,n) (+ bias[n]), 64x64 output tiles
//         through local memory (16x16 work-items, 4x4 outputs each);
//   gemv: linear for a few rows of x (decode): one work-group per output
//         column n reads W's row n once, 8 values per load, for all rows.
// A's rows are addressed through row dims/strides (linear: every outer dim
// of x is a row); B is W^T for linear (q8_0: element (k,n) in W's row n at
// byte offset b_off + n*b_sn).
#define TM 64
#define TN 64
#define TK 16

inline float ld_b(gin b, int bdt, long b_off, long sk, long sn, int k, int n) {
  if (bdt == DT_Q8) return ld_q8(b, b_off + (long)n * sn, k);
  return ld(b, bdt, b_off + (long)k * sk + (long)n * sn);
}

__kernel __attribute__((reqd_work_group_size(16, 16, 1)))
void gemm(__global float* y, long y_off, gin a, long a_off, int4 a_rdims, int4 a_rstr, int a_sk, long a_z0, long a_z1, int adt,
          gin b, long b_off, long b_sk, long b_sn, long b_z0, long b_z1, int bdt, int b_kfast, int nz1,
          gin bias, long bias_off, int has_bias, int M, int N, int K) {
  __local float As[TK][TM + 1];
  __local float Bs[TK][TN + 1];
  const int tx = get_local_id(0), ty = get_local_id(1);
  const int lid = ty * 16 + tx;
  const int n0 = get_group_id(0) * TN, m0 = get_group_id(1) * TM;
  const int z = get_group_id(2);
  const int z0 = z / nz1, z1 = z % nz1;
  const long ab = a_off + z0 * a_z0 + z1 * a_z1;
  const long bb = b_off + z0 * b_z0 + z1 * b_z1;
  float acc[4][4];
  for (int i = 0; i < 4; ++i)
    for (int j = 0; j < 4; ++j) acc[i][j] = 0.0f;
  // Row offsets of the 4 A rows this work-item loads (fixed over k).
  for (int k0 = 0; k0 < K; k0 += TK) {
    for (int r = 0; r < 4; ++r) {
      const int e = lid + 256 * r;
      const int mm = e / TK, kk = e % TK;
      const int m = m0 + mm, k = k0 + kk;
      As[kk][mm] = (m < M && k < K) ? ld(a, adt, ab + dot4(unravel(m, a_rdims), a_rstr) + (long)k * a_sk) : 0.0f;
      int nn, kb;
      if (b_kfast) { nn = e / TK; kb = e % TK; } else { nn = e % TN; kb = e / TN; }
      const int n = n0 + nn, kq = k0 + kb;
      Bs[kb][nn] = (n < N && kq < K) ? ld_b(b, bdt, bb, b_sk, b_sn, kq, n) : 0.0f;
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int kk = 0; kk < TK; ++kk) {
      float av[4], bv[4];
      for (int i = 0; i < 4; ++i) av[i] = As[kk][ty + 16 * i];
      for (int j = 0; j < 4; ++j) bv[j] = Bs[kk][tx + 16 * j];
      for (int i = 0; i < 4; ++i)
        for (int j = 0; j < 4; ++j) acc[i][j] = fma(av[i], bv[j], acc[i][j]);
    }
    barrier(CLK_LOCAL_MEM_FENCE);
  }
  for (int i = 0; i < 4; ++i) {
    const int m = m0 + ty + 16 * i;
    if (m >= M) continue;
    for (int j = 0; j < 4; ++j) {
      const int n = n0 + tx + 16 * j;
      if (n >= N) continue;
      float v = acc[i][j];
      if (has_bias) v += ((__global const float*)bias)[bias_off + n];
      y[y_off + ((long)z * M + m) * N + n] = v;
    }
  }
}

#ifndef WDT
#define WDT DT_F16
#endif
#ifndef XDT
#define XDT DT_F32  // x's dtype: compile-time too, so the inner loop has no branch
#endif
#define GWG 128
#define MAXM 4

inline float8 ld8(gin p, int dt, long i) {
  if (dt == DT_F32) return vload8(0, (__global const float*)p + i);
  if (dt == DT_F16) return vload_half8(0, (__global const half*)p + i);
  const ushort8 u = vload8(0, (__global const ushort*)p + i);
  return as_float8(convert_uint8(u) << 16);
}
inline float dot8(float8 a, float8 b) {
  return dot(a.lo.lo, b.lo.lo) + dot(a.lo.hi, b.lo.hi) + dot(a.hi.lo, b.hi.lo) + dot(a.hi.hi, b.hi.hi);
}

__kernel __attribute__((reqd_work_group_size(GWG, 1, 1)))
void gemv(__global float* y, long y_off, gin x, long x_off, int4 x_rdims, int4 x_rstr, int xdt_unused, gin w, long w_off, long w_row,
          gin bias, long bias_off, int has_bias, int M, int N, int K) {
  __local float red[MAXM][GWG];
  const int n = get_group_id(0);
  const int l = get_local_id(0);
  long xr[MAXM];
  for (int m = 0; m < MAXM; ++m) xr[m] = m < M ? x_off + dot4(unravel(m, x_rdims), x_rstr) : 0;
  float acc[MAXM];
  for (int m = 0; m < MAXM; ++m) acc[m] = 0.0f;
#if WDT == DT_Q8
  const long row = w_off + (long)n * w_row;
  for (int blk = l; blk < K / 32; blk += GWG) {
    const long base = row + (long)blk * 34;
    const float d = vload_half(0, (__global const half*)(w + base));
    const float16 q0 = convert_float16(vload16(0, (__global const char*)(w + base + 2)));
    const float16 q1 = convert_float16(vload16(0, (__global const char*)(w + base + 18)));
    for (int m = 0; m < MAXM; ++m) {
      if (m >= M) continue;
      const long k = xr[m] + blk * 32;
      const float s = dot8(q0.lo, ld8(x, XDT, k)) + dot8(q0.hi, ld8(x, XDT, k + 8)) +
                      dot8(q1.lo, ld8(x, XDT, k + 16)) + dot8(q1.hi, ld8(x, XDT, k + 24));
      acc[m] += d * s;
    }
  }
#else
  const long row = w_off + (long)n * w_row;
  const int K8 = K & ~7;
  // Unrolled so that several 16-byte loads of W are in flight per work-item.
#pragma unroll 4
  for (int k = l * 8; k < K8; k += GWG * 8) {
    const float8 wv = ld8(w, WDT, row + k);
    for (int m = 0; m < MAXM; ++m) {
      if (m >= M) continue;
      acc[m] += dot8(wv, ld8(x, XDT, xr[m] + k));
    }
  }
  for (int k = K8 + l; k < K; k += GWG) {
    const float wv = ld(w, WDT, row + k);
    for (int m = 0; m < MAXM; ++m) {
      if (m >= M) continue;
      acc[m] += wv * ld(x, XDT, xr[m] + k);
    }
  }
#endif
  for (int m = 0; m < MAXM; ++m) red[m][l] = acc[m];
  barrier(CLK_LOCAL_MEM_FENCE);
  for (int s = GWG / 2; s > 0; s >>= 1) {
    if (l < s)
      for (int m = 0; m < MAXM; ++m) red[m][l] += red[m][l + s];
    barrier(CLK_LOCAL_MEM_FENCE);
  }
  if (l < M) {
    float v = red[l][0];
    if (has_bias) v += ((__global const float*)bias)[bias_off + n];
    y[y_off + (long)l * N + n] = v;
  }
}
