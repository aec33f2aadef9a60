#version 450
// Flash attention prefill with NV cooperative matrices (16x16x16, f16 in,
// f32 accumulate), for f16 K/V. A workgroup is 4 subgroups, each owning 16
// query rows of one head: G query heads of one GQA group (the same rows)
// times 4/G row blocks, so the subgroups walk the same K/V tiles (32 keys)
// together, through shared memory: one global read per workgroup, the next
// tile's loads in flight while this one computes (each subgroup loading its
// own matrices through L1 instead was 1.6x slower on the H200).
// Per tile and subgroup: S = Q K^T (Q kept in matrices, scaled, f16); the
// tile's bias (mask * slope, causal) per lane; the online softmax in f32
// per row (two lanes a row); P (f16) through shared memory. O lives in
// accumulator matrices and P V adds into them by matrices where every cell
// of the tile is live. O goes through shared memory only to be rescaled
// (when a row max moved; it moves only when it grows by more than 8) and
// on tiles with masked cells, whose P V is summed by scalar code that
// skips P == 0 (so a masked key's V, NaN say, is never multiplied in).
// Masked S cells are replaced by -inf, never used. A tile with no live cell
// for the workgroup's rows is skipped without reading its K/V (the one tile
// after a live tile is read ahead, used or not); past the causal diagonal
// the walk ends. Keys past Skv (a last partial tile) are masked.
// SPLIT: the keys are split over gl_WorkGroupID.z (P(11) splits of P(12)
// keys) for more workgroups than heads x row blocks give, and each writes
// its (m, l, unnormalized O) partial for flash_attn_merge.comp.
// Q, K and V sit in shared memory as uvec4 (8 halves): one 16-byte store per
// 8 elements (scalar f16 stores of the K/V tile were 1.29x slower on the
// H200); the cooperative-matrix loads count elements and strides in uvec4.
// S and O blocks likewise as uvec4 of float bits, a lane's 16 S cells read
// in 4 loads; a tile whose every cell is live for the subgroup's rows (no
// mask, inside Sq x Skv and the causal triangle) skips the per-cell bias
// (each about 1.03x on the H200). (P written as packed 16-byte stores
// instead of f16 scalars was 1.06x slower.)
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
layout(constant_id = 9) const int G = 1;          // query heads per workgroup: 1, 2 or 4
layout(constant_id = 10) const int SPLIT = 0;
const int NQ = D / 16;     // 16-wide blocks of the head dim
const uint BC = 32u;       // keys per tile
const uint LDK = uint(D) + 8u;  // f16 row stride of Q / K / V in shared memory
const uint LDK4 = LDK / 8u;     // ... in uvec4
const uint LDP = BC + 8u;
const uint LDS = BC + 4u;  // S's f32 row stride (fewer bank conflicts in the row reads)
const uint RB = 4u / uint(G);   // 16-row blocks per workgroup

DECLARE_SLOT(0, Q)
layout(std430, set = 0, binding = 1) readonly buffer K_V4 { uvec4 K4[]; };
layout(std430, set = 0, binding = 2) readonly buffer V_V4 { uvec4 V4[]; };
DECLARE_SLOT(3, Mk)
DECLARE_SLOT(4, Sk)
DECLARE_SLOT(5, O)

// params as flash_attn.comp: 1 B, 2 Sq, 3 Skv, 4 Hq, 5 Hkv, 6 scale, 7 softcap,
//   13 q T, 18 k T, 23 v T, 28 mask T, 33 out T, 38 sinks off, 64.. ALiBi slopes
// KVs: Q staging at the start, then the K tile (BC x D) and the V tile.
shared uvec4 KVs[2u * BC * LDK4];
// Half h of KVs.
float KVh(uint h) { return unpackHalf2x16(KVs[h >> 3][(h >> 1) & 3u])[h & 1u]; }
// Per subgroup (1024 floats from sg * 1024): S (16 x 32, row stride LDS),
// later a 16 x 64 block of O.
shared uvec4 SP[4u * 256u];  // float bits: glslang stores f32 matrices to integer vectors only
float SPf(uint f) { return uintBitsToFloat(SP[f >> 2][f & 3u]); }
shared float16_t Ps[4u * 16u * LDP];
shared uint live_flags[2][4];  // per tile parity and subgroup: bit 0 any live cell

