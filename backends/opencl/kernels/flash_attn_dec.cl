// flash_attn for few queries (decode, a handful of tokens, several sequences
// over one cache): streams K/V from global memory straight into registers,
// no local-memory tiles.
//
// A work-group takes QR rows ((query i, query head h) pairs; the G heads of a
// KV head consecutive, so they share every K/V read) of one batch row and
// one KV head, and one split of the KV length (get_group_id(1)), at most
// MAXT tiles of BC keys. Work-item lid owns dims [8s, 8s+8) (s = lid % TPK)
// of keys kg, kg + KPP, ... (kg = lid / TPK) of a tile: its K and V loads
// are 8 elements each (one 16-byte load for f16/bf16 when VEC), so the TPK
// work-items of a key read its row as one contiguous piece.
//
// The split's mask is read first, all of it at once (one coalesced pass, no
// K/V load waits on a mask load), into local memory, with a bit per tile
// that has a live key for some row: the K/V loop visits only those tiles,
// so a split masked everywhere (another sequence's cells) reads no K/V and
// costs one pass over its mask. PIPE=1: the next live tile's K and V are
// loaded before the current one is used (2*NK loads of 16 bytes in flight
// per work-item while it computes).
//
// The dot product's partial sums over a key's TPK work-items: with KILN_PTX
// (NVIDIA) PTX warp shuffles (the TPK work-items of a key are aligned lanes
// of one warp), no barrier per tile: XPOSE=1 a reduce-scatter (each lane
// ends with some of the sums, scores them once, and the scores are
// gathered), XPOSE=0 a butterfly per value (every lane ends with every
// sum); otherwise through local memory (two barriers per tile). Each
// work-item keeps its own online softmax (m, l, o) over its keys; at the end
// the KPP key groups are combined in local memory (not for a split with no
// live key), and the block writes the output (one split) or (o, m, l)
// partials. FUSE=1: the partials are merged by the work-group of the row
// block that finishes last (a per-block counter, reset by that work-group),
// no second kernel; otherwise flash_attn_merge does it.
//
// A masked (p == 0) key never multiplies V and its K is never read, so NaN
// in unwritten cache cells cannot reach the output.
//
// -D D (bucket >= Dk, Dv: 64, 128, 256), QR (rows per block, <= 4), NK,
// MAXT, PIPE, FUSE, XPOSE, WARP_EMU (below); for the fast program also KDT, VDT (dtype
// codes of K and V, so the loads have no branch) and VEC=1 (rows 16-byte
// aligned, Dk and Dv multiples of 8, checked by the host). Without them the
// dtypes are the kernel arguments kdt, vdt and loads go element by element
// (any layout, q8_0).
#define WG 128
#define TPK (D / 8)     // work-items per key
#define KPP (WG / TPK)  // keys per pass of the work-group
#ifndef NK
#define NK 4  // keys per work-item per tile
#endif
#define BC (KPP * NK)   // keys per tile
#define NS (BC * QR)    // scores per tile
#ifndef MAXT
#define MAXT 16  // tiles per split at most: the live tiles are the bits of one uint
#endif
#define SL (MAXT * BC)  // keys per split at most (the host's split length)
#ifndef PIPE
#define PIPE 1
#endif
#ifndef FUSE
#define FUSE 0
#endif
#ifndef XPOSE
#define XPOSE 1  // with warp shuffles (KILN_PTX, WARP_EMU): the sums by reduce-scatter, else a butterfly each
#endif
#define NV (NK * QR)                    // partial dot products per work-item per tile
#define CF (NV > TPK ? NV / TPK : 1)    // of them, each lane's after the reduce-scatter
#define NSM 128     // splits the fused merge takes at most (the host checks)
#define PS (D + 4)  // floats per partial row: o[D], m, l, 2 unused (16-byte rows)
#ifndef VEC
#define VEC 0
#endif
// WARP_EMU=1 (KILN_OPENCL_FA_EMU=1, without KILN_PTX): the warp-shuffle
// algorithm with the shuffles emulated through local memory (barriers), so
// PoCL tests what NVIDIA's program computes; not a fast path.
#if defined(KILN_PTX) || defined(WARP_EMU)
#define WARP_SUM 1
#else
#define WARP_SUM 0
#endif
#ifdef KILN_PTX
// Unrolled where KILN_PTX is set (NVIDIA's fast program: register arrays
// indexed by constants); PoCL's work-group compiler takes minutes over the
// unrolled body, so not elsewhere (the loops are short either way).
#define KILN_UNROLL _Pragma("unroll")
#else
#define KILN_UNROLL
#endif

