// Prepended to every kiln OpenCL program: dtype codes (graph/dtype.h),
// loads and stores that convert through f32 (f16 with the core
// vload_half/vstore_half, so no cl_khr_fp16 is needed; bf16 as ushort bits),
// and the device-error record (backends/device_error.h).
#define DT_F32 0
#define DT_F16 1
#define DT_BF16 2
#define DT_I32 3
#define DT_Q8 4

typedef __global const uchar* gin;
typedef __global uchar* gout;

inline float bf16_to_f32(ushort b) { return as_float(((uint)b) << 16); }
inline ushort f32_to_bf16(float f) {
  uint u = as_uint(f);
  if (isnan(f)) return (ushort)((u >> 16) | 0x40);
  u += 0x7fffu + ((u >> 16) & 1u);
  return (ushort)(u >> 16);
}

// f16 bits -> f32 without cl_khr_fp16 (normal, subnormal, inf and NaN).
// KILN_PTX (NVIDIA, set by the host): the PTX conversion instruction, two
// halves per call; otherwise bit arithmetic.
inline float h2f(uint h) {
  const uint em = h & 0x7fffu;
  float f = as_float(em << 13) * 0x1.0p112f;
  if (em >= 0x7c00u) f = as_float((em << 13) | 0x7f800000u);
  return as_float(as_uint(f) | ((h & 0x8000u) << 16));
}
#ifdef KILN_PTX
inline float2 h2f2(uint u) {
  float a, b;
  asm("{\n\t.reg .b16 lo, hi;\n\tmov.b32 {lo, hi}, %2;\n\tcvt.f32.f16 %0, lo;\n\tcvt.f32.f16 %1, hi;\n\t}"
      : "=f"(a), "=f"(b)
      : "r"(u));
  return (float2)(a, b);
}
#else
inline float2 h2f2(uint u) { return (float2)(h2f(u & 0xffffu), h2f(u >> 16)); }
#endif
inline float8 h2f8(uint4 u) { return (float8)(h2f2(u.x), h2f2(u.y), h2f2(u.z), h2f2(u.w)); }
// A 16-byte load of data read once (weights, K/V). KILN_NC (NVIDIA, set by
// the host from KILN_OPENCL_NC, to measure) picks a PTX cache hint: 1 the
// non-coherent path, 2 evict-first, 3 non-coherent without L1 allocation;
// otherwise a plain load.
#if defined(KILN_PTX) && defined(KILN_NC)
#if KILN_NC == 1
#define KILN_LDQ "ld.global.nc.v4.u32"
#elif KILN_NC == 2
#define KILN_LDQ "ld.global.cs.v4.u32"
#else
#define KILN_LDQ "ld.global.nc.L1::no_allocate.v4.u32"
#endif
inline uint4 ld_stream(__global const uint4* p) {
  uint4 r;
  asm(KILN_LDQ " {%0, %1, %2, %3}, [%4];" : "=r"(r.x), "=r"(r.y), "=r"(r.z), "=r"(r.w) : "l"(p));
  return r;
}
#else
inline uint4 ld_stream(__global const uint4* p) { return *p; }
#endif
// bf16 bits (8 packed in a uint4) -> f32.
inline float8 b2f8(uint4 u) {
  return (float8)(as_float(u.x << 16), as_float(u.x & 0xffff0000u), as_float(u.y << 16), as_float(u.y & 0xffff0000u),
                  as_float(u.z << 16), as_float(u.z & 0xffff0000u), as_float(u.w << 16), as_float(u.w & 0xffff0000u));
}

// Element i (elements of dtype dt from p). i32 converts to float.
inline float ld(gin p, int dt, long i) {
  if (dt == DT_F32) return ((__global const float*)p)[i];
  if (dt == DT_F16) return vload_half(i, (__global const half*)p);
  if (dt == DT_BF16) return bf16_to_f32(((__global const ushort*)p)[i]);
  return (float)((__global const int*)p)[i];
}
inline void st(gout p, int dt, long i, float v) {
  if (dt == DT_F32) ((__global float*)p)[i] = v;
  else if (dt == DT_F16) vstore_half_rte(v, i, (__global half*)p);
  else if (dt == DT_BF16) ((__global ushort*)p)[i] = f32_to_bf16(v);
  else ((__global int*)p)[i] = isnan(v) ? 0 : convert_int_sat_rtz(v);
}
// q8_0: element k of the row at byte offset `row` (blocks of an f16 scale and
// 32 int8).
inline float ld_q8(gin p, long row, int k) {
  const long blk = row + (long)(k >> 5) * 34;
  const float d = vload_half(0, (__global const half*)(p + blk));
  return d * (float)((__global const char*)p)[blk + 2 + (k & 31)];
}

// Linear index -> 4-d index (dims outermost first, rank padded to 4).
// A finished attention row (OPS.md): O / L for a row whose running max is
// M, with the sink logit (has_sinks) in the softmax's denominator; 0 for a
// row with no live key.
inline float fa_normalize(float O, float L, float M, int has_sinks, float sink) {
  const float MM = has_sinks ? fmax(M, sink) : M;
  if (MM == -INFINITY) return 0.0f;
  const float wm = M == -INFINITY ? 0.0f : exp(M - MM);
  const float den = L * wm + (has_sinks ? exp(sink - MM) : 0.0f);
  return den == 0.0f ? 0.0f : O * wm / den;
}

inline int4 unravel(long i, int4 dims) {
  int4 r;
  r.w = (int)(i % dims.w); i /= dims.w;
  r.z = (int)(i % dims.z); i /= dims.z;
  r.y = (int)(i % dims.y); i /= dims.y;
  r.x = (int)i;
  return r;
}
inline long dot4(int4 idx, int4 strides) {
  return (long)idx.x * strides.x + (long)idx.y * strides.y + (long)idx.z * strides.z + (long)idx.w * strides.w;
}

// The first error of a submission wins the record (five 32-bit words).
inline void report_error(__global uint* err, uint code, uint node, int value, int limit, uint position) {
  if (atomic_cmpxchg((volatile __global uint*)err, 0u, code) == 0u) {
    err[1] = node;
    err[2] = as_uint(value);
    err[3] = as_uint(limit);
    err[4] = position;
  }
}
