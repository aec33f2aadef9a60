// flash_attn for few queries (decode, a handful of tokens, several sequences
// over one cache): streams K/V from global memory straight into registers,
// no local-memory tiles.
//
// A work-group takes QR rows ((query i, query head h) pairs; the G heads of a
// KV head consecutive, so they share every K/V read) of one batch row and
// one KV head, and one split of the KV length (get_group_id(1)). Work-item
// lid owns dims [8s, 8s+8) (s = lid % TPK) of keys kg, kg + KPP, ...
// (kg = lid / TPK): its K and V loads are 8 elements each (one 16-byte load
// for f16/bf16 when VEC), consecutive work-items read consecutive bytes of a
// key row. Per tile of BC keys, each work-item loads its NK keys' K and V
// slices at once (NK*2 loads in flight), reads the mask for them first and
// skips the loads of a key masked for every row of the block (so masked
// tiles and other sequences' cells cost no K/V bytes); a tile masked for
// every row of the block then costs one barrier. The only exchange per live
// tile is the dot product: partial sums over the TPK slices through local
// memory (two barriers). Each work-item keeps its own online softmax
// (m, l, o) over its keys; at the end the KPP key groups are combined in
// local memory, and the block writes the output (one split) or (o, m, l)
// partials for flash_attn_merge.
//
// SHFL=1 (KILN_OPENCL_FA_SHFL=1; measured no faster on the H200, so not the
// default): no barrier and no local memory per tile. The
// TPK work-items of a key are consecutive lanes of one warp, so the dot
// product's partial sums meet by a butterfly of xor shuffles (every lane of
// the key ends with the same sum, so each computes the same scores and
// softmax), and a tile is skipped when no key of the warp is live (a warp
// vote). With KILN_PTX these are PTX shfl.sync / vote.sync; without it they
// are emulated through local memory over the whole work-group (barriers; a
// test of the algorithm on any device, not a fast path).
//
// A masked (p == 0) key never multiplies V and its K is never read, so NaN
// in unwritten cache cells cannot reach the output.
//
// -D D (bucket >= Dk, Dv: 64, 128, 256), QR (rows per block, <= 4); for
// the fast program also KDT, VDT (dtype codes of K and V, so the loads have
// no branch) and VEC=1 (rows 16-byte aligned, Dk and Dv multiples of 8,
// checked by the host). Without them the dtypes are the kernel arguments
// kdt, vdt and loads go element by element (any layout, q8_0).
#define WG 128
#define TPK (D / 8)     // work-items per key
#define KPP (WG / TPK)  // keys per pass of the work-group
#ifndef NK
#define NK 4  // keys per work-item per tile
#endif
#define BC (KPP * NK)   // keys per tile
#define NS (BC * QR)    // scores per tile
#ifndef VEC
#define VEC 0
#endif
// Unrolled where KILN_PTX is set (NVIDIA's fast program: register arrays
// indexed by constants); PoCL's work-group compiler takes minutes over the
// unrolled body, so not elsewhere (the loops are short either way).
#ifdef KILN_PTX
#define KILN_UNROLL _Pragma("unroll")
#else
#define KILN_UNROLL
#endif
#ifndef SHFL
#define SHFL 0
#endif
#if SHFL && defined(KILN_PTX)
// v summed with the value of lane (lane ^ m): a butterfly step.
inline float shfl_xor(float v, int m) {
  float r;
  asm volatile("shfl.sync.bfly.b32 %0, %1, %2, 0x1f, 0xffffffff;" : "=f"(r) : "f"(v), "r"(m));
  return r;
}
// Whether p is nonzero for any lane of the warp.
inline int warp_any(int p) {
  int r;
  asm volatile("{\n\t.reg .pred a, b;\n\tsetp.ne.s32 a, %1, 0;\n\tvote.sync.any.pred b, a, 0xffffffff;\n\t"
               "selp.s32 %0, 1, 0, b;\n\t}"
               : "=r"(r)
               : "r"(p));
  return r;
}
#endif
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
    r.a = as_uint4(*(__global const float4*)(p + 4 * (row + d0)));
    r.b = as_uint4(*(__global const float4*)(p + 4 * (row + d0 + 4)));
  } else if (dt == DT_F16 || dt == DT_BF16) {
    r.a = *(__global const uint4*)(p + 2 * (row + d0));
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

__kernel __attribute__((reqd_work_group_size(WG, 1, 1)))
void flash_attn_dec(gout out, long o_off, int odt, gin q, long q_off, int4 qs, int qdt, gin k, long k_off, int4 ks,
                    int kdt, gin v, long v_off, int4 vs, int vdt, gin mask, long m_off, int4 ms, int mdt, int has_mask, gin sinks,
                    long s_off, int has_sinks, __global float* part, int B, int Sq, int Skv, int Hq, int Hkv, int dk,
                    int dv, float scale, float softcap, float max_bias, int n_alibi, int causal, int nsplit,
                    int split_len, int n_rowblocks) {
#if !SHFL
  __local float red[TPK][NS + 1];  // partial dot products (+1: fewer bank conflicts)
  __local float mvl[NS], sc[NS];   // mask values, final scores: [key][row]
#endif
  __local float ml[KPP][QR][2];    // per key group (m, l)
  __local float ob[KPP][QR * D];   // per key group o, weighted
  __local int tile_live[3];        // see the KV loop
#if SHFL && !defined(KILN_PTX)
  __local float xch[NK * QR][WG];  // the emulated shuffles' exchange
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

#if SHFL
  float slope[QR];
KILN_UNROLL
  for (int r = 0; r < QR; ++r) slope[r] = alibi_slope(kvh * G + (rb * QR + r) % G, max_bias, n_alibi);
#endif
  const int i_max = min(Sq - 1, (rb * QR + QR - 1) / G);
  const int j_begin = split * split_len;
  int j_end = min(Skv, j_begin + split_len);
  if (causal) j_end = min(j_end, i_max + causal_shift + 1);
  const long kbase = k_off + (long)b * ks.x + (long)kvh * ks.z;
  const long vbase = v_off + (long)b * vs.x + (long)kvh * vs.z;

  // One mask row for the whole block (one query's heads, a mask shared by
  // heads): each key's mask value is read once, not once per row.
  const bool one_mask_row = ms.y == 0 && ri[0] == ri[QR - 1];
  // Whether any key of tile t is live for any row: tile_live[t % 3], set
  // before the tile's first barrier, read after it, reset by work-item 0
  // two tiles ahead (when every work-item has read its last value).
  if (lid < 3) tile_live[lid] = 0;
  barrier(CLK_LOCAL_MEM_FENCE);

  int tile = 0;
  for (int j0 = j_begin; j0 < j_end; j0 += BC, ++tile) {
#if !SHFL
    if (lid == 0) tile_live[(tile + 1) % 3] = 0;
#endif
    // Mask values of this work-item's keys, then its K/V loads, all issued
    // before any is used.
    float mv[NK][QR];
    raw8 kr[NK], vr[NK];
    bool any_live = false;
    KILN_UNROLL
    for (int x = 0; x < NK; ++x) {
      const int c = kg + KPP * x, j = j0 + c;
      bool live = false;
      float first = 0.0f;
      if (has_mask && one_mask_row && j < j_end) {
        first = ld(mask, mdt, m_off + (long)b * ms.x + (long)ri[0] * ms.z + (long)j * ms.w);
      }
      KILN_UNROLL
      for (int r = 0; r < QR; ++r) {
        float val = -INFINITY;
        if (j < j_end && ri[r] < Sq && !(causal && j > ri[r] + causal_shift)) {
          if (!has_mask) val = 0.0f;
          else if (one_mask_row) val = first;
          else val = ld(mask, mdt, m_off + (long)b * ms.x + (long)rh[r] * ms.y + (long)ri[r] * ms.z + (long)j * ms.w);
        }
        mv[x][r] = val;
        live |= val != -INFINITY;
      }
      any_live |= live;
      // Slices past Dk (Dv) in the bucket read nothing and stay 0.
      kr[x].a = kr[x].b = vr[x].a = vr[x].b = (uint4)(0u);
      if (live && kn > 0) kr[x] = load8(k, KD, kbase + (long)j * ks.y, d0, kn);
      if (live && vn > 0) vr[x] = load8(v, VD, vbase + (long)j * vs.y, d0, vn);
    }
#if SHFL
    // Skip the tile where no key of the warp (emulated: work-group) is live.
#ifdef KILN_PTX
    if (!warp_any(any_live)) continue;
#else
    if (lid == 0) tile_live[0] = 0;
    barrier(CLK_LOCAL_MEM_FENCE);
    if (any_live) tile_live[0] = 1;
    barrier(CLK_LOCAL_MEM_FENCE);
    const int tile_any = tile_live[0];
    barrier(CLK_LOCAL_MEM_FENCE);
    if (!tile_any) continue;
#endif
    float sc[NK][QR];
KILN_UNROLL
    for (int x = 0; x < NK; ++x) {
      const float8 kf = cvt8(kr[x], KD);
KILN_UNROLL
      for (int r = 0; r < QR; ++r) sc[x][r] = dot8(qv[r], kf);
    }
    // Partial sums over the key's TPK lanes (aligned groups of a warp).
KILN_UNROLL
    for (int off = 1; off < TPK; off <<= 1) {
#ifdef KILN_PTX
KILN_UNROLL
      for (int x = 0; x < NK; ++x)
KILN_UNROLL
        for (int r = 0; r < QR; ++r) sc[x][r] += shfl_xor(sc[x][r], off);
#else
      for (int x = 0; x < NK; ++x)
        for (int r = 0; r < QR; ++r) xch[x * QR + r][lid] = sc[x][r];
      barrier(CLK_LOCAL_MEM_FENCE);
      for (int x = 0; x < NK; ++x)
        for (int r = 0; r < QR; ++r) sc[x][r] += xch[x * QR + r][lid ^ off];
      barrier(CLK_LOCAL_MEM_FENCE);
#endif
    }
KILN_UNROLL
    for (int x = 0; x < NK; ++x) {
KILN_UNROLL
      for (int r = 0; r < QR; ++r) {
        float score = -INFINITY;
        if (mv[x][r] != -INFINITY) {
          score = scale * sc[x][r];
          if (softcap > 0.0f) score = softcap * tanh(score / softcap);
          score += slope[r] * mv[x][r];
        }
        sc[x][r] = score;
      }
    }
#define SCORE(x, r) sc[x][r]
#else
KILN_UNROLL
    for (int x = 0; x < NK; ++x) {
      const float8 kf = cvt8(kr[x], KD);
      const int c = kg + KPP * x;
KILN_UNROLL
      for (int r = 0; r < QR; ++r) red[s][c * QR + r] = dot8(qv[r], kf);
      if (s == 0) {
KILN_UNROLL
        for (int r = 0; r < QR; ++r) mvl[c * QR + r] = mv[x][r];
      }
    }
    if (any_live) tile_live[tile % 3] = 1;
    barrier(CLK_LOCAL_MEM_FENCE);
    if (!tile_live[tile % 3]) continue;  // uniform: a tile masked for the whole block costs one barrier
    for (int e = lid; e < NS; e += WG) {
      const float mval = mvl[e];
      float score = -INFINITY;
      if (mval != -INFINITY) {
        float acc = 0.0f;
        for (int t = 0; t < TPK; ++t) acc += red[t][e];
        score = scale * acc;
        if (softcap > 0.0f) score = softcap * tanh(score / softcap);
        score += alibi_slope(kvh * G + (rb * QR + e % QR) % G, max_bias, n_alibi) * mval;
      }
      sc[e] = score;
    }
    barrier(CLK_LOCAL_MEM_FENCE);
#define SCORE(x, r) sc[(kg + KPP * (x)) * QR + (r)]
#endif
    // Online softmax over this work-item's keys of the tile: the new row
    // maxima first, then each key's V converted once for all rows.
    float mn[QR];
KILN_UNROLL
    for (int r = 0; r < QR; ++r) {
      float mt = -INFINITY;
KILN_UNROLL
      for (int x = 0; x < NK; ++x) mt = fmax(mt, SCORE(x, r));
      mn[r] = fmax(m[r], mt);
      if (mt != -INFINITY) {
        const float alpha = exp(m[r] - mn[r]);  // m[r] == -inf: 0, and l, o are 0
        l[r] *= alpha;
        o[r] *= alpha;
        m[r] = mn[r];
      }
    }
KILN_UNROLL
    for (int x = 0; x < NK; ++x) {
      const float8 vf = cvt8(vr[x], VD);
KILN_UNROLL
      for (int r = 0; r < QR; ++r) {
        const float sv = SCORE(x, r);
        if (sv == -INFINITY) continue;
        const float p = exp(sv - m[r]);
        l[r] += p;
        o[r] = fma((float8)(p), vf, o[r]);
      }
    }
  }

  // Combine the KPP key groups: M = max m, L = sum l e^(m-M), O likewise.
  if (s == 0) {
KILN_UNROLL
    for (int r = 0; r < QR; ++r) {
      ml[kg][r][0] = m[r];
      ml[kg][r][1] = l[r];
    }
  }
  barrier(CLK_LOCAL_MEM_FENCE);
KILN_UNROLL
  for (int r = 0; r < QR; ++r) {
    float M = -INFINITY;
    for (int g = 0; g < KPP; ++g) M = fmax(M, ml[g][r][0]);
    const float w = m[r] == -INFINITY ? 0.0f : exp(m[r] - M);
    vstore8(o[r] * w, 0, &ob[kg][r * D + d0]);
  }
  barrier(CLK_LOCAL_MEM_FENCE);
  for (int e = lid; e < QR * D; e += WG) {
    const int r = e / D, d = e % D;
    const int rr = rb * QR + r, i = rr / G, h = kvh * G + rr % G;
    if (i >= Sq || d >= dv) continue;
    float M = -INFINITY;
    for (int g = 0; g < KPP; ++g) M = fmax(M, ml[g][r][0]);
    float L = 0.0f, O = 0.0f;
    for (int g = 0; g < KPP; ++g) {
      const float mg = ml[g][r][0];
      if (mg != -INFINITY) L += ml[g][r][1] * exp(mg - M);
      O += ob[g][e];
    }
    if (nsplit == 1) {
      const float sink = has_sinks ? ((__global const float*)sinks)[s_off + h] : -INFINITY;
      const float val = fa_normalize(O, L, M, has_sinks, sink);
      st(out, odt, o_off + (((long)b * Sq + i) * Hq + h) * dv + d, val);
    } else {
      const long P = ((((long)split * B + b) * Sq + i) * Hq + h) * (D + 2);
      if (M != -INFINITY) part[P + d] = O;  // the merge reads o only where m is finite
      if (d == 0) {
        part[P + D] = M;
        part[P + D + 1] = L;
      }
    }
  }
}
