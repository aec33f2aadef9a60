#version 450
// out[z][m][n] = sum_k A[z][m][k] * B[z][k][n] (+ bias[n]), f32 out.
// MODE 0 (GEMV, M <= 8 rows): a subgroup takes NR output columns n (weight
// rows of `linear`), reads each once for all M rows of A and loads each
// piece of A once for its NR columns; vector loads where the rows are
// contiguous and aligned (VEC; q8_0: word loads of block pairs). MODE 1:
// 64x64 tiles through shared memory, 4x4 outputs per invocation.
#extension GL_EXT_control_flow_attributes : require
#include "common.glsl"
layout(local_size_x_id = 9) in;
layout(constant_id = 0) const int MODE = 0;
layout(constant_id = 1) const int DTA = 0;
layout(constant_id = 2) const int DTB = 0;
layout(constant_id = 3) const int HAS_BIAS = 0;
layout(constant_id = 4) const int DT_BIAS = 0;
layout(constant_id = 5) const int VEC = 0;
layout(constant_id = 6) const int MROWS = 1;
// VECA: f32 A rows contiguous in k and 16-byte aligned (GEMV reads them as vectors).
layout(constant_id = 7) const int VECA = 0;
// GEMV: 16-byte weight loads per lane and column in flight.
layout(constant_id = 8) const int NV = 2;
// Invocations per workgroup (MODE 1: 256).
layout(constant_id = 9) const int WGS = 256;
// GEMV: output columns per subgroup.
layout(constant_id = 10) const int NR = 1;
// GEMV over 16-bit or f32 weights with several rows of A (VEC, VECA): A's
// rows staged through shared memory XS values of k at a time (0: not).
layout(constant_id = 11) const int XS = 0;

DECLARE_SLOT_RO(0, A)
DECLARE_SLOT_RO(1, B)
DECLARE_SLOT(2, O)
DECLARE_SLOT_RO(3, Bias)

// params: 1 M, 2 N, 3 K, 4 batch dim 1 (z = b0 * it + b1)
//         5 A: off, s_b0, s_b1, s_m, s_k   10 B: off, s_b0, s_b1, s_k, s_n
//         15 O: off, s_b0, s_b1, s_m       19 bias offset
uint zb0, zb1;
uint AAt(uint m, uint k) { return P(5) + zb0 * P(6) + zb1 * P(7) + m * P(8) + k * P(9); }
float LoadA(uint m, uint k) { uint o = AAt(m, k); return LOADF(A, DTA, o); }
float LoadB(uint k, uint n) {
  if (DTB == DT_Q8) {
    uint row = P(10) + zb0 * P(11) + zb1 * P(12) + n * P(14);
    return LOADQ8(B, row, k);
  }
  uint o = P(10) + zb0 * P(11) + zb1 * P(12) + k * P(13) + n * P(14);
  return LOADF(B, DTB, o);
}
void Store(uint m, uint n, float v) {
  if (HAS_BIAS != 0) { uint bo = P(19) + n; v += LOADF(Bias, DT_BIAS, bo); }
  O_f[P(15) + zb0 * P(16) + zb1 * P(17) + m * P(18) + n] = v;
}

shared float As[16][65];
shared float Bs[16][65];
shared vec4 xs[XS > 0 ? MROWS * XS / 4 : 1];

// 8 weights from a 16-byte piece of a 16-bit weight row.
void Unpack8(uvec4 w, out vec4 lo, out vec4 hi) {
  float f[8];
  [[unroll]] for (int j = 0; j < 4; ++j) {
    if (DTB == DT_F16) {
      const vec2 h = unpackHalf2x16(w[j]);
      f[2 * j] = h.x;
      f[2 * j + 1] = h.y;
    } else {
      f[2 * j] = uintBitsToFloat(w[j] << 16);
      f[2 * j + 1] = uintBitsToFloat(w[j] & 0xffff0000u);
    }
  }
  lo = vec4(f[0], f[1], f[2], f[3]);
  hi = vec4(f[4], f[5], f[6], f[7]);
}
// 4 int8 of a word as floats, times d.
vec4 I8x4(uint q, float d) {
  return vec4(int(q << 24) >> 24, int(q << 16) >> 24, int(q << 8) >> 24, int(q) >> 24) * d;
}
// A(m, k .. k + 3).
vec4 LoadA4(int m, uint k) {
  if (VECA != 0) return A_f4[AAt(m, k) >> 2];
  return vec4(LoadA(m, k), LoadA(m, k + 1u), LoadA(m, k + 2u), LoadA(m, k + 3u));
}