// Local memory (floats), one array reused by the three phases.
#define FA_MAX(a, b) ((a) > (b) ? (a) : (b))
#define L_MV 0                           // K/V loop: mask values [SL][QR]
#define L_RED (SL * QR)                  // portable: partial dots [TPK][NS + 1] (+1: fewer bank conflicts)
#define L_SC (L_RED + TPK * (NS + 1))    // portable: scores [NS]
#define L_LOOP (WARP_SUM ? L_RED : L_SC + NS)
#define L_ML 0                           // end: per key group (m, l) [KPP][QR][2]
#define L_OB (KPP * QR * 2)              // end: per key group o [KPP][QR * D]
#define L_END (L_OB + KPP * QR * D)
#define L_MW 0                           // merge: m, then weights [NSM][QR]
#define L_ML2 (NSM * QR)                 // merge: l [NSM][QR]
#define L_MM (2 * NSM * QR)              // merge: row maxima [QR]
#define L_MERGE (L_MM + QR)
#define L_FLOATS FA_MAX(L_LOOP, FA_MAX(L_END, FUSE ? L_MERGE : 0))

#ifdef KILN_PTX
#define SHFL_XOR(v, m) shfl_xor(v, m)
#define SHFL_IDX(v, src) shfl_idx(v, src)
// The value v of lane (lane ^ m): a butterfly step.
inline float shfl_xor(float v, int m) {
  float r;
  asm volatile("shfl.sync.bfly.b32 %0, %1, %2, 0x1f, 0xffffffff;" : "=f"(r) : "f"(v), "r"(m));
  return r;
}
// Lane `src`'s v (src: a lane of this warp).
inline float shfl_idx(float v, int src) {
  float r;
  asm volatile("shfl.sync.idx.b32 %0, %1, %2, 0x1f, 0xffffffff;" : "=f"(r) : "f"(v), "r"(src));
  return r;
}
#elif WARP_SUM
// Lanes are work-items lid % 32 of the 32-aligned group lid / 32; every
// work-item of the work-group calls these together (barriers inside).
#define SHFL_XOR(v, m) emu_xor(xch, lid, v, m)
#define SHFL_IDX(v, src) emu_idx(xch, lid, v, src)
inline float emu_xor(__local float* xch, int lid, float v, int m) {
  xch[lid] = v;
  barrier(CLK_LOCAL_MEM_FENCE);
  const float r = xch[lid ^ m];
  barrier(CLK_LOCAL_MEM_FENCE);
  return r;
}
inline float emu_idx(__local float* xch, int lid, float v, int src) {
  xch[lid] = v;
  barrier(CLK_LOCAL_MEM_FENCE);
  const float r = xch[(lid & ~31) + src];
  barrier(CLK_LOCAL_MEM_FENCE);
  return r;
}
#endif
// Orders this work-item's global stores before its later ones (the fused
// merge's count) device-wide.
inline void fence_device(void) {
#ifdef KILN_PTX
  asm volatile("membar.gl;" ::: "memory");
#else
  mem_fence(CLK_GLOBAL_MEM_FENCE);
#endif
}
#ifdef KDT
#define KD KDT
#define VD VDT
#else
#define KD kdt
#define VD vdt
#endif

// Raw bits of 8 elements [d0, d0+8) of the row at element (q8_0: byte)
// offset `row`, loaded now, converted at use (fewer registers held).
typedef struct {
  uint4 a, b;  // f32: 8 words; 2-byte types: a only; q8_0: a = 8 int8 + scale
} raw8;

