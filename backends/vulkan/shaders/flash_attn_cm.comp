#version 450
// Flash attention prefill with NV cooperative matrices (16x16x16, f16 in,
// f32 accumulate), for f16 K/V. Each subgroup owns 16 query rows of one
// head and walks the KV length in tiles of 32 keys on its own (no
// workgroup barriers): S = Q K^T with Q held in matrices (scaled, f16) and
// K read as matrices straight from the buffer; the tile's bias (mask *
// slope, causal) per lane; the online softmax in f32 per row (two lanes a
// row); P (f16) through shared memory; P V by matrices where every cell of
// the tile is live, else by scalar code that skips P == 0, so a masked
// key's V (NaN, say) is never multiplied in; masked S cells are replaced
// by -inf, never used. A tile with no live cell for the subgroup's rows is
// skipped without reading its K/V; past the causal diagonal the walk ends.
// O lives in registers: lane (row r = lane / 2, half) holds columns
// half*8..+8 of every 16-column block.
#extension GL_NV_cooperative_matrix : require
#extension GL_KHR_memory_scope_semantics : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#extension GL_KHR_shader_subgroup_shuffle : require
#extension GL_KHR_shader_subgroup_vote : require
#include "common.glsl"
layout(local_size_x = 128) in;
layout(constant_id = 0) const int D = 128;  // Dk = Dv, a multiple of 16, <= 128
layout(constant_id = 1) const int DTQ = 0;
layout(constant_id = 2) const int HAS_MASK = 0;
layout(constant_id = 3) const int DTM = 0;
layout(constant_id = 4) const int HAS_SINKS = 0;
layout(constant_id = 5) const int SOFTCAP = 0;
layout(constant_id = 6) const int ALIBI = 0;
layout(constant_id = 7) const int CAUSAL = 0;
layout(constant_id = 8) const int DTO = 0;
const int NQ = D / 16;     // 16-wide blocks of the head dim
const uint BC = 32u;       // keys per tile
const uint LDQ = uint(D) + 8u;
const uint LDP = BC + 8u;

DECLARE_SLOT(0, Q)
layout(std430, set = 0, binding = 1) readonly buffer K_F16 { float16_t K16[]; };
layout(std430, set = 0, binding = 2) readonly buffer V_F16 { float16_t V16[]; };
DECLARE_SLOT(3, Mk)
DECLARE_SLOT(4, Sk)
DECLARE_SLOT(5, O)

// params as flash_attn.comp: 1 B, 2 Sq, 3 Skv, 4 Hq, 5 Hkv, 6 scale, 7 softcap,
//   13 q T, 18 k T, 23 v T, 28 mask T, 33 out T, 38 sinks off, 64.. ALiBi slopes
// Per subgroup sg, from sg * (its size): Q staging, S (16 x 32) then P V
// (16 x 64, one round of 4 blocks), P (f16).
shared float16_t Qs[4u * 16u * LDQ];
shared float SP[4u * 16u * 64u];
shared float16_t Ps[4u * 16u * LDP];

#define NINF uintBitsToFloat(0xff800000u)

