#version 450
// out[z][m][n] = sum_k A[z][m][k] * B[z][k][n] (+ bias[n]), f32 out.
// MODE 0 (GEMV, M <= 8 rows): one subgroup per output column n reads B's
// column (a weight row of `linear`) once for all M rows, vector loads when
// the row is contiguous and aligned (VEC; q8_0: word loads of block pairs). MODE 1: 64x64 tiles through
// shared memory, 4x4 outputs per invocation.
#extension GL_EXT_control_flow_attributes : require
#include "common.glsl"
layout(local_size_x = 256) in;
layout(constant_id = 0) const int MODE = 0;
layout(constant_id = 1) const int DTA = 0;
layout(constant_id = 2) const int DTB = 0;
layout(constant_id = 3) const int HAS_BIAS = 0;
layout(constant_id = 4) const int DT_BIAS = 0;
layout(constant_id = 5) const int VEC = 0;
layout(constant_id = 6) const int MROWS = 1;
// VECA: f32 A rows contiguous in k and 16-byte aligned (GEMV reads them as vectors).
layout(constant_id = 7) const int VECA = 0;
// GEMV: 16-byte weight loads per lane in flight.
layout(constant_id = 8) const int NV = 2;

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

void gemv() {
  const uint M = P(1), N = P(2), K = P(3);
  const uint sg = gl_SubgroupSize;
  const uint lane = gl_SubgroupInvocationID;
  for (uint n = gl_WorkGroupID.x * gl_NumSubgroups + gl_SubgroupID; n < N;
       n += gl_NumWorkGroups.x * gl_NumSubgroups) {
  float acc[MROWS];
  [[unroll]] for (int m = 0; m < MROWS; ++m) acc[m] = 0.0;
  const uint rowB = P(10) + zb0 * P(11) + zb1 * P(12) + n * P(14);  // element (bytes for q8_0) of B(0, n)
  if (DTB == DT_Q8 && VEC != 0) {
    // Rows of whole pairs of blocks (68 bytes, 17 words) at word-aligned
    // starts: a lane loads a pair's 17 words at once, then unpacks them.
    const uint pairs = K / 64u;
    for (uint pi = lane; pi < pairs; pi += sg) {
      const uint wb = (rowB >> 2) + pi * 17u;
      uint w[17];
      [[unroll]] for (int j = 0; j < 17; ++j) w[j] = B_u[wb + uint(j)];
      const float d0 = f16_to_f32(w[0] & 0xffffu), d1 = f16_to_f32(w[8] >> 16);
      [[unroll]] for (int m = 0; m < MROWS; ++m) {
        if (m >= int(M)) break;
        float s0 = 0.0, s1 = 0.0;
        [[unroll]] for (int j = 0; j < 8; ++j) {
          // Block 0's int8 run starts at byte 2, block 1's at byte 36.
          const uint q0 = (w[j] >> 16) | (w[j + 1] << 16), q1 = w[9 + j];
          const vec4 f0 = vec4(int(q0 << 24) >> 24, int(q0 << 16) >> 24, int(q0 << 8) >> 24, int(q0) >> 24);
          const vec4 f1 = vec4(int(q1 << 24) >> 24, int(q1 << 16) >> 24, int(q1 << 8) >> 24, int(q1) >> 24);
          const uint k0 = pi * 64u + uint(4 * j), k1 = k0 + 32u;
          vec4 x0, x1;
          if (VECA != 0) {
            x0 = A_f4[AAt(m, k0) >> 2];
            x1 = A_f4[AAt(m, k1) >> 2];
          } else {
            x0 = vec4(LoadA(m, k0), LoadA(m, k0 + 1u), LoadA(m, k0 + 2u), LoadA(m, k0 + 3u));
            x1 = vec4(LoadA(m, k1), LoadA(m, k1 + 1u), LoadA(m, k1 + 2u), LoadA(m, k1 + 3u));
          }
          s0 += dot(f0, x0);
          s1 += dot(f1, x1);
        }
        acc[m] += d0 * s0 + d1 * s1;
      }
    }
  } else if (DTB == DT_Q8) {
    // A lane takes whole blocks: the f16 scale and 16 pairs of int8.
    const uint blocks = K / 32u;
    for (uint bi = lane; bi < blocks; bi += sg) {
      const uint bb = rowB + bi * 34u;
      const float d = f16_to_f32(uint(B_h[bb >> 1]));
      float part[MROWS];
      [[unroll]] for (int m = 0; m < MROWS; ++m) part[m] = 0.0;
      for (uint j = 0; j < 16u; ++j) {
        const uint pair = uint(B_h[(bb >> 1) + 1u + j]);
        const float q0 = float(int(pair << 24) >> 24), q1 = float(int(pair << 16) >> 24);
        [[unroll]] for (int m = 0; m < MROWS; ++m) {
          if (m < int(M)) part[m] += q0 * LoadA(m, bi * 32u + 2u * j) + q1 * LoadA(m, bi * 32u + 2u * j + 1u);
        }
      }
      [[unroll]] for (int m = 0; m < MROWS; ++m) acc[m] += d * part[m];
    }
  } else if (VEC != 0 && (DTB == DT_F16 || DTB == DT_BF16)) {
    // NV weight vectors per lane in flight before their use.
    const uint chunks = K / 8u;
    for (uint c0 = lane; c0 < chunks; c0 += uint(NV) * sg) {
      uvec4 w4[NV];
      [[unroll]] for (uint u = 0u; u < uint(NV); ++u) {
        const uint c = c0 + u * sg;
        w4[u] = c < chunks ? B_v4[(rowB >> 3) + c] : uvec4(0u);
      }
      [[unroll]] for (uint u = 0u; u < uint(NV); ++u) {
        const uint c = c0 + u * sg;
        if (c >= chunks) break;
        float wf[8];
        [[unroll]] for (int j = 0; j < 4; ++j) {
          const uint w = w4[u][j];
          if (DTB == DT_F16) {
            const vec2 h = unpackHalf2x16(w);
            wf[2 * j] = h.x;
            wf[2 * j + 1] = h.y;
          } else {
            wf[2 * j] = uintBitsToFloat(w << 16);
            wf[2 * j + 1] = uintBitsToFloat(w & 0xffff0000u);
          }
        }
        [[unroll]] for (int m = 0; m < MROWS; ++m) {
          if (m >= int(M)) break;
          if (VECA != 0) {
            const uint ab = AAt(m, c * 8u) >> 2;
            const vec4 x0 = A_f4[ab], x1 = A_f4[ab + 1u];
            acc[m] += dot(vec4(wf[0], wf[1], wf[2], wf[3]), x0) + dot(vec4(wf[4], wf[5], wf[6], wf[7]), x1);
          } else if (DTA == DT_F32 && P(9) == 1u) {
            const uint ab = AAt(m, c * 8u);
            float s = 0.0;
            [[unroll]] for (int j = 0; j < 8; ++j) s += wf[j] * A_f[ab + j];
            acc[m] += s;
          } else {
            [[unroll]] for (int j = 0; j < 8; ++j) acc[m] += wf[j] * LoadA(m, c * 8u + j);
          }
        }
      }
    }
  } else if (VEC != 0 && DTB == DT_F32) {
    const uint chunks = K / 4u;
    for (uint c0 = lane; c0 < chunks; c0 += uint(NV) * sg) {
      vec4 w4[NV];
      [[unroll]] for (uint u = 0u; u < uint(NV); ++u) {
        const uint c = c0 + u * sg;
        w4[u] = c < chunks ? B_f4[(rowB >> 2) + c] : vec4(0.0);
      }
      [[unroll]] for (uint u = 0u; u < uint(NV); ++u) {
        const uint c = c0 + u * sg;
        if (c >= chunks) break;
        const vec4 w = w4[u];
        [[unroll]] for (int m = 0; m < MROWS; ++m) {
          if (m >= int(M)) break;
          if (VECA != 0) {
            acc[m] += dot(w, A_f4[AAt(m, 4u * c) >> 2]);
          } else {
            acc[m] += w.x * LoadA(m, 4u * c) + w.y * LoadA(m, 4u * c + 1u) + w.z * LoadA(m, 4u * c + 2u) +
                      w.w * LoadA(m, 4u * c + 3u);
          }
        }
      }
    }
  } else {
    for (uint k = lane; k < K; k += sg) {
      const float w = LoadB(k, n);
      [[unroll]] for (int m = 0; m < MROWS; ++m) {
        if (m < int(M)) acc[m] += w * LoadA(m, k);
      }
    }
  }
  [[unroll]] for (int m = 0; m < MROWS; ++m) {
    if (m >= int(M)) break;
    const float s = subgroupAdd(acc[m]);
    if (lane == 0u) Store(m, n, s);
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
  if (MODE == 0) gemv(); else gemm();
}