void gemv() {
  const uint M = P(1), N = P(2), K = P(3);
  const uint sg = gl_SubgroupSize;
  const uint lane = gl_SubgroupInvocationID;
  for (uint n0 = (gl_WorkGroupID.x * gl_NumSubgroups + gl_SubgroupID) * uint(NR); n0 < N;
       n0 += gl_NumWorkGroups.x * gl_NumSubgroups * uint(NR)) {
  float acc[NR][MROWS];
  uint rowB[NR];  // element (bytes for q8_0) of B(0, n); past N: the last column again, not stored
  [[unroll]] for (int r = 0; r < NR; ++r) {
    [[unroll]] for (int m = 0; m < MROWS; ++m) acc[r][m] = 0.0;
    rowB[r] = P(10) + zb0 * P(11) + zb1 * P(12) + min(n0 + uint(r), N - 1u) * P(14);
  }
  if (DTB == DT_Q8 && VEC != 0) {
    // Rows of whole pairs of blocks (68 bytes, 17 words) at word-aligned
    // starts: a lane loads a pair's 17 words of each column at once, then
    // per 4 words of int8 loads A once for the NR columns. Scales are
    // applied to the weights (one multiply each), so no per-block sums.
    const uint pairs = K / 64u;
    for (uint pi = lane; pi < pairs; pi += sg) {
      uint w[NR][17];
      [[unroll]] for (int r = 0; r < NR; ++r) {
        const uint wb = (rowB[r] >> 2) + pi * 17u;
        [[unroll]] for (int j = 0; j < 17; ++j) w[r][j] = B_u[wb + uint(j)];
      }
      [[unroll]] for (int j = 0; j < 8; ++j) {
        // Block 0's int8 run starts at byte 2, block 1's at byte 36.
        vec4 f0[NR], f1[NR];
        [[unroll]] for (int r = 0; r < NR; ++r) {
          f0[r] = I8x4((w[r][j] >> 16) | (w[r][j + 1] << 16), f16_to_f32(w[r][0] & 0xffffu));
          f1[r] = I8x4(w[r][9 + j], f16_to_f32(w[r][8] >> 16));
        }
        const uint ka = pi * 64u + uint(4 * j);
        [[unroll]] for (int m = 0; m < MROWS; ++m) {
          if (m >= int(M)) break;
          const vec4 x0 = LoadA4(m, ka), x1 = LoadA4(m, ka + 32u);
          [[unroll]] for (int r = 0; r < NR; ++r) acc[r][m] += dot(f0[r], x0) + dot(f1[r], x1);
        }
      }
    }
  } else if (DTB == DT_Q8) {
    // A lane takes whole blocks: the f16 scale and 16 pairs of int8.
    const uint blocks = K / 32u;
    for (uint bi = lane; bi < blocks; bi += sg) {
      [[unroll]] for (int r = 0; r < NR; ++r) {
        const uint bb = rowB[r] + bi * 34u;
        const float d = f16_to_f32(uint(B_h[bb >> 1]));
        for (uint j = 0; j < 16u; ++j) {
          const uint pair = uint(B_h[(bb >> 1) + 1u + j]);
          const float q0 = d * float(int(pair << 24) >> 24), q1 = d * float(int(pair << 16) >> 24);
          [[unroll]] for (int m = 0; m < MROWS; ++m) {
            if (m < int(M)) acc[r][m] += q0 * LoadA(m, bi * 32u + 2u * j) + q1 * LoadA(m, bi * 32u + 2u * j + 1u);
          }
        }
      }
    }
  } else if (VEC != 0 && DTB != DT_I32) {
    // NV 16-byte pieces of each of the NR columns per lane in flight before
    // their use; each piece of A loaded once for the NR columns.
    const uint per = DTB == DT_F32 ? 4u : 8u;  // weights per 16 bytes
    const uint chunks = K / per;
    const uint rs = DTB == DT_F32 ? 2u : 3u;   // element -> 16-byte index
    for (uint c0 = lane; c0 < chunks; c0 += uint(NV) * sg) {
      uvec4 w4[NR][NV];
      [[unroll]] for (int r = 0; r < NR; ++r) {
        [[unroll]] for (uint u = 0u; u < uint(NV); ++u) {
          const uint c = c0 + u * sg;
          w4[r][u] = c < chunks ? B_v4[(rowB[r] >> rs) + c] : uvec4(0u);
        }
      }
      [[unroll]] for (uint u = 0u; u < uint(NV); ++u) {
        const uint c = c0 + u * sg;
        if (c >= chunks) break;
        vec4 lo[NR], hi[NR];
        [[unroll]] for (int r = 0; r < NR; ++r) {
          if (DTB == DT_F32) {
            lo[r] = uintBitsToFloat(w4[r][u]);
          } else {
            Unpack8(w4[r][u], lo[r], hi[r]);
          }
        }
        [[unroll]] for (int m = 0; m < MROWS; ++m) {
          if (m >= int(M)) break;
          const vec4 x0 = LoadA4(m, c * per);
          if (DTB == DT_F32) {
            [[unroll]] for (int r = 0; r < NR; ++r) acc[r][m] += dot(lo[r], x0);
          } else {
            const vec4 x1 = LoadA4(m, c * per + 4u);
            [[unroll]] for (int r = 0; r < NR; ++r) acc[r][m] += dot(lo[r], x0) + dot(hi[r], x1);
          }
        }
      }
    }
  } else {
    for (uint k = lane; k < K; k += sg) {
      [[unroll]] for (int r = 0; r < NR; ++r) {
        const float w = LoadB(k, min(n0 + uint(r), N - 1u));
        [[unroll]] for (int m = 0; m < MROWS; ++m) {
          if (m < int(M)) acc[r][m] += w * LoadA(m, k);
        }
      }
    }
  }
  [[unroll]] for (int r = 0; r < NR; ++r) {
    [[unroll]] for (int m = 0; m < MROWS; ++m) {
      if (m >= int(M)) break;
      const float s = subgroupAdd(acc[r][m]);
      if (lane == 0u && n0 + uint(r) < N) Store(m, n0 + uint(r), s);
    }
  }
  }
}