inline raw8 load8(gin p, int dt, long row, int d0, int n) {
  raw8 r;
  r.a = (uint4)(0u);
  r.b = (uint4)(0u);
#if VEC
  if (dt == DT_F32) {
    r.a = ld_stream((__global const uint4*)(p + 4 * (row + d0)));
    r.b = ld_stream((__global const uint4*)(p + 4 * (row + d0 + 4)));
  } else if (dt == DT_F16 || dt == DT_BF16) {
    r.a = ld_stream((__global const uint4*)(p + 2 * (row + d0)));
  } else
#endif
  if (dt == DT_Q8) {
    // d0 is a multiple of 8, so the 8 values lie in one 32-value block.
    const long blk = row + (long)(d0 >> 5) * 34;
    const uchar8 q = vload8(0, p + blk + 2 + (d0 & 31));
    r.a = (uint4)(as_uint(q.lo), as_uint(q.hi), (uint)p[blk] | ((uint)p[blk + 1] << 8), 0u);
  } else {
    // Any alignment, any n <= 8 (the row's tail): element loads.
    float f[8];
    for (int x = 0; x < 8; ++x) f[x] = x < n ? ld(p, dt, row + d0 + x) : 0.0f;
    r.a = (uint4)(as_uint(f[0]), as_uint(f[1]), as_uint(f[2]), as_uint(f[3]));
    r.b = (uint4)(as_uint(f[4]), as_uint(f[5]), as_uint(f[6]), as_uint(f[7]));
  }
  return r;
}
inline float8 cvt8(raw8 r, int dt) {
#if VEC
  if (dt == DT_F16) return h2f8(r.a);
  if (dt == DT_BF16) return b2f8(r.a);
#endif
  if (dt == DT_Q8) {
    const float d = h2f(r.a.z);
    const char8 q = as_char8((uint2)(r.a.x, r.a.y));
    return d * convert_float8(q);
  }
  return (float8)(as_float4(r.a), as_float4(r.b));
}
inline float dot8(float8 a, float8 b) {
  return dot(a.lo.lo, b.lo.lo) + dot(a.lo.hi, b.lo.hi) + dot(a.hi.lo, b.hi.lo) + dot(a.hi.hi, b.hi.hi);
}
inline float alibi_slope(int h, float max_bias, int n) {
  if (max_bias <= 0.0f) return 1.0f;
  return h < n ? exp2(-max_bias / n * (h + 1)) : exp2(-max_bias / (2 * n) * (2 * (h - n) + 1));
}


// The lowest set bit's index (bits != 0).
inline int low_bit(uint bits) { return 31 - (int)clz(bits & (0u - bits)); }

// K and V of this work-item's keys of tile t (mask values mv, per key and
// row); a key dead for every row loads nothing and stays 0.
inline void load_tile(raw8* kr, raw8* vr, __local const float* mv, int t, int kg, gin k, int kdt, long kbase, int4 ks,
                      gin v, int vdt, long vbase, int4 vs, int j_begin, int d0, int kn, int vn) {
KILN_UNROLL
  for (int x = 0; x < NK; ++x) {
    const int c = t * BC + kg + KPP * x;
    bool live = false;
KILN_UNROLL
    for (int r = 0; r < QR; ++r) live |= mv[c * QR + r] != -INFINITY;
    const long j = j_begin + c;
    kr[x].a = kr[x].b = vr[x].a = vr[x].b = (uint4)(0u);
    if (live && kn > 0) kr[x] = load8(k, KD, kbase + j * ks.y, d0, kn);
    if (live && vn > 0) vr[x] = load8(v, VD, vbase + j * vs.y, d0, vn);
  }
}

