// Matrix products into a contiguous f32 output:
//   gemm: Y[z][m][n] = sum_k A(z,m,k) B(z,k,n) (+ bias[n]), 64x64 output tiles
//         through local memory (16x16 work-items, 4x4 outputs each);
//   gemv: linear for a few rows of x (decode): W read once, GR rows of it
//         per work-group, 16-byte loads where aligned, for all rows of x.
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
#ifndef VEC
#define VEC 0  // 1: W and x rows 16-byte aligned, K a multiple of 8 (the host checked)
#endif
#ifndef GR
#define GR 4  // rows of W (outputs) per work-group
#endif
#define GWG 128
#define TPR (GWG / GR)  // work-items per row of W
#ifndef MAXM
#define MAXM 4  // rows of x (the host sets 8 for 5-8 rows: more registers)
#endif
#define GU 8    // 8-element loads of W per work-item issued together
#define GU2 16  // the same for 2-byte weights held raw (VEC)
#define QCB 128  // q8_0 blocks of a row staged at a time (a multiple of 8: whole 16-byte pieces)
#ifndef QVEC
#define QVEC 0
#endif

// 8 elements from element i. VEC: one 16-byte load (two for f32) from an
// address the host checked is aligned; otherwise vload (element alignment).
inline float8 ld8(gin p, int dt, long i) {
#if VEC
  if (dt == DT_F32) {
    const __global float4* f = (const __global float4*)(p + 4 * i);
    return (float8)(f[0], f[1]);
  }
  const uint4 u = *(const __global uint4*)(p + 2 * i);
  return dt == DT_F16 ? h2f8(u) : b2f8(u);
#else
  if (dt == DT_F32) return vload8(0, (__global const float*)p + i);
  if (dt == DT_F16) return vload_half8(0, (__global const half*)p + i);
  const ushort8 u = vload8(0, (__global const ushort*)p + i);
  return as_float8(convert_uint8(u) << 16);
#endif
}
inline float dot8(float8 a, float8 b) {
  return dot(a.lo.lo, b.lo.lo) + dot(a.lo.hi, b.lo.hi) + dot(a.hi.lo, b.hi.lo) + dot(a.hi.hi, b.hi.hi);
}

// GEMV: GR rows of W per work-group, TPR consecutive work-items per row
// (consecutive 16-byte pieces of it), GU loads each in flight; the partial
// sums of a row meet in one local reduction.
__kernel __attribute__((reqd_work_group_size(GWG, 1, 1)))
void gemv(__global float* y, long y_off, gin x, long x_off, int4 x_rdims, int4 x_rstr, int xdt_unused, gin w, long w_off, long w_row,
          gin bias, long bias_off, int has_bias, int M, int N, int K) {
  __local float red[MAXM * GR][TPR + 1];
#if WDT == DT_Q8
  __local uint4 wq[GR][QCB * 34 / 16];  // QCB blocks of each row
#endif
  const int l = get_local_id(0);
  const int r = l / TPR, t = l % TPR;
  const int n = get_group_id(0) * GR + r;
  const bool nv = n < N;
  const long row = w_off + (long)(nv ? n : 0) * w_row;
  long xr[MAXM];
#pragma unroll
  for (int m = 0; m < MAXM; ++m) xr[m] = m < M ? x_off + dot4(unravel(m, x_rdims), x_rstr) : 0;
  float acc[MAXM];
#pragma unroll
  for (int m = 0; m < MAXM; ++m) acc[m] = 0.0f;
#if WDT == DT_Q8
  // The GR rows' q8_0 blocks go through local memory QCB blocks at a time:
  // the work-group reads them as consecutive 16-byte pieces (QVEC: rows
  // 16-byte aligned and QCB-chunks whole 16-byte pieces, checked by the
  // host; otherwise bytes), then each work-item decodes whole blocks (a
  // 34-byte block is only 2-byte aligned, so direct wide loads are not
  // possible).
  const int nb = K / 32;
  __local uchar* wb = (__local uchar*)wq;
  for (int cb0 = 0; cb0 < nb; cb0 += QCB) {
    const int nbytes = min(QCB, nb - cb0) * 34;
#if QVEC
    const int n16 = nbytes / 16;
    for (int e = l; e < GR * n16; e += GWG) {
      const int rr = e / n16, o = e % n16;
      const int nn = get_group_id(0) * GR + rr;
      wq[rr][o] = nn < N ? *(const __global uint4*)(w + w_off + (long)nn * w_row + (long)cb0 * 34 + 16 * o) : (uint4)(0u);
    }
#else
    for (int e = l; e < GR * nbytes; e += GWG) {
      const int rr = e / nbytes, o = e % nbytes;
      const int nn = get_group_id(0) * GR + rr;
      wb[rr * QCB * 34 + o] = nn < N ? w[w_off + (long)nn * w_row + (long)cb0 * 34 + o] : (uchar)0;
    }
#endif
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int blk = t; blk < nbytes / 34; blk += TPR) {
      const __local ushort* bp = (const __local ushort*)(wb + r * QCB * 34 + blk * 34);
      const float d = h2f(bp[0]);
      float qf[32];
      for (int i = 0; i < 16; ++i) {
        const char2 qq = as_char2(bp[1 + i]);
        qf[2 * i] = (float)qq.x;
        qf[2 * i + 1] = (float)qq.y;
      }
      const float8 q0 = (float8)(qf[0], qf[1], qf[2], qf[3], qf[4], qf[5], qf[6], qf[7]);
      const float8 q1 = (float8)(qf[8], qf[9], qf[10], qf[11], qf[12], qf[13], qf[14], qf[15]);
      const float8 q2 = (float8)(qf[16], qf[17], qf[18], qf[19], qf[20], qf[21], qf[22], qf[23]);
      const float8 q3 = (float8)(qf[24], qf[25], qf[26], qf[27], qf[28], qf[29], qf[30], qf[31]);
#pragma unroll
      for (int m = 0; m < MAXM; ++m) {
        if (m >= M) continue;
        const long k = xr[m] + (long)(cb0 + blk) * 32;
        const float s = dot8(q0, ld8(x, XDT, k)) + dot8(q1, ld8(x, XDT, k + 8)) + dot8(q2, ld8(x, XDT, k + 16)) +
                        dot8(q3, ld8(x, XDT, k + 24));
        acc[m] += d * s;
      }
    }
    barrier(CLK_LOCAL_MEM_FENCE);
  }