// The GEMV with A's rows in shared memory (XS): with 8 rows of A the
// weights' loads are few but A's are many, and A (8 x K floats) does not
// stay in the L1, so every subgroup would read it from the L2 again. The
// workgroup copies XS values of each row at a time, then its subgroups
// read them from shared memory for their NR columns each. Every loop is
// uniform over the workgroup (barriers): columns past N are computed as
// the last one and not stored.
void gemv_xs() {
  const uint M = P(1), N = P(2), K = P(3);
  const uint sg = gl_SubgroupSize, lane = gl_SubgroupInvocationID;
  const uint per = DTB == DT_F32 ? 4u : 8u;  // weights per 16 bytes
  const uint rs = DTB == DT_F32 ? 2u : 3u;   // element -> 16-byte index
  const uint cols = gl_NumSubgroups * uint(NR);
  for (uint nb = gl_WorkGroupID.x * cols; nb < N; nb += gl_NumWorkGroups.x * cols) {
    const uint n0 = nb + gl_SubgroupID * uint(NR);
    float acc[NR][MROWS];
    uint rowB[NR];
    [[unroll]] for (int r = 0; r < NR; ++r) {
      [[unroll]] for (int m = 0; m < MROWS; ++m) acc[r][m] = 0.0;
      rowB[r] = P(10) + zb0 * P(11) + zb1 * P(12) + min(n0 + uint(r), N - 1u) * P(14);
    }
    for (uint k0 = 0u; k0 < K; k0 += uint(XS)) {
      const uint kn = min(uint(XS), K - k0);  // a multiple of 8 (K is)
      barrier();  // the previous chunk's reads are done
      for (uint e = gl_LocalInvocationID.x; e < uint(MROWS) * kn / 4u; e += gl_WorkGroupSize.x) {
        const uint m = e / (kn / 4u), q = e % (kn / 4u);
        xs[m * uint(XS / 4) + q] = m < M ? A_f4[AAt(m, k0 + 4u * q) >> 2] : vec4(0.0);
      }
      barrier();
      const uint c1 = (k0 + kn) / per;
      for (uint c0 = k0 / per + lane; c0 < c1; c0 += uint(NV) * sg) {
        uvec4 w4[NR][NV];
        [[unroll]] for (int r = 0; r < NR; ++r) {
          [[unroll]] for (uint u = 0u; u < uint(NV); ++u) {
            const uint c = c0 + u * sg;
            w4[r][u] = c < c1 ? B_v4[(rowB[r] >> rs) + c] : uvec4(0u);
          }
        }
        [[unroll]] for (uint u = 0u; u < uint(NV); ++u) {
          const uint c = c0 + u * sg;
          if (c >= c1) break;
          vec4 lo[NR], hi[NR];
          [[unroll]] for (int r = 0; r < NR; ++r) {
            if (DTB == DT_F32) {
              lo[r] = uintBitsToFloat(w4[r][u]);
            } else {
              Unpack8(w4[r][u], lo[r], hi[r]);
            }
          }
          const uint xq = (c * per - k0) / 4u;  // vec4 index within the chunk
          [[unroll]] for (int m = 0; m < MROWS; ++m) {
            if (m >= int(M)) break;
            const vec4 x0 = xs[uint(m) * uint(XS / 4) + xq];
            if (DTB == DT_F32) {
              [[unroll]] for (int r = 0; r < NR; ++r) acc[r][m] += dot(lo[r], x0);
            } else {
              const vec4 x1 = xs[uint(m) * uint(XS / 4) + xq + 1u];
              [[unroll]] for (int r = 0; r < NR; ++r) acc[r][m] += dot(lo[r], x0) + dot(hi[r], x1);
            }
          }
        }
      }
    }
    [[unroll]] for (int r = 0; r < NR; ++r) {
      [[unroll]] for (int m = 0; m < MROWS; ++m) {
        if (m >= int(M)) break;
        const float s = subgroupAdd(acc[r][m]);
        if (lane == 0u && n0 + uint(r) < N) Store(m, n0 + uint(r), s);
      }
    }
  }
}