#define NINF uintBitsToFloat(0xff800000u)
#define ACC fcoopmatNV<32, gl_ScopeSubgroup, 16, 16>
#define HALF fcoopmatNV<16, gl_ScopeSubgroup, 16, 16>

// The K and V tile of keys j0..: global loads into registers (8 halves
// each; issued a tile ahead, so they fly while the current tile computes:
// without that, 1.22x slower on the H200), then into shared memory.
const uint CH = uint(D) / 8u;
const uint NLD = (BC * CH + 127u) / 128u;
uvec4 kq[NLD], vq[NLD];
void LoadKV(uint kbase, uint vbase, uint j0) {
  for (uint u = 0u; u < NLD; ++u) {
    const uint e = gl_LocalInvocationID.x + 128u * u, row = e / CH, ch = e % CH;
    kq[u] = uvec4(0u);  // keys past Skv: zeros, never used
    vq[u] = uvec4(0u);
    if (e < BC * CH && j0 + row < P(3)) {
      kq[u] = K4[(kbase + (j0 + row) * P(20) + ch * 8u) >> 3];
      vq[u] = V4[(vbase + (j0 + row) * P(25) + ch * 8u) >> 3];
    }
  }
}
void StoreKV() {
  for (uint u = 0u; u < NLD; ++u) {
    const uint e = gl_LocalInvocationID.x + 128u * u, row = e / CH, ch = e % CH;
    if (e >= BC * CH) break;
    KVs[row * LDK4 + ch] = kq[u];
    KVs[BC * LDK4 + row * LDK4 + ch] = vq[u];
  }
}