__kernel __attribute__((reqd_work_group_size(WG, 1, 1)))
void flash_attn_dec(gout out, long o_off, int odt, gin q, long q_off, int4 qs, int qdt, gin k, long k_off, int4 ks,
                    int kdt, gin v, long v_off, int4 vs, int vdt, gin mask, long m_off, int4 ms, int mdt, int has_mask, gin sinks,
                    long s_off, int has_sinks, __global float* part, int B, int Sq, int Skv, int Hq, int Hkv, int dk,
                    int dv, float scale, float softcap, float max_bias, int n_alibi, int causal, int nsplit,
                    int split_len, int n_rowblocks, __global uint* counters) {
  __local float lm[L_FLOATS];
  __local uint live_bits;
#if WARP_SUM && !defined(KILN_PTX)
  __local float xch[WG];  // the emulated shuffles' exchange
#endif
#if FUSE
  __local int last_block;
#endif

  const int lid = get_local_id(0);
  const int s = lid % TPK, kg = lid / TPK;
  const int d0 = 8 * s;
  const int g0 = get_group_id(0);
  const int rb = g0 % n_rowblocks;
  const int kvh = (g0 / n_rowblocks) % Hkv;
  const int b = g0 / n_rowblocks / Hkv;
  const int split = get_group_id(1);
  const int G = Hq / Hkv;
  const int causal_shift = Skv - Sq;
  const int kn = clamp(dk - d0, 0, 8), vn = clamp(dv - d0, 0, 8);

  int ri[QR], rh[QR];
  float8 qv[QR], o[QR];
  float m[QR], l[QR];
KILN_UNROLL
  for (int r = 0; r < QR; ++r) {
    const int rr = rb * QR + r;
    ri[r] = rr / G;
    rh[r] = kvh * G + rr % G;
    float f[8];
KILN_UNROLL
    for (int x = 0; x < 8; ++x) {
      f[x] = (ri[r] < Sq && x < kn)
                 ? ld(q, qdt, q_off + (long)b * qs.x + (long)ri[r] * qs.y + (long)rh[r] * qs.z + d0 + x)
                 : 0.0f;
    }
    qv[r] = (float8)(f[0], f[1], f[2], f[3], f[4], f[5], f[6], f[7]);
    o[r] = (float8)(0.0f);
    m[r] = -INFINITY;
    l[r] = 0.0f;
  }
#if WARP_SUM
  float slope[QR];
KILN_UNROLL
  for (int r = 0; r < QR; ++r) slope[r] = alibi_slope(rh[r], max_bias, n_alibi);
#endif
  const int i_max = min(Sq - 1, (rb * QR + QR - 1) / G);
  const int j_begin = split * split_len;
  int j_end = min(Skv, j_begin + split_len);
  if (causal) j_end = min(j_end, i_max + causal_shift + 1);
  const long kbase = k_off + (long)b * ks.x + (long)kvh * ks.z;
  const long vbase = v_off + (long)b * vs.x + (long)kvh * vs.z;

  // The split's mask values (-inf: masked, causal, past the end) and its
  // live tiles. One mask row for the whole block (one query's heads, a mask
  // shared by heads): each key's value is read once, not once per row.
  const bool one_mask_row = ms.y == 0 && ri[0] == ri[QR - 1];
  if (lid == 0) live_bits = 0u;
  barrier(CLK_LOCAL_MEM_FENCE);
  for (int c = lid; c < split_len; c += WG) {
    const int j = j_begin + c;
    float first = 0.0f;
    if (has_mask && one_mask_row && j < j_end) {
      first = ld(mask, mdt, m_off + (long)b * ms.x + (long)ri[0] * ms.z + (long)j * ms.w);
    }
    bool live = false;
KILN_UNROLL
    for (int r = 0; r < QR; ++r) {
      float val = -INFINITY;
      if (j < j_end && ri[r] < Sq && !(causal && j > ri[r] + causal_shift)) {
        if (!has_mask) val = 0.0f;
        else if (one_mask_row) val = first;
        else val = ld(mask, mdt, m_off + (long)b * ms.x + (long)rh[r] * ms.y + (long)ri[r] * ms.z + (long)j * ms.w);
      }
      lm[L_MV + c * QR + r] = val;
      live |= val != -INFINITY;
    }
    if (live) atomic_or(&live_bits, 1u << (c / BC));
  }
  barrier(CLK_LOCAL_MEM_FENCE);
  const uint live = live_bits;  // the same for every work-item: what follows is uniform
  uint bits = live;

  raw8 kr[NK], vr[NK];
#if PIPE
  if (bits) load_tile(kr, vr, lm + L_MV, low_bit(bits), kg, k, kdt, kbase, ks, v, vdt, vbase, vs, j_begin, d0, kn, vn);
#endif
  while (bits) {
    const int t = low_bit(bits);
    bits &= bits - 1u;
#if PIPE
    raw8 kx[NK], vx[NK];  // the next live tile, loaded while this one computes
    if (bits) load_tile(kx, vx, lm + L_MV, low_bit(bits), kg, k, kdt, kbase, ks, v, vdt, vbase, vs, j_begin, d0, kn, vn);
#else
    load_tile(kr, vr, lm + L_MV, t, kg, k, kdt, kbase, ks, v, vdt, vbase, vs, j_begin, d0, kn, vn);
#endif
    __local const float* mv = lm + L_MV + t * BC * QR;  // this tile's mask values, [key][row]
    float sc[NK][QR];
KILN_UNROLL
    for (int x = 0; x < NK; ++x) {
      const float8 kf = cvt8(kr[x], KD);
KILN_UNROLL
      for (int r = 0; r < QR; ++r) sc[x][r] = dot8(qv[r], kf);
    }
#if WARP_SUM && XPOSE
    {
      // Reduce-scatter: each butterfly step over a high lane bit halves the
      // values a lane holds (it keeps one half, summed with its partner's),
      // so NV values over TPK lanes take NV - 1 shuffles, not NV log2(TPK);
      // each lane then scores the CF values it holds (index base..) once,
      // and every lane gathers all NV scores.
      float vv[NV];
KILN_UNROLL
      for (int x = 0; x < NK; ++x)
KILN_UNROLL
        for (int r = 0; r < QR; ++r) vv[x * QR + r] = sc[x][r];
      int base = 0;
KILN_UNROLL
      for (int h = NV / 2; h >= 1 && h * TPK >= NV; h >>= 1) {
        const int msk = h * TPK / NV;  // TPK / 2, TPK / 4, ...
        const uint up = (s & msk) ? 0xffffffffu : 0u;
KILN_UNROLL
        for (int i = 0; i < h; ++i) {
          // Bitwise, not a select of two array elements (which compilers
          // turn into a dynamic index, so the array leaves registers).
          const uint lo = as_uint(vv[i]), hi = as_uint(vv[i + h]);
          const float send = as_float((lo & up) | (hi & ~up)), keep = as_float((hi & up) | (lo & ~up));
          vv[i] = keep + SHFL_XOR(send, msk);
        }
        base += (s & msk) ? h : 0;
      }
KILN_UNROLL
      for (int msk = TPK / NV / 2; msk >= 1; msk >>= 1) vv[0] += SHFL_XOR(vv[0], msk);  // lanes past NV: all-reduce
KILN_UNROLL
      for (int c = 0; c < CF; ++c) {
        const int e = base + c, x = e / QR, r = e % QR;
        const float mval = mv[(kg + KPP * x) * QR + r];
        float score = -INFINITY;
        if (mval != -INFINITY) {
          score = scale * vv[c];
          if (softcap > 0.0f) score = softcap * tanh(score / softcap);
          score += alibi_slope(kvh * G + (rb * QR + r) % G, max_bias, n_alibi) * mval;
        }
        vv[c] = score;
      }
      const int lane0 = (lid % 32) & ~(TPK - 1);  // the key's first lane in its warp
KILN_UNROLL
      for (int e = 0; e < NV; ++e) sc[e / QR][e % QR] = SHFL_IDX(vv[e % CF], lane0 + (NV >= TPK ? e / CF : e * (TPK / NV)));
    }
#elif WARP_SUM
KILN_UNROLL
    for (int off = 1; off < TPK; off <<= 1) {
KILN_UNROLL
      for (int x = 0; x < NK; ++x)
KILN_UNROLL
        for (int r = 0; r < QR; ++r) sc[x][r] += SHFL_XOR(sc[x][r], off);
    }
KILN_UNROLL
    for (int x = 0; x < NK; ++x) {
KILN_UNROLL
      for (int r = 0; r < QR; ++r) {
        const float mval = mv[(kg + KPP * x) * QR + r];
        float score = -INFINITY;
        if (mval != -INFINITY) {
          score = scale * sc[x][r];
          if (softcap > 0.0f) score = softcap * tanh(score / softcap);
          score += slope[r] * mval;
        }
        sc[x][r] = score;
      }
    }
#else
    for (int x = 0; x < NK; ++x) {
      const int c = kg + KPP * x;
      for (int r = 0; r < QR; ++r) lm[L_RED + s * (NS + 1) + c * QR + r] = sc[x][r];
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int e = lid; e < NS; e += WG) {
      const float mval = mv[e];
      float score = -INFINITY;
      if (mval != -INFINITY) {
        float acc = 0.0f;
        for (int u = 0; u < TPK; ++u) acc += lm[L_RED + u * (NS + 1) + e];
        score = scale * acc;
        if (softcap > 0.0f) score = softcap * tanh(score / softcap);
        score += alibi_slope(kvh * G + (rb * QR + e % QR) % G, max_bias, n_alibi) * mval;
      }
      lm[L_SC + e] = score;
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int x = 0; x < NK; ++x)
      for (int r = 0; r < QR; ++r) sc[x][r] = lm[L_SC + (kg + KPP * x) * QR + r];
#endif
    // Online softmax over this work-item's keys of the tile: the new row
    // maxima first, then each key's V converted once for all rows.
KILN_UNROLL
    for (int r = 0; r < QR; ++r) {
      float mt = -INFINITY;
KILN_UNROLL
      for (int x = 0; x < NK; ++x) mt = fmax(mt, sc[x][r]);
      if (mt > m[r]) {
        const float alpha = exp(m[r] - mt);  // m[r] == -inf: 0, and l, o are 0
        l[r] *= alpha;
        o[r] *= alpha;
        m[r] = mt;
      }
    }
KILN_UNROLL
    for (int x = 0; x < NK; ++x) {
      const float8 vf = cvt8(vr[x], VD);
KILN_UNROLL
      for (int r = 0; r < QR; ++r) {
        const float sv = sc[x][r];
        if (sv == -INFINITY) continue;
        const float p = exp(sv - m[r]);
        l[r] += p;
        o[r] = fma((float8)(p), vf, o[r]);
      }
    }
#if PIPE
KILN_UNROLL
    for (int x = 0; x < NK; ++x) {
      kr[x] = kx[x];
      vr[x] = vx[x];
    }
#endif
  }

  // Combine the KPP key groups: M = max m, L = sum l e^(m-M), O likewise. A
  // split with no live key (another sequence's cells) skips it: M = -inf,
  // L = O = 0.
  if (live) {
    barrier(CLK_LOCAL_MEM_FENCE);  // the loop's mask values are overwritten
    if (s == 0) {
KILN_UNROLL
      for (int r = 0; r < QR; ++r) {
        lm[L_ML + (kg * QR + r) * 2] = m[r];
        lm[L_ML + (kg * QR + r) * 2 + 1] = l[r];
      }
    }
    barrier(CLK_LOCAL_MEM_FENCE);
KILN_UNROLL
    for (int r = 0; r < QR; ++r) {
      float M = -INFINITY;
      for (int g = 0; g < KPP; ++g) M = fmax(M, lm[L_ML + (g * QR + r) * 2]);
      const float w = m[r] == -INFINITY ? 0.0f : exp(m[r] - M);
      vstore8(o[r] * w, 0, lm + L_OB + kg * QR * D + r * D + d0);
    }
    barrier(CLK_LOCAL_MEM_FENCE);
  }
  for (int e = lid; e < QR * D; e += WG) {
    const int r = e / D, d = e % D;
    const int rr = rb * QR + r, i = rr / G, h = kvh * G + rr % G;
    if (i >= Sq || d >= dv) continue;
    float M = -INFINITY, L = 0.0f, O = 0.0f;
    if (live) {
      for (int g = 0; g < KPP; ++g) M = fmax(M, lm[L_ML + (g * QR + r) * 2]);
      for (int g = 0; g < KPP; ++g) {
        const float mg = lm[L_ML + (g * QR + r) * 2];
        if (mg != -INFINITY) L += lm[L_ML + (g * QR + r) * 2 + 1] * exp(mg - M);
        O += lm[L_OB + g * QR * D + e];
      }
    }
    if (nsplit == 1) {
      const float sink = has_sinks ? ((__global const float*)sinks)[s_off + h] : -INFINITY;
      st(out, odt, o_off + (((long)b * Sq + i) * Hq + h) * dv + d, fa_normalize(O, L, M, has_sinks, sink));
    } else {
      // o is written even where m = -inf (then 0), so a merge may weight it
      // by 0 without a branch.
      const long P = ((((long)split * B + b) * Sq + i) * Hq + h) * PS;
      part[P + d] = O;
      if (d == 0) {
        part[P + D] = M;
        part[P + D + 1] = L;
      }
    }
  }
#if FUSE
  if (nsplit == 1) return;
  // The last work-group of the row block to count itself merges every
  // split's partials: its loads come after the count, which comes after
  // every work-group's partial stores.
  fence_device();
  barrier(CLK_GLOBAL_MEM_FENCE | CLK_LOCAL_MEM_FENCE);
  if (lid == 0) last_block = atomic_inc(&counters[g0]) == (uint)(nsplit - 1);
  barrier(CLK_LOCAL_MEM_FENCE);
  if (!last_block) return;
  fence_device();
  volatile __global const float* vp = part;  // past the L1 (other work-groups wrote it)
  for (int e = lid; e < nsplit * QR; e += WG) {
    const int sp = e / QR, r = e % QR;
    const int rr = rb * QR + r, i = rr / G, h = kvh * G + rr % G;
    const long P = ((((long)sp * B + b) * Sq + i) * Hq + h) * PS;
    lm[L_MW + e] = i < Sq ? vp[P + D] : -INFINITY;
    lm[L_ML2 + e] = i < Sq ? vp[P + D + 1] : 0.0f;
  }
  barrier(CLK_LOCAL_MEM_FENCE);
  if (lid < QR) {
    float M = -INFINITY;
    for (int sp = 0; sp < nsplit; ++sp) M = fmax(M, lm[L_MW + sp * QR + lid]);
    lm[L_MM + lid] = M;
  }
  barrier(CLK_LOCAL_MEM_FENCE);
  for (int e = lid; e < nsplit * QR; e += WG) {
    const float mm = lm[L_MW + e];
    lm[L_MW + e] = mm == -INFINITY ? 0.0f : exp(mm - lm[L_MM + e % QR]);
  }
  barrier(CLK_LOCAL_MEM_FENCE);
  for (int e = lid; e < QR * (D / 4); e += WG) {
    const int r = e / (D / 4), d = 4 * (e % (D / 4));
    const int rr = rb * QR + r, i = rr / G, h = kvh * G + rr % G;
    if (i >= Sq || d >= dv) continue;
    float4 O = (float4)(0.0f);
    float L = 0.0f;
#pragma unroll 8
    for (int sp = 0; sp < nsplit; ++sp) {
      const float w = lm[L_MW + sp * QR + r];
      const long P = ((((long)sp * B + b) * Sq + i) * Hq + h) * PS;
      O = fma((float4)(w), *(volatile __global const float4*)(vp + P + d), O);
      L = fma(w, lm[L_ML2 + sp * QR + r], L);
    }
    const float M = lm[L_MM + r];
    const float sink = has_sinks ? ((__global const float*)sinks)[s_off + h] : -INFINITY;
    const long ob = o_off + (((long)b * Sq + i) * Hq + h) * dv;
    st(out, odt, ob + d, fa_normalize(O.x, L, M, has_sinks, sink));
    if (d + 1 < dv) st(out, odt, ob + d + 1, fa_normalize(O.y, L, M, has_sinks, sink));
    if (d + 2 < dv) st(out, odt, ob + d + 2, fa_normalize(O.z, L, M, has_sinks, sink));
    if (d + 3 < dv) st(out, odt, ob + d + 3, fa_normalize(O.w, L, M, has_sinks, sink));
  }
  if (lid == 0) counters[g0] = 0u;  // every work-group of the block has counted: ready for the next run
#endif
}