void gemm() {
  const uint M = P(1), N = P(2), K = P(3);
  const uint m0 = gl_WorkGroupID.y * 64u, n0 = gl_WorkGroupID.x * 64u;
  const uint t = gl_LocalInvocationID.x;
  const uint tm = (t / 16u) * 4u, tn = (t % 16u) * 4u;
  float acc[4][4];
  for (int i = 0; i < 4; ++i)
    for (int j = 0; j < 4; ++j) acc[i][j] = 0.0;
  for (uint k0 = 0; k0 < K; k0 += 16u) {
    // k fastest: rows of A and weight rows of `linear` are contiguous in k.
    for (uint e = t; e < 1024u; e += 256u) {
      const uint kk = e % 16u, r = e / 16u;
      const uint k = k0 + kk;
      const uint m = m0 + r, n = n0 + r;
      As[kk][r] = (m < M && k < K) ? LoadA(m, k) : 0.0;
      Bs[kk][r] = (n < N && k < K) ? LoadB(k, n) : 0.0;
    }
    barrier();
    for (uint kk = 0; kk < 16u; ++kk) {
      float a[4], b[4];
      for (int i = 0; i < 4; ++i) a[i] = As[kk][tm + i];
      for (int j = 0; j < 4; ++j) b[j] = Bs[kk][tn + j];
      for (int i = 0; i < 4; ++i)
        for (int j = 0; j < 4; ++j) acc[i][j] = fma(a[i], b[j], acc[i][j]);
    }
    barrier();
  }
  for (int i = 0; i < 4; ++i) {
    const uint m = m0 + tm + i;
    if (m >= M) continue;
    for (int j = 0; j < 4; ++j) {
      const uint n = n0 + tn + j;
      if (n < N) Store(m, n, acc[i][j]);
    }
  }
}

void main() {
  const uint z = gl_WorkGroupID.z;
  zb0 = z / P(4);
  zb1 = z % P(4);
  if (MODE == 0 && XS > 0) {
    gemv_xs();
  } else if (MODE == 0) {
    gemv();
  } else {
    gemm();
  }
}