void main() {
  const uint Sq = P(2), Skv = P(3), Hq = P(4), Hkv = P(5);
  const uint sg = gl_SubgroupID, lane = gl_SubgroupInvocationID;
  const uint NS = SPLIT != 0 ? P(11) : 1u, split = SPLIT != 0 ? gl_WorkGroupID.z % NS : 0u;
  const uint h = gl_WorkGroupID.y * uint(G) + sg % uint(G), b = gl_WorkGroupID.z / NS;
  const uint kvh = h / (Hq / Hkv);
  const uint wrow0 = gl_WorkGroupID.x * RB * 16u;  // the workgroup's first query row
  const uint i0 = wrow0 + (sg / uint(G)) * 16u;
  const uint r = lane / 2u, half_ = lane % 2u;
  const uint i = i0 + r;  // this lane's query row
  const float scale = PF(6), softcap = PF(7);
  const float slope = ALIBI != 0 ? PF(64u + h) : 1.0;
  const uint so = sg * 1024u, po = sg * 16u * LDP;

  // Q rows (scaled) to f16 matrices, via shared memory.
  const uint qo = sg * 16u * LDK4;
  for (uint e = lane; e < 16u * uint(D) / 2u; e += 32u) {  // pairs of halves
    const uint rr = e / uint(D / 2), d = (e % uint(D / 2)) * 2u;
    vec2 v = vec2(0.0);
    if (i0 + rr < Sq) {
      const uint at = P(13) + b * P(14) + (i0 + rr) * P(15) + h * P(16) + d;
      v = vec2(LOADF(Q, DTQ, at), LOADF(Q, DTQ, at + 1u)) * scale;
    }
    KVs[qo + rr * LDK4 + d / 8u][(d / 2u) % 4u] = packFloat2x16(f16vec2(v));
  }
  subgroupMemoryBarrierShared();
  subgroupBarrier();
  HALF qm[NQ];
  for (int k = 0; k < NQ; ++k) coopMatLoadNV(qm[k], KVs, qo + uint(k) * 2u, LDK4, false);
  barrier();  // KVs is rewritten by the first tile

  ACC o[NQ];
  for (int n = 0; n < NQ; ++n) o[n] = ACC(0.0);
  float m = NINF, l = 0.0;
  const uint kbase = P(18) + b * P(19) + kvh * P(21);
  const uint vbase = P(23) + b * P(24) + kvh * P(26);
  // The workgroup's last query row that exists (the causal end: every loop
  // decision is the workgroup's).
  const uint wlast = min(wrow0 + RB * 16u - 1u, Sq - 1u);
  // The K and V tiles in shared memory.
  // (kst, kb, vb: uvec4 units; vst, vb2: halves, for the scalar P V)
  const uint kst = LDK4, kb = 0u, vb = BC * LDK4, vst = LDK, vb2 = BC * LDK;

  // This split's keys, and the causal end: every tile from there on is masked.
  const uint jbeg = split * P(12);
  const uint jstop = SPLIT != 0 ? min(Skv, jbeg + P(12)) : Skv;
  const uint jend = CAUSAL != 0 ? min(jstop, CausalKeys(wlast, Sq, Skv)) : jstop;
  bool held = false;  // kq/vq hold tile j0 (prefetched by the previous live tile)
  for (uint j0 = jbeg; j0 < jend; j0 += BC) {
    // 1. Bias of this lane's 16 cells (row i, keys c0..c0+15).
    const uint c0 = half_ * 16u;
    float bias[16];
    bool any_live = false, all_live = true;
    const bool interior = HAS_MASK == 0 && i0 + 16u <= Sq && j0 + BC <= Skv &&
                          (CAUSAL == 0 || !CausalHidden(i0, j0 + BC - 1u, Sq, Skv));
    if (interior) {
      for (uint c = 0u; c < 16u; ++c) bias[c] = 0.0;
      any_live = true;
    } else for (uint c = 0u; c < 16u; ++c) {
      const uint j = j0 + c0 + c;
      float bv = 0.0;
      if (i >= Sq || j >= Skv) {
        bv = NINF;
      } else if (CAUSAL != 0 && CausalHidden(i, j, Sq, Skv)) {
        bv = NINF;
      } else if (HAS_MASK != 0) {
        const float mv = LOADF(Mk, DTM, P(28) + b * P(29) + h * P(30) + i * P(31) + j * P(32));
        bv = mv == NINF ? NINF : slope * mv;
      }
      bias[c] = bv;
      any_live = any_live || bv != NINF;
      all_live = all_live && (bv != NINF || i >= Sq);  // rows past Sq do not make a tile partial
    }
    const bool live = subgroupAny(any_live);
    const bool dense = subgroupAll(all_live);
    {  // the workgroup's verdict on the tile, then its K/V into shared memory
      const uint par = (j0 / BC) & 1u;
      if (lane == 0u) live_flags[par][sg] = live ? 1u : 0u;
      barrier();
      if ((live_flags[par][0] | live_flags[par][1] | live_flags[par][2] | live_flags[par][3]) == 0u) {
        held = false;  // a run of masked tiles: nothing read ahead
        continue;
      }
      if (!held) LoadKV(kbase, vbase, j0);
      StoreKV();
      barrier();
      held = j0 + BC < jend;
      if (held) LoadKV(kbase, vbase, j0 + BC);
    }
    if (live) {
      // 2. S = Q K^T for the tile's two 16-key halves.
      for (int n = 0; n < 2; ++n) {
        ACC s = ACC(0.0);
        for (int k = 0; k < NQ; ++k) {
          HALF km;
          coopMatLoadNV(km, KVs, kb + uint(n) * 16u * kst + uint(k) * 2u, kst, true);
          s = coopMatMulAddNV(qm[k], km, s);
        }
        coopMatStoreNV(s, SP, so / 4u + uint(n) * 4u, LDS / 4u, false);
      }
      subgroupMemoryBarrierShared();
      subgroupBarrier();

      // 3. Online softmax: two lanes a row, 16 cells each.
      float sv[16];
      vec4 sr[4];  // the lane's 16 cells of S, 4 loads
      for (uint c = 0u; c < 4u; ++c) sr[c] = uintBitsToFloat(SP[so / 4u + r * (LDS / 4u) + c0 / 4u + c]);
      float mx = NINF;
      for (uint c = 0u; c < 16u; ++c) {
        float x = NINF;
        if (bias[c] != NINF) {
          x = sr[c / 4u][c % 4u];
          if (SOFTCAP != 0) x = softcap * tanh(x / softcap);
          x += bias[c];
        }
        sv[c] = x;
        mx = max(mx, x);
      }
      mx = max(mx, subgroupShuffleXor(mx, 1u));
      // The row max moves only when it grows by more than 8 (P <= e^8, far
      // inside f16's range): the rescale below is rare after the first tiles.
      const float mnew = (m == NINF || mx > m + 8.0) ? max(m, mx) : m;
      // O * alpha; O is 0 while m is -inf.
      const float alpha = (m == NINF || mnew == NINF) ? 1.0 : exp(m - mnew);
      float ps = 0.0;
      for (uint c = 0u; c < 16u; ++c) {
        const float16_t p = float16_t(sv[c] == NINF ? 0.0 : exp(sv[c] - mnew));
        Ps[po + r * LDP + c0 + c] = p;
        ps += float(p);
      }
      ps += subgroupShuffleXor(ps, 1u);
      l = l * alpha + ps;
      m = mnew;
      const bool rescale = !subgroupAll(alpha == 1.0);
      subgroupMemoryBarrierShared();
      subgroupBarrier();

      // 4. O = O * alpha + P V.
      if (rescale || !dense) {
        // Through shared memory, 64 columns at a time: lane (r, half) scales
        // 32 of row r's and (a tile with masked cells) adds their P V,
        // summed by scalar code that skips P == 0.
        for (int n0 = 0; n0 < NQ; n0 += 4) {
          for (int n = n0; n < min(n0 + 4, NQ); ++n) coopMatStoreNV(o[n], SP, so / 4u + uint(n - n0) * 4u, 16u, false);
          subgroupMemoryBarrierShared();
          subgroupBarrier();
          float acc[32];
          for (int e = 0; e < 32; ++e) acc[e] = 0.0;
          const uint cb = uint(n0) * 16u + half_ * 32u;
          if (!dense) {
            for (uint c = 0u; c < BC; ++c) {
              const float p = float(Ps[po + r * LDP + c]);
              if (p == 0.0) continue;
              for (uint e = 0u; e < 32u; ++e) {
                if (cb + e >= uint(D)) break;
                acc[e] += p * KVh(vb2 + c * vst + cb + e);
              }
            }
          }
          for (uint e = 0u; e < 32u; ++e) {
            if (cb + e >= uint(D)) break;
            const uint at = so + r * 64u + half_ * 32u + e;
            SP[at >> 2][at & 3u] = floatBitsToUint(SPf(at) * alpha + acc[e]);
          }
          subgroupMemoryBarrierShared();
          subgroupBarrier();
          for (int n = n0; n < min(n0 + 4, NQ); ++n) coopMatLoadNV(o[n], SP, so / 4u + uint(n - n0) * 4u, 16u, false);
          subgroupMemoryBarrierShared();
          subgroupBarrier();
        }
      }
      if (dense) {
        HALF pm[2];
        for (int kk = 0; kk < 2; ++kk) coopMatLoadNV(pm[kk], Ps, po + uint(kk) * 16u, LDP, false);
        for (int n = 0; n < NQ; ++n) {
          for (int kk = 0; kk < 2; ++kk) {
            HALF vm;
            coopMatLoadNV(vm, KVs, vb + uint(kk) * 16u * kst + uint(n) * 2u, kst, false);
            o[n] = coopMatMulAddNV(pm[kk], vm, o[n]);
          }
        }
      }
    }
    subgroupBarrier();  // SP and Ps are rewritten by the next tile
  }

  // SPLIT: the partial (m, l, O unnormalized) is written instead; sinks join
  // in the merge.
  float f = 1.0, ll = l;
  if (SPLIT == 0 && HAS_SINKS != 0) {
    const float sink = Sk_f[P(38) + h];
    const float M = max(m, sink);
    f = m == NINF ? 0.0 : exp(m - M);
    ll = l * f + exp(sink - M);
  }
  const float fac = ll == 0.0 ? 0.0 : f / ll;
  const uint rec = uint(D) + 2u;
  const uint part = (((b * Hq + h) * Sq + i) * NS + split) * rec;
  if (SPLIT != 0 && i < Sq && half_ == 0u) {
    O_f[part] = m;
    O_f[part + 1u] = l;
  }
  // O out through shared memory, 64 columns at a time.
  for (int n0 = 0; n0 < NQ; n0 += 4) {
    for (int n = n0; n < min(n0 + 4, NQ); ++n) coopMatStoreNV(o[n], SP, so / 4u + uint(n - n0) * 4u, 16u, false);
    subgroupMemoryBarrierShared();
    subgroupBarrier();
    if (i < Sq) {
      for (uint e = 0u; e < 32u; ++e) {
        const uint d = uint(n0) * 16u + half_ * 32u + e;
        if (d >= uint(D)) break;
        if (SPLIT != 0) {
          O_f[part + 2u + d] = SPf(so + r * 64u + half_ * 32u + e);
        } else {
          STOREF(O, DTO, P(33) + b * P(34) + i * P(35) + h * P(36) + d, SPf(so + r * 64u + half_ * 32u + e) * fac);
        }
      }
    }
    subgroupMemoryBarrierShared();
    subgroupBarrier();
  }
}
