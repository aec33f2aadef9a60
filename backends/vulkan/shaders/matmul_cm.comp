#version 450
// out[z][m][n] = sum_k A[z][m][k] * B[z][k][n] (+ bias[n]), f32 out, with
// NV cooperative matrices (16x16x16, f16 inputs, f32 accumulators): the
// many-row GEMM of matmul.comp where the device has them (chosen at
// pipeline creation, kernels_matmul.cc). A 128x128 output tile per
// workgroup of 8 subgroups (2 x 4, each 64x32 = 4x2 accumulators); K in
// steps of 32 through shared memory as f16 (A and bf16 B converted on the
// way in), the next step's global loads issued before this step's products.
// Edges are zero-filled, so any M, N, K.
#extension GL_NV_cooperative_matrix : require
#extension GL_KHR_memory_scope_semantics : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#include "common.glsl"
layout(local_size_x = 256) in;
layout(constant_id = 0) const int DTA = 0;
layout(constant_id = 1) const int DTB = 0;
layout(constant_id = 2) const int HAS_BIAS = 0;
layout(constant_id = 3) const int DT_BIAS = 0;
// VECA / VECB: rows contiguous in k and 16-byte aligned (vector loads).
layout(constant_id = 4) const int VECA = 0;
layout(constant_id = 5) const int VECB = 0;

DECLARE_SLOT(0, A)
DECLARE_SLOT(1, B)
DECLARE_SLOT(2, O)
DECLARE_SLOT(3, Bias)

// params (as matmul.comp): 1 M, 2 N, 3 K, 4 batch dim 1,
//   5 A: off, s_b0, s_b1, s_m, s_k   10 B: off, s_b0, s_b1, s_k, s_n
//   15 O: off, s_b0, s_b1, s_m       19 bias offset
const uint BM = 128u, BN = 128u, BK = 32u;
const uint LDS = BK + 8u;  // f16 row stride in shared memory (80 bytes: fewer bank conflicts)
shared float16_t As[BM * LDS];  // As[m][k]
shared float16_t Bs[BN * LDS];  // Bs[n][k]: B's tile column-major
shared float Cs[8 * 256];       // one 16x16 accumulator per subgroup on its way out

uint zb0, zb1;
uint AAt(uint m, uint k) { return P(5) + zb0 * P(6) + zb1 * P(7) + m * P(8) + k * P(9); }
uint BAt(uint k, uint n) { return P(10) + zb0 * P(11) + zb1 * P(12) + k * P(13) + n * P(14); }

// Per invocation, one K step: A as 4 vectors of 4 (f32) or 2 of 8 (16-bit),
// B as 2 vectors of 8; the scalar paths hold 16 values each.
vec4 ra[4];
uvec4 rah[2];
uvec4 rb[2];
float sa[16], sb[16];

float B16ToF(uint h) { return DTB == DT_F16 ? unpackHalf2x16(h).x : uintBitsToFloat(h << 16); }

void LoadTiles(uint m0, uint n0, uint k0) {
  const uint M = P(1), N = P(2), K = P(3);
  const uint t = gl_LocalInvocationID.x;
  if (VECA != 0 && DTA == DT_F32) {
    for (uint u = 0u; u < 4u; ++u) {
      const uint e = t + 256u * u, r = e / 8u, kq = (e % 8u) * 4u;
      const uint m = m0 + r, k = k0 + kq;
      ra[u] = (m < M && k < K) ? A_f4[AAt(m, k) >> 2] : vec4(0.0);
    }
  } else if (VECA != 0) {
    for (uint u = 0u; u < 2u; ++u) {
      const uint e = t + 256u * u, r = e / 4u, kq = (e % 4u) * 8u;
      const uint m = m0 + r, k = k0 + kq;
      rah[u] = (m < M && k < K) ? A_v4[AAt(m, k) >> 3] : uvec4(0u);
    }
  } else {
    for (uint u = 0u; u < 16u; ++u) {
      const uint e = t + 256u * u, r = e / BK, kk = e % BK;
      const uint m = m0 + r, k = k0 + kk;
      sa[u] = (m < M && k < K) ? LOADF(A, DTA, AAt(m, k)) : 0.0;
    }
  }
  if (VECB != 0) {
    for (uint u = 0u; u < 2u; ++u) {
      const uint e = t + 256u * u, r = e / 4u, kq = (e % 4u) * 8u;
      const uint n = n0 + r, k = k0 + kq;
      rb[u] = (n < N && k < K) ? B_v4[BAt(k, n) >> 3] : uvec4(0u);
    }
  } else {
    for (uint u = 0u; u < 16u; ++u) {
      const uint e = t + 256u * u, r = e / BK, kk = e % BK;
      const uint n = n0 + r, k = k0 + kk;
      sb[u] = (n < N && k < K) ? LOADF(B, DTB, BAt(k, n)) : 0.0;
    }
  }
}

