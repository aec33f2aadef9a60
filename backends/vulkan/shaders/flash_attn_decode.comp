#version 450
// Flash attention for few query rows (decode), one workgroup per (batch,
// KV head, group of G query heads, KV split), looping over the Sq <= 8
// query rows (generic build: one workgroup per row too). Built for memory parallelism: nothing in the key loop waits
// on another subgroup, nor a K/V load on a mask load.
//
// Lanes split D: LPR lanes read one K/V row, lane `seg` of a row holding its
// 8-element vectors seg, seg + LPR, ... (NVL of them), so one load
// instruction of a subgroup reads whole rows (LPR x 16 contiguous bytes
// each) of SG / LPR keys at once. A step of a subgroup is UNR such row
// slots per lane: UNR * SG / LPR keys, their K and V loads all issued before
// the first use. Per key: the dot products of the lane's part of K with the
// G heads' Q (held in registers), summed over the row's LPR lanes by
// shuffles; the bias (mask * slope, causal); then an online softmax per row
// slot: each lane keeps its own running max, sum and 8 * NVL output
// elements per head for the keys its row slot saw. The subgroups take
// interleaved steps of the split; the row slots and then the subgroups are
// combined once at the end (shuffles, then shared memory).
//
// Masks: first every row's range of live keys in the split (all rows'
// mask loads at once); a row's key loop covers only its range (so a shared
// cache's block-diagonal mask reads each row's own block, and a row dead
// in the split costs no key loop), its mask and K/V loads issued together.
// A key dead for every head gets score -inf and V = 0 by select, a key
// dead for one head p = 0 there, so a masked key's K/V is never used (NaN
// there cannot leak).
// SPLIT: write (m, l, acc) partials for flash_attn_merge.comp.
#extension GL_EXT_control_flow_attributes : require
#extension GL_KHR_shader_subgroup_shuffle : require
#extension GL_KHR_shader_subgroup_vote : require
#include "common.glsl"
layout(local_size_x_id = 0) in;
layout(constant_id = 0) const int WG = 128;    // invocations: NSG subgroups
layout(constant_id = 1) const int DV8 = 16;    // D / 8 (0: from params, generic)
layout(constant_id = 2) const int DMAX8 = 16;  // D / 8 at most (shared memory)
layout(constant_id = 3) const int DTQ = 0;
layout(constant_id = 4) const int DTK = 0;
layout(constant_id = 5) const int DTV = 0;
layout(constant_id = 6) const int HAS_MASK = 0;
layout(constant_id = 7) const int DTM = 0;
layout(constant_id = 8) const int HAS_SINKS = 0;
layout(constant_id = 9) const int SOFTCAP = 0;
layout(constant_id = 10) const int ALIBI = 0;
layout(constant_id = 11) const int CAUSAL = 0;
layout(constant_id = 12) const int DTO = 0;
layout(constant_id = 13) const int G = 1;
layout(constant_id = 14) const int SPLIT = 0;
// GENERIC: dtypes, flags and G read from params 50..60 (G <= GMAX).
layout(constant_id = 15) const int GENERIC = 0;
layout(constant_id = 16) const int UNR = 4;  // row slots per lane per step
layout(constant_id = 17) const int LPR = 8;  // lanes per K/V row (a power of 2 dividing the subgroup size)
layout(constant_id = 18) const int NVL = 2;  // 8-element vectors per lane per row (>= D / 8 / LPR)
layout(constant_id = 19) const int NSG = 4;  // subgroups per workgroup at most (shared memory)
// FUSED (with SPLIT): the partials go to binding 6, and the last workgroup
// of a (batch, KV head, head group) to finish merges its splits into O.
layout(constant_id = 20) const int FUSED = 0;
layout(constant_id = 21) const int FMAX = 1;  // FUSED: Sq * G * splits at most (shared memory)
// ROWLOOP: a workgroup loops over the query rows, with a mask after finding
// each row's live keys in its split (a shared cache's rows: most are dead
// there). 0: one row per workgroup (the generic build; without a mask,
// where every row is live and 8 rows in one workgroup ran 2x slower on the
// H200).
layout(constant_id = 22) const int ROWLOOP = 1;
const int GMAX = GENERIC != 0 ? 4 : G;
const int DMAX = 8 * DMAX8;
#define DT_Q (GENERIC != 0 ? int(P(50)) : DTQ)
#define DT_K (GENERIC != 0 ? int(P(51)) : DTK)
#define DT_V (GENERIC != 0 ? int(P(52)) : DTV)
#define F_MASK (GENERIC != 0 ? int(P(53)) : HAS_MASK)
#define DT_M (GENERIC != 0 ? int(P(54)) : DTM)
#define F_SINKS (GENERIC != 0 ? int(P(55)) : HAS_SINKS)
#define F_SOFTCAP (GENERIC != 0 ? int(P(56)) : SOFTCAP)
#define F_ALIBI (GENERIC != 0 ? int(P(57)) : ALIBI)
#define F_CAUSAL (GENERIC != 0 ? int(P(58)) : CAUSAL)
#define DT_O (GENERIC != 0 ? int(P(59)) : DTO)
#define G_ (GENERIC != 0 ? int(P(60)) : G)
// The live-key scan before the row loop (see main). Not with one row per
// workgroup: on the H200 it made a lone masked row (8192 live keys) 1.5-2x
// slower and a 4096-key sliding window over 32768 no faster (session 8).
#define LIVE_SCAN (F_MASK != 0 && ROWLOOP != 0)