void main() {
  const uint Sq = P(2), Skv = P(3), Hq = P(4), Hkv = P(5);
  const uint sg = gl_SubgroupID, lane = gl_SubgroupInvocationID;
  const uint h = gl_WorkGroupID.y, b = gl_WorkGroupID.z;
  const uint kvh = h / (Hq / Hkv);
  const uint i0 = gl_WorkGroupID.x * 64u + sg * 16u;
  const uint r = lane / 2u, half_ = lane % 2u;
  const uint i = i0 + r;  // this lane's query row
  const float scale = PF(6), softcap = PF(7);
  const float slope = ALIBI != 0 ? PF(64u + h) : 1.0;
  const uint qo = sg * 16u * LDQ, so = sg * 16u * 64u, po = sg * 16u * LDP;

  // Q rows (scaled) to f16 matrices, via shared memory.
  for (uint e = lane; e < 16u * uint(D); e += 32u) {
    const uint rr = e / uint(D), d = e % uint(D);
    float v = 0.0;
    if (i0 + rr < Sq) v = LOADF(Q, DTQ, P(13) + b * P(14) + (i0 + rr) * P(15) + h * P(16) + d) * scale;
    Qs[qo + rr * LDQ + d] = float16_t(v);
  }
  subgroupMemoryBarrierShared();
  subgroupBarrier();
  fcoopmatNV<16, gl_ScopeSubgroup, 16, 16> qm[NQ];
  for (int k = 0; k < NQ; ++k) coopMatLoadNV(qm[k], Qs, qo + uint(k) * 16u, LDQ, false);

  float o[D / 2];
  for (int e = 0; e < D / 2; ++e) o[e] = 0.0;
  float m = NINF, l = 0.0;
  const uint kbase = P(18) + b * P(19) + kvh * P(21);
  const uint vbase = P(23) + b * P(24) + kvh * P(26);
  // Last query row of the block that exists, for the causal end.
  const uint ilast = min(i0 + 15u, Sq - 1u);

  for (uint j0 = 0u; j0 < Skv; j0 += BC) {
    if (CAUSAL != 0 && j0 > ilast + (Skv - Sq)) break;  // uniform: every later tile is masked
    // 1. Bias of this lane's 16 cells (row i, keys c0..c0+15).
    const uint c0 = half_ * 16u;
    float bias[16];
    bool any_live = false, all_live = true;
    for (uint c = 0u; c < 16u; ++c) {
      const uint j = j0 + c0 + c;
      float bv = 0.0;
      if (i < Sq) {
        if (CAUSAL != 0 && j > i + (Skv - Sq)) bv = NINF;
        else if (HAS_MASK != 0) {
          const float mv = LOADF(Mk, DTM, P(28) + b * P(29) + h * P(30) + i * P(31) + j * P(32));
          bv = mv == NINF ? NINF : slope * mv;
        }
      }
      bias[c] = bv;
      any_live = any_live || bv != NINF;
      all_live = all_live && bv != NINF;
    }
    if (!subgroupAny(any_live)) continue;  // no K/V read for this tile
    const bool dense = subgroupAll(all_live);

    // 2. S = Q K^T for the tile's two 16-key halves.
    fcoopmatNV<32, gl_ScopeSubgroup, 16, 16> s[2];
    for (int n = 0; n < 2; ++n) {
      s[n] = fcoopmatNV<32, gl_ScopeSubgroup, 16, 16>(0.0);
      for (int k = 0; k < NQ; ++k) {
        fcoopmatNV<16, gl_ScopeSubgroup, 16, 16> km;
        coopMatLoadNV(km, K16, kbase + (j0 + uint(n) * 16u) * P(20) + uint(k) * 16u, P(20), true);
        s[n] = coopMatMulAddNV(qm[k], km, s[n]);
      }
      coopMatStoreNV(s[n], SP, so + uint(n) * 16u, BC, false);
    }
    subgroupMemoryBarrierShared();
    subgroupBarrier();

    // 3. Online softmax: two lanes a row, 16 cells each.
    float sv[16];
    float mx = NINF;
    for (uint c = 0u; c < 16u; ++c) {
      float x = NINF;
      if (bias[c] != NINF) {
        x = SP[so + r * BC + c0 + c];
        if (SOFTCAP != 0) x = softcap * tanh(x / softcap);
        x += bias[c];
      }
      sv[c] = x;
      mx = max(mx, x);
    }
    mx = max(mx, subgroupShuffleXor(mx, 1u));
    const float mnew = max(m, mx);
    const float alpha = mnew == NINF ? 1.0 : exp(m - mnew);
    float ps = 0.0;
    for (uint c = 0u; c < 16u; ++c) {
      const float16_t p = float16_t(sv[c] == NINF ? 0.0 : exp(sv[c] - mnew));
      Ps[po + r * LDP + c0 + c] = p;
      ps += float(p);
    }
    ps += subgroupShuffleXor(ps, 1u);
    l = l * alpha + ps;
    m = mnew;
    subgroupMemoryBarrierShared();
    subgroupBarrier();

    // 4. O = O * alpha + P V.
    if (dense) {
      fcoopmatNV<16, gl_ScopeSubgroup, 16, 16> pm[2];
      for (int kk = 0; kk < 2; ++kk) coopMatLoadNV(pm[kk], Ps, po + uint(kk) * 16u, LDP, false);
      for (int n0 = 0; n0 < NQ; n0 += 4) {
        for (int n = n0; n < min(n0 + 4, NQ); ++n) {
          fcoopmatNV<32, gl_ScopeSubgroup, 16, 16> pv = fcoopmatNV<32, gl_ScopeSubgroup, 16, 16>(0.0);
          for (int kk = 0; kk < 2; ++kk) {
            fcoopmatNV<16, gl_ScopeSubgroup, 16, 16> vm;
            coopMatLoadNV(vm, V16, vbase + (j0 + uint(kk) * 16u) * P(25) + uint(n) * 16u, P(25), false);
            pv = coopMatMulAddNV(pm[kk], vm, pv);
          }
          coopMatStoreNV(pv, SP, so + uint(n - n0) * 16u, 64u, false);
        }
        subgroupMemoryBarrierShared();
        subgroupBarrier();
        for (int n = n0; n < min(n0 + 4, NQ); ++n) {
          for (int e = 0; e < 8; ++e) {
            o[n * 8 + e] = o[n * 8 + e] * alpha + SP[so + r * 64u + uint(n - n0) * 16u + half_ * 8u + uint(e)];
          }
        }
        subgroupBarrier();
      }
    } else {
      for (int e = 0; e < D / 2; ++e) o[e] *= alpha;
      for (uint c = 0u; c < BC; ++c) {
        const float p = float(Ps[po + r * LDP + c]);
        if (p == 0.0) continue;
        const uint vrow = vbase + (j0 + c) * P(25);
        for (int n = 0; n < NQ; ++n) {
          for (int e = 0; e < 8; ++e) o[n * 8 + e] += p * float(V16[vrow + uint(n) * 16u + half_ * 8u + uint(e)]);
        }
      }
    }
    subgroupBarrier();  // SP and Ps are rewritten by the next tile
  }

  if (i >= Sq) return;
  float f = 1.0, ll = l;
  if (HAS_SINKS != 0) {
    const float sink = Sk_f[P(38) + h];
    const float M = max(m, sink);
    f = m == NINF ? 0.0 : exp(m - M);
    ll = l * f + exp(sink - M);
  }
  for (int n = 0; n < NQ; ++n) {
    for (int e = 0; e < 8; ++e) {
      const uint d = uint(n) * 16u + half_ * 8u + uint(e);
      const float res = ll == 0.0 ? 0.0 : o[n * 8 + e] * f / ll;
      STOREF(O, DTO, P(33) + b * P(34) + i * P(35) + h * P(36) + d, res);
    }
  }
}