void StoreTiles() {
  const uint t = gl_LocalInvocationID.x;
  if (VECA != 0 && DTA == DT_F32) {
    for (uint u = 0u; u < 4u; ++u) {
      const uint e = t + 256u * u, r = e / 8u, kq = (e % 8u) * 4u;
      for (uint j = 0u; j < 4u; ++j) As[r * LDS + kq + j] = float16_t(ra[u][j]);
    }
  } else if (VECA != 0) {
    for (uint u = 0u; u < 2u; ++u) {
      const uint e = t + 256u * u, r = e / 4u, kq = (e % 4u) * 8u;
      for (uint j = 0u; j < 8u; ++j) {
        const uint h = (rah[u][j / 2u] >> (16u * (j % 2u))) & 0xffffu;
        As[r * LDS + kq + j] = float16_t(DTA == DT_F16 ? unpackHalf2x16(h).x : uintBitsToFloat(h << 16));
      }
    }
  } else {
    for (uint u = 0u; u < 16u; ++u) {
      const uint e = t + 256u * u;
      As[(e / BK) * LDS + e % BK] = float16_t(sa[u]);
    }
  }
  if (VECB != 0) {
    for (uint u = 0u; u < 2u; ++u) {
      const uint e = t + 256u * u, r = e / 4u, kq = (e % 4u) * 8u;
      for (uint j = 0u; j < 8u; ++j) {
        const uint h = (rb[u][j / 2u] >> (16u * (j % 2u))) & 0xffffu;
        Bs[r * LDS + kq + j] = float16_t(B16ToF(h));
      }
    }
  } else {
    for (uint u = 0u; u < 16u; ++u) {
      const uint e = t + 256u * u;
      Bs[(e / BK) * LDS + e % BK] = float16_t(sb[u]);
    }
  }
}

void main() {
  const uint z = gl_WorkGroupID.z;
  zb0 = z / P(4);
  zb1 = z % P(4);
  const uint M = P(1), N = P(2), K = P(3);
  const uint m0 = gl_WorkGroupID.y * BM, n0 = gl_WorkGroupID.x * BN;
  const uint sg = gl_SubgroupID, lane = gl_SubgroupInvocationID;
  const uint wm = sg / 4u, wn = sg % 4u;  // this subgroup's 64x32 block

  fcoopmatNV<32, gl_ScopeSubgroup, 16, 16> acc[4][2];
  for (int i = 0; i < 4; ++i)
    for (int j = 0; j < 2; ++j) acc[i][j] = fcoopmatNV<32, gl_ScopeSubgroup, 16, 16>(0.0);

  LoadTiles(m0, n0, 0u);
  for (uint k0 = 0u; k0 < K; k0 += BK) {
    barrier();  // the previous step is done reading the tiles
    StoreTiles();
    barrier();
    if (k0 + BK < K) LoadTiles(m0, n0, k0 + BK);
    for (uint kk = 0u; kk < BK; kk += 16u) {
      fcoopmatNV<16, gl_ScopeSubgroup, 16, 16> a[4];
      fcoopmatNV<16, gl_ScopeSubgroup, 16, 16> b[2];
      for (int i = 0; i < 4; ++i) coopMatLoadNV(a[i], As, (wm * 64u + uint(i) * 16u) * LDS + kk, LDS, false);
      for (int j = 0; j < 2; ++j) coopMatLoadNV(b[j], Bs, (wn * 32u + uint(j) * 16u) * LDS + kk, LDS, true);
      for (int i = 0; i < 4; ++i)
        for (int j = 0; j < 2; ++j) acc[i][j] = coopMatMulAddNV(a[i], b[j], acc[i][j]);
    }
  }

  for (int i = 0; i < 4; ++i) {
    for (int j = 0; j < 2; ++j) {
      coopMatStoreNV(acc[i][j], Cs, sg * 256u, 16u, false);
      subgroupMemoryBarrierShared();
      subgroupBarrier();
      for (uint u = 0u; u < 8u; ++u) {
        const uint idx = lane + 32u * u, r = idx / 16u, c = idx % 16u;
        const uint m = m0 + wm * 64u + uint(i) * 16u + r, n = n0 + wn * 32u + uint(j) * 16u + c;
        if (m < M && n < N) {
          float v = Cs[sg * 256u + idx];
          if (HAS_BIAS != 0) v += LOADF(Bias, DT_BIAS, P(19) + n);
          O_f[P(15) + zb0 * P(16) + zb1 * P(17) + m * P(18) + n] = v;
        }
      }
      subgroupBarrier();
    }
  }
}