DECLARE_SLOT_RO(0, Q)
DECLARE_SLOT_RO(1, K)
DECLARE_SLOT_RO(2, V)
DECLARE_SLOT_RO(3, Mk)
DECLARE_SLOT_RO(4, Sk)
DECLARE_SLOT(5, O)
// FUSED: the partials, then one counter per (b, KV head, head group) at
// word P(62) (zeroed by the backend before the first run; the merging
// workgroup zeroes it again). Coherent: the last workgroup reads what the
// others wrote.
layout(std430, set = 0, binding = 6) coherent buffer PartF { float part_f[]; };
layout(std430, set = 0, binding = 6) coherent buffer PartU { uint part_u[]; };

// params: 1 B, 2 Sq, 3 Skv, 4 Hq, 5 Hkv, 6 scale, 7 softcap, 11 splits, 12 keys per split,
//         13 q T, 18 k T, 23 v T, 28 mask T, 33 out T, 38 sinks off, 39 head groups per KV head,
//         50..60 generic dtypes/flags, 61 head dim D, 64.. ALiBi slope per query head
// Per subgroup and head: its running max and sum, and its output elements.
shared float m_s[NSG * GMAX];
shared float l_s[NSG * GMAX];
shared float acc_s[NSG * GMAX * DMAX];
const int MAXROWS = 8;  // query rows at most (kernels_attention.cc's kDecodeRows)
const int NROWS = ROWLOOP != 0 ? MAXROWS : 1;  // rows of one workgroup at most
// With a mask: per query row, its live keys in the split as [lo_s, end_s).
shared uint lo_s[MAXROWS];
shared uint end_s[MAXROWS];
// FUSED merge: per (row, head) pair and split its m then weight, its l
// then l * weight; per pair the max m (ordered bits, atomicMax).
shared float w_s[FMAX];
shared float lw_s[FMAX];
shared uint mx_s[MAXROWS * GMAX];
shared uint last_s;

#define NINF uintBitsToFloat(0xff800000u)