#else
  const int K8 = K & ~7;
  const int step = TPR * 8;
  int k = t * 8;
#if VEC && WDT != DT_F32
  // 2-byte weights: GU2 raw 16-byte pieces in flight, converted at use.
  for (; k + (GU2 - 1) * step < K8; k += GU2 * step) {
    uint4 wr[GU2];
#pragma unroll
    for (int u = 0; u < GU2; ++u) wr[u] = ld_stream((const __global uint4*)(w + 2 * (row + k + u * step)));
#pragma unroll
    for (int u = 0; u < GU2; ++u) {
      const float8 wv = WDT == DT_F16 ? h2f8(wr[u]) : b2f8(wr[u]);
#pragma unroll
      for (int m = 0; m < MAXM; ++m) {
        if (m < M) acc[m] += dot8(wv, ld8(x, XDT, xr[m] + k + u * step));
      }
    }
  }
#endif
  for (; k + (GU - 1) * step < K8; k += GU * step) {
    float8 wv[GU];
#pragma unroll
    for (int u = 0; u < GU; ++u) wv[u] = ld8(w, WDT, row + k + u * step);
#pragma unroll
    for (int m = 0; m < MAXM; ++m) {
      if (m >= M) continue;
#pragma unroll
      for (int u = 0; u < GU; ++u) acc[m] += dot8(wv[u], ld8(x, XDT, xr[m] + k + u * step));
    }
  }
  for (; k < K8; k += step) {
    const float8 wv = ld8(w, WDT, row + k);
#pragma unroll
    for (int m = 0; m < MAXM; ++m) {
      if (m >= M) continue;
      acc[m] += dot8(wv, ld8(x, XDT, xr[m] + k));
    }
  }
  for (int kk = K8 + t; kk < K; kk += TPR) {
    const float wv = ld(w, WDT, row + kk);
#pragma unroll
    for (int m = 0; m < MAXM; ++m) {
      if (m >= M) continue;
      acc[m] += wv * ld(x, XDT, xr[m] + kk);
    }
  }
#endif
#pragma unroll
  for (int m = 0; m < MAXM; ++m)
    if (m < M) red[m * GR + r][t] = acc[m];
  barrier(CLK_LOCAL_MEM_FENCE);
  if (l < M * GR) {
    const int m = l / GR, rr = l % GR, nn = get_group_id(0) * GR + rr;
    float s0 = 0.0f, s1 = 0.0f, s2 = 0.0f, s3 = 0.0f;
    for (int u = 0; u < TPR; u += 4) {
      s0 += red[l][u];
      s1 += red[l][u + 1];
      s2 += red[l][u + 2];
      s3 += red[l][u + 3];
    }
    if (nn < N) {
      float v = (s0 + s1) + (s2 + s3);
      if (has_bias) v += ((__global const float*)bias)[bias_off + nn];
      y[y_off + (long)m * N + nn] = v;
    }
  }
}