// 8 elements at element index o (a multiple of 8; f32: of 4) of slot N,
// loaded raw (f32: two vectors) and unpacked to f32 later, so that all the
// step's loads are in flight before the first use.
#define RAW8(N, DT, o, r0, r1) { \
    if ((DT) == DT_F32) { r0 = N##_v4[(o) >> 2]; r1 = N##_v4[((o) >> 2) + 1u]; } \
    else { r0 = N##_v4[(o) >> 3]; r1 = uvec4(0u); } }
#define UNPACK8(DT, r0, r1, dst) { \
    if ((DT) == DT_F32) { \
      [[unroll]] for (int j_ = 0; j_ < 4; ++j_) { dst[j_] = uintBitsToFloat(r0[j_]); dst[4 + j_] = uintBitsToFloat(r1[j_]); } \
    } else { \
      [[unroll]] for (int j_ = 0; j_ < 4; ++j_) { \
        if ((DT) == DT_F16) { const vec2 h_ = unpackHalf2x16(r0[j_]); dst[2 * j_] = h_.x; dst[2 * j_ + 1] = h_.y; } \
        else { dst[2 * j_] = uintBitsToFloat(r0[j_] << 16); dst[2 * j_ + 1] = uintBitsToFloat(r0[j_] & 0xffff0000u); } \
      } \
    } }

// (m, l, acc) of another row slot or subgroup folded into this one's.
void Fold(inout float m, inout float l, float m2, float l2, out float a, out float a2) {
  const float mn = max(m, m2);
  a = m == NINF ? 0.0 : exp(m - mn);
  a2 = m2 == NINF ? 0.0 : exp(m2 - mn);
  l = l * a + l2 * a2;
  m = mn;
}

// Whether query row i sees key j for any of the G heads (mask and causal).
bool KeyLive(uint b, uint h0, uint i, uint j, uint Sq, uint Skv) {
  if (F_CAUSAL != 0 && CausalHidden(i, j, Sq, Skv)) return false;
  bool live = F_MASK == 0;
  if (F_MASK != 0) {
    [[unroll]] for (int g = 0; g < GMAX; ++g) {
      if (g < G_) live = live || LOADF(Mk, DT_M, P(28) + b * P(29) + (h0 + uint(g)) * P(30) + i * P(31) + j * P(32)) != NINF;
    }
  }
  return live;
}

// A split's partial word: flash_attn_merge.comp's buffer (binding 5), or
// binding 6 when the merge is fused.
void PutPart(uint at, float v) {
  if (FUSED != 0) part_f[at] = v;
  else O_f[at] = v;
}

// Float bits whose unsigned order is the floats' order (-inf: the least but 0).
uint OrderedBits(float f) {
  const uint u = floatBitsToUint(f);
  return (u & 0x80000000u) != 0u ? ~u : u | 0x80000000u;
}
float FromOrderedBits(uint u) { return uintBitsToFloat((u & 0x80000000u) != 0u ? u & 0x7fffffffu : ~u); }

// A step's mask, K and V loads (keys j0 + u * rows + slot), none waiting on
// another: keys past the row's range read the last key of it (in bounds)
// and are dead in the step.
void LoadStep(uint j0, uint ke, uint b, uint i, uint h0, uint kvh, uint seg, uint slot, uint rows, uint nv,
              out float mv[UNR][GMAX], out uvec4 kr[UNR][NVL][2], out uvec4 vr[UNR][NVL][2]) {
  [[unroll]] for (int u = 0; u < UNR; ++u) {
    const uint j = min(j0 + uint(u) * rows + slot, ke - 1u);
    [[unroll]] for (int g = 0; g < GMAX; ++g) {
      mv[u][g] = 0.0;
      if (F_MASK != 0 && g < G_) mv[u][g] = LOADF(Mk, DT_M, P(28) + b * P(29) + (h0 + uint(g)) * P(30) + i * P(31) + j * P(32));
    }
    const uint kbase = P(18) + b * P(19) + j * P(20) + kvh * P(21);
    const uint vbase = P(23) + b * P(24) + j * P(25) + kvh * P(26);
    [[unroll]] for (int c = 0; c < NVL; ++c) {
      const uint vi = seg + uint(c * LPR);
      kr[u][c][0] = kr[u][c][1] = vr[u][c][0] = vr[u][c][1] = uvec4(0u);
      if (vi < nv) {
        RAW8(K, DT_K, kbase + vi * 8u, kr[u][c][0], kr[u][c][1]);
        RAW8(V, DT_V, vbase + vi * 8u, vr[u][c][0], vr[u][c][1]);
      }
    }
  }
}

void main() {
  const uint Sq = P(2), Skv = P(3), Hq = P(4);
  // ROWLOOP == 0: one query row per workgroup (x = row * groups + head
  // group). The generic build always: looping over the rows there gave
  // wrong results on lavapipe at Skv = 4096 (Sq = 3), which the specialized
  // kernel does not.
  const uint groups = P(39);
  const uint hg = gl_WorkGroupID.x % groups;
  const uint row0 = ROWLOOP == 0 ? gl_WorkGroupID.x / groups : 0u;
  const uint row_end = ROWLOOP == 0 ? row0 + 1u : Sq;
  const uint kvh = gl_WorkGroupID.y;
  const uint b = gl_WorkGroupID.z / P(11), split = gl_WorkGroupID.z % P(11);
  const uint h0 = kvh * (Hq / P(5)) + hg * uint(G_);
  const float scale = PF(6), softcap = PF(7);
  const uint Dh = P(61);
  const uint nv = DV8 > 0 ? uint(DV8) : Dh / 8u;  // 8-element vectors per row
  const uint lane = gl_SubgroupInvocationID, sg = gl_SubgroupID;
  const uint seg = lane % uint(LPR), slot = lane / uint(LPR);
  const uint rows = gl_SubgroupSize / uint(LPR);  // row slots of a subgroup
  const uint step = uint(UNR) * rows;            // keys per subgroup step
  const uint tid = gl_LocalInvocationID.x;
  const uint k_begin = split * P(12);
  const uint k_end = min(Skv, k_begin + P(12));

  // With a mask: the live keys of each query row in this split, as the
  // range [first, last + 1] (a shared cache's block-diagonal mask: one
  // row's block, the other rows none). Every invocation checks its keys for
  // all of the workgroup's rows at once (the loads of all rows and heads in
  // flight together), so a row none of whose keys is live costs one round
  // of mask loads, not a key loop. Not in the generic build (its LLVM
  // compile time on lavapipe): there every row loops over the whole split,
  // its dead keys selected away below.
  if (LIVE_SCAN) {
    if (tid < uint(NROWS)) {
      lo_s[tid] = 0xffffffffu;
      end_s[tid] = 0u;
    }
    barrier();
    uint lo[NROWS], hi[NROWS];
    [[unroll]] for (int r = 0; r < NROWS; ++r) { lo[r] = 0xffffffffu; hi[r] = 0u; }
    [[dont_unroll]] for (uint j = k_begin + tid; j < k_end; j += gl_WorkGroupSize.x) {
      [[unroll]] for (int r = 0; r < NROWS; ++r) {
        const uint row = row0 + uint(r);
        if (row < row_end && KeyLive(b, h0, row, j, Sq, Skv)) { lo[r] = min(lo[r], j); hi[r] = j + 1u; }
      }
    }
    [[unroll]] for (int r = 0; r < NROWS; ++r) {
      if (row0 + uint(r) >= row_end) break;
      const uint l2 = subgroupMin(lo[r]), h2 = subgroupMax(hi[r]);
      if (subgroupElect()) { atomicMin(lo_s[r], l2); atomicMax(end_s[r], h2); }
    }
    barrier();
  }

  [[dont_unroll]] for (uint i = row0; i < row_end; ++i) {
    // The row's keys in this split: [kb, ke).
    uint kb = k_begin, ke = k_end;
    if (LIVE_SCAN) {
      kb = lo_s[i - row0];
      ke = end_s[i - row0];
      kb = min(kb, ke);  // a dead row: the empty range [ke, ke)
    } else if (F_CAUSAL != 0) {
      ke = min(ke, CausalKeys(i, Sq, Skv));
    }
    if (SPLIT != 0 && kb >= ke) {
      // No live key: m = -inf alone (flash_attn_merge.comp gives it weight
      // 0 and never reads its acc), 8 bytes instead of D * 4.
      if (tid < uint(G_)) {
        const uint rec = (((b * Hq + h0 + tid) * Sq + i) * P(11) + split) * (Dh + 2u);
        PutPart(rec, NINF);
        PutPart(rec + 1u, 0.0);
      }
      continue;
    }

    // The lane's part of the G heads' Q rows, scaled.
    vec4 q[GMAX][NVL][2];
    [[unroll]] for (int g = 0; g < GMAX; ++g) {
      [[unroll]] for (int c = 0; c < NVL; ++c) {
        const uint vi = seg + uint(c * LPR);
        float x[8];
        [[unroll]] for (int e = 0; e < 8; ++e) x[e] = 0.0;
        if (g < G_ && vi < nv) {
          const uint o = P(13) + b * P(14) + i * P(15) + (h0 + uint(g)) * P(16) + vi * 8u;
          [[unroll]] for (int e = 0; e < 8; ++e) x[e] = LOADF(Q, DT_Q, o + uint(e)) * scale;
        }
        q[g][c][0] = vec4(x[0], x[1], x[2], x[3]);
        q[g][c][1] = vec4(x[4], x[5], x[6], x[7]);
      }
    }
    float M[GMAX], L[GMAX];
    vec4 acc[GMAX][NVL][2];
    [[unroll]] for (int g = 0; g < GMAX; ++g) {
      M[g] = NINF;
      L[g] = 0.0;
      [[unroll]] for (int c = 0; c < NVL; ++c) acc[g][c][0] = acc[g][c][1] = vec4(0.0);
    }

    [[dont_unroll]] for (uint j0 = kb + sg * step; j0 < ke; j0 += gl_NumSubgroups * step) {
      // 1. Every mask, K and V load of the step issued at once. (Issuing the
      // next step's during this one's math was not faster on the H200:
      // bench/RESULTS.md, session 7.)
      float mv[UNR][GMAX];
      uvec4 kr[UNR][NVL][2], vr[UNR][NVL][2];
      LoadStep(j0, ke, b, i, h0, kvh, seg, slot, rows, nv, mv, kr, vr);

      // 2. The bias of the slots' keys per head; which keys any head sees.
      float bias[UNR][GMAX];
      bool live[UNR];
      [[unroll]] for (int u = 0; u < UNR; ++u) {
        const uint j = j0 + uint(u) * rows + slot;
        live[u] = false;
        [[unroll]] for (int g = 0; g < GMAX; ++g) {
          bias[u][g] = NINF;
          if (g < G_ && j < ke && !(F_CAUSAL != 0 && CausalHidden(i, j, Sq, Skv))) {
            bias[u][g] = F_MASK == 0 ? 0.0 : mv[u][g] == NINF ? NINF : (F_ALIBI != 0 ? PF(64u + h0 + uint(g)) : 1.0) * mv[u][g];
          }
          live[u] = live[u] || bias[u][g] != NINF;
        }
      }

      // 3. Scores: the lane's partial dot products, summed over the row's
      // lanes; a dead key's score is -inf whatever its K holds.
      float s[UNR][GMAX];
      [[unroll]] for (int u = 0; u < UNR; ++u) {
        [[unroll]] for (int g = 0; g < GMAX; ++g) s[u][g] = 0.0;
        [[unroll]] for (int c = 0; c < NVL; ++c) {
          float kf[8];
          UNPACK8(DT_K, kr[u][c][0], kr[u][c][1], kf);
          const vec4 k0 = vec4(kf[0], kf[1], kf[2], kf[3]), k1 = vec4(kf[4], kf[5], kf[6], kf[7]);
          [[unroll]] for (int g = 0; g < GMAX; ++g) s[u][g] += dot(q[g][c][0], k0) + dot(q[g][c][1], k1);
        }
        [[unroll]] for (int g = 0; g < GMAX; ++g) {
          [[unroll]] for (int o = LPR / 2; o > 0; o >>= 1) s[u][g] += subgroupShuffleXor(s[u][g], uint(o));
          if (bias[u][g] == NINF) {
            s[u][g] = NINF;
          } else {
            if (F_SOFTCAP != 0) s[u][g] = softcap * tanh(s[u][g] / softcap);
            s[u][g] += bias[u][g];
          }
        }
      }

      // 4. Online softmax of the row slot per head: one rescale per step.
      float p[UNR][GMAX];
      [[unroll]] for (int g = 0; g < GMAX; ++g) {
        float mx = M[g];
        [[unroll]] for (int u = 0; u < UNR; ++u) mx = max(mx, s[u][g]);
        float sum = 0.0;
        [[unroll]] for (int u = 0; u < UNR; ++u) {
          p[u][g] = s[u][g] == NINF ? 0.0 : exp(s[u][g] - mx);
          sum += p[u][g];
        }
        const float alpha = M[g] == NINF ? 0.0 : exp(M[g] - mx);
        L[g] = L[g] * alpha + sum;
        [[unroll]] for (int c = 0; c < NVL; ++c) {
          acc[g][c][0] *= alpha;
          acc[g][c][1] *= alpha;
        }
        M[g] = mx;
      }

      // 5. P*V; a key no head sees has V = 0 here, whatever its memory holds.
      [[unroll]] for (int u = 0; u < UNR; ++u) {
        [[unroll]] for (int c = 0; c < NVL; ++c) {
          float vf[8];
          UNPACK8(DT_V, vr[u][c][0], vr[u][c][1], vf);
          vec4 v0 = vec4(vf[0], vf[1], vf[2], vf[3]), v1 = vec4(vf[4], vf[5], vf[6], vf[7]);
          if (!live[u]) v0 = v1 = vec4(0.0);
          [[unroll]] for (int g = 0; g < GMAX; ++g) {
            acc[g][c][0] += p[u][g] * v0;
            acc[g][c][1] += p[u][g] * v1;
          }
        }
      }
    }

    // The row slots of the subgroup combined (lanes seg of every slot end
    // with the same state), then the subgroups through shared memory.
    [[unroll]] for (uint o = uint(LPR); o < gl_SubgroupSize; o <<= 1) {
      [[unroll]] for (int g = 0; g < GMAX; ++g) {
        const float m2 = subgroupShuffleXor(M[g], o), l2 = subgroupShuffleXor(L[g], o);
        float a, a2;
        Fold(M[g], L[g], m2, l2, a, a2);
        [[unroll]] for (int c = 0; c < NVL; ++c) {
          [[unroll]] for (int h = 0; h < 2; ++h) {
            const vec4 x2 = subgroupShuffleXor(acc[g][c][h], o);
            // A state of weight 0 (no key yet) adds nothing, whatever it holds.
            acc[g][c][h] = (a == 0.0 ? vec4(0.0) : acc[g][c][h] * a) + (a2 == 0.0 ? vec4(0.0) : x2 * a2);
          }
        }
      }
    }
    if (slot == 0u) {
      [[unroll]] for (int g = 0; g < GMAX; ++g) {
        if (g >= G_) break;
        const uint at = sg * uint(GMAX) + uint(g);
        if (seg == 0u) {
          m_s[at] = M[g];
          l_s[at] = L[g];
        }
        [[unroll]] for (int c = 0; c < NVL; ++c) {
          const uint vi = seg + uint(c * LPR);
          if (vi >= nv) continue;
          [[unroll]] for (int e = 0; e < 4; ++e) {
            acc_s[at * uint(DMAX) + vi * 8u + uint(e)] = acc[g][c][0][e];
            acc_s[at * uint(DMAX) + vi * 8u + 4u + uint(e)] = acc[g][c][1][e];
          }
        }
      }
    }
    barrier();
    const uint nsg = gl_NumSubgroups;
    for (uint e = tid; e < uint(G_) * Dh; e += gl_WorkGroupSize.x) {
      const uint g = e / Dh, d = e % Dh;
      float mm = NINF;
      for (uint q2 = 0u; q2 < nsg; ++q2) mm = max(mm, m_s[q2 * uint(GMAX) + g]);
      float ll = 0.0, o = 0.0;
      for (uint q2 = 0u; q2 < nsg; ++q2) {
        const uint at = q2 * uint(GMAX) + g;
        const float ms = m_s[at];
        if (ms == NINF) continue;  // saw no live key: its sums are unused
        const float w = exp(ms - mm);
        ll += l_s[at] * w;
        o += acc_s[at * uint(DMAX) + d] * w;
      }
      const uint h = h0 + g;
      if (SPLIT != 0) {
        // Partials [b][h][i][split] of (m, l, acc[D]).
        const uint rec = (((b * Hq + h) * Sq + i) * P(11) + split) * (Dh + 2u);
        if (d == 0u) { PutPart(rec, mm); PutPart(rec + 1u, ll); }
        if (mm != NINF) PutPart(rec + 2u + d, o);
      } else {
        float f = 1.0;
        if (F_SINKS != 0) {
          const float sink = Sk_f[P(38) + h];
          const float Mx = max(mm, sink);
          f = mm == NINF ? 0.0 : exp(mm - Mx);
          ll = ll * f + exp(sink - Mx);
        }
        const float res = ll == 0.0 ? 0.0 : o * f / ll;
        STOREF(O, DT_O, P(33) + b * P(34) + i * P(35) + h * P(36) + d, res);
      }
    }
    barrier();  // m_s, l_s, acc_s are the next row's
  }

  if (FUSED == 0) return;
  // Fused merge: this workgroup's partials are written (each invocation's
  // writes made visible, then all of them, before the count); the last of
  // the column's P(11) workgroups merges them, as flash_attn_merge.comp.
  const uint NS = P(11), rec = Dh + 2u;
  const uint counter = P(62) + (b * P(5) + kvh) * groups + hg;
  memoryBarrierBuffer();
  barrier();
  if (tid == 0u) last_s = atomicAdd(part_u[counter], 1u) == NS - 1u ? 1u : 0u;
  barrier();
  if (last_s == 0u) return;
  memoryBarrierBuffer();  // every other workgroup's partials visible here
  if (tid == 0u) part_u[counter] = 0u;  // for the next run
  const uint pairs = Sq * uint(G_);  // pair = i * G + g
  if (tid < pairs) mx_s[tid] = 0u;
  barrier();
  // 1. Every split's m and l of every pair at once; the pairs' max m.
  for (uint e = tid; e < pairs * NS; e += gl_WorkGroupSize.x) {
    const uint pr = e / NS, sp = e % NS;
    const uint at = (((b * Hq + h0 + pr % uint(G_)) * Sq + pr / uint(G_)) * NS + sp) * rec;
    const float m = part_f[at];
    w_s[e] = m;
    lw_s[e] = part_f[at + 1u];
    atomicMax(mx_s[pr], OrderedBits(m));
  }
  barrier();
  // 2. The weights exp(m - M) (M: with the sink), 0 for a split that saw no key.
  for (uint e = tid; e < pairs * NS; e += gl_WorkGroupSize.x) {
    const uint pr = e / NS;
    float M = FromOrderedBits(mx_s[pr]);
    if (F_SINKS != 0) M = max(M, Sk_f[P(38) + h0 + pr % uint(G_)]);
    const float m = w_s[e];
    const float w = m == NINF ? 0.0 : exp(m - M);
    w_s[e] = w;
    lw_s[e] = w != 0.0 ? lw_s[e] * w : 0.0;
  }
  barrier();
  // 3. Each output element: the weighted sum of the live splits' acc.
  for (uint e = tid; e < pairs * Dh; e += gl_WorkGroupSize.x) {
    const uint pr = e / Dh, d = e % Dh;
    const uint g = pr % uint(G_), i = pr / uint(G_), h = h0 + g;
    const uint base = ((b * Hq + h) * Sq + i) * NS * rec;
    float L = 0.0, v = 0.0;
    for (uint sp = 0u; sp < NS; ++sp) {
      const float w = w_s[pr * NS + sp];
      L += lw_s[pr * NS + sp];
      if (w != 0.0) v += part_f[base + sp * rec + 2u + d] * w;
    }
    if (F_SINKS != 0) {
      const float sink = Sk_f[P(38) + h];
      const float M = max(FromOrderedBits(mx_s[pr]), sink);
      if (M != NINF) L += exp(sink - M);
    }
    const float res = L == 0.0 ? 0.0 : v / L;
    STOREF(O, DT_O, P(33) + b * P(34) + i * P(35) + h * P(36) + d, res);
  }
}
