// Shared by every kernel: buffer bindings (each slot declared under several
// element types, aliased), the per-dispatch parameter words, dtype loads
// and stores, and the device error record.
#extension GL_EXT_shader_16bit_storage : require
#extension GL_EXT_shader_8bit_storage : require
#extension GL_EXT_shader_explicit_arithmetic_types_int8 : require
#extension GL_EXT_shader_explicit_arithmetic_types_int16 : require
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_arithmetic : require

// DType values (graph/dtype.h).
#define DT_F32 0
#define DT_F16 1
#define DT_BF16 2
#define DT_I32 3
#define DT_Q8 4

layout(push_constant) uniform PushConstants { uint pbase; uint pc1; uint pc2; uint pc3; } pc;
layout(std430, set = 0, binding = 8) readonly buffer ParamBuf { uint params_[]; };
uint P(uint i) { return params_[pc.pbase + i]; }
int PI(uint i) { return int(params_[pc.pbase + i]); }
float PF(uint i) { return uintBitsToFloat(params_[pc.pbase + i]); }

layout(std430, set = 0, binding = 9) buffer ErrorBuf { uint err_code; uint err_node; int err_value; int err_limit; uint err_pos; };
// The first error of a run wins (compare-and-swap of the code from 0).
void RaiseError(uint code, int value, int limit, uint pos) {
  if (atomicCompSwap(err_code, 0u, code) == 0u) {
    err_node = P(0);
    err_value = value;
    err_limit = limit;
    err_pos = pos;
  }
}

#define DECLARE_SLOT_QUAL(B, N, QUAL) \
  layout(std430, set = 0, binding = B) QUAL buffer N##_F32 { float N##_f[]; }; \
  layout(std430, set = 0, binding = B) QUAL buffer N##_U16 { uint16_t N##_h[]; }; \
  layout(std430, set = 0, binding = B) QUAL buffer N##_U32 { uint N##_u[]; }; \
  layout(std430, set = 0, binding = B) QUAL buffer N##_I8 { int8_t N##_b[]; }; \
  layout(std430, set = 0, binding = B) QUAL buffer N##_U8 { uint8_t N##_ub[]; }; \
  layout(std430, set = 0, binding = B) QUAL buffer N##_V4 { uvec4 N##_v4[]; }; \
  layout(std430, set = 0, binding = B) QUAL buffer N##_F4 { vec4 N##_f4[]; };
#define DECLARE_SLOT(B, N) DECLARE_SLOT_QUAL(B, N, )
// A binding the shader only reads: `readonly` lets the driver use its
// read-only cached load path (the memory may lie in the same VkBuffer as
// an output, at other offsets: never written during the dispatch).
#define DECLARE_SLOT_RO(B, N) DECLARE_SLOT_QUAL(B, N, readonly)

float bf16_to_f32(uint h) { return uintBitsToFloat(h << 16); }
float f16_to_f32(uint h) { return unpackHalf2x16(h).x; }
// Round to nearest even; NaN stays NaN.
uint f32_to_bf16(float v) {
  uint u = floatBitsToUint(v);
  if (isnan(v)) return (u >> 16) | 0x40u;
  return (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
}
// cast's rule: NaN -> 0, truncate, saturate.
uint f32_to_i32_bits(float v) {
  if (isnan(v)) return 0u;
  if (v >= 2147483648.0) return 0x7fffffffu;
  if (v <= -2147483648.0) return 0x80000000u;
  return uint(int(trunc(v)));
}
uint f32_to_f16(float v) { return packHalf2x16(vec2(v, 0.0)) & 0xffffu; }

// Element i of slot N read as f32, for a dtype that is a constant (folds).
// q8_0: i is a byte offset of the block plus the element within (see LOADQ8).
#define LOADF(N, DT, i) \
  ((DT) == DT_F32 ? N##_f[i] : \
   (DT) == DT_F16 ? f16_to_f32(uint(N##_h[i])) : \
   (DT) == DT_BF16 ? bf16_to_f32(uint(N##_h[i])) : float(int(N##_u[i])))

// Element e of a q8_0 row starting at byte `row`: f16 scale, then 32 int8.
#define LOADQ8(N, row, e) \
  (f16_to_f32(uint(N##_h[((row) + ((e) >> 5) * 34u) >> 1])) * float(int(N##_b[(row) + ((e) >> 5) * 34u + 2u + ((e) & 31u)])))

#define STOREF(N, DT, i, v) \
  { if ((DT) == DT_F32) N##_f[i] = (v); \
    else if ((DT) == DT_F16) N##_h[i] = uint16_t(f32_to_f16(v)); \
    else if ((DT) == DT_BF16) N##_h[i] = uint16_t(f32_to_bf16(v)); \
    else N##_u[i] = f32_to_i32_bits(v); }

// Strides of a tensor parameter block at word w: offset, s0, s1, s2, s3.
uint TOffset(uint w, uvec4 idx) {
  return P(w) + idx.x * P(w + 1) + idx.y * P(w + 2) + idx.z * P(w + 3) + idx.w * P(w + 4);
}
uvec4 Unflatten(uint i, uvec4 d) {
  uvec4 r;
  r.w = i % d.w; i /= d.w;
  r.z = i % d.z; i /= d.z;
  r.y = i % d.y; i /= d.y;
  r.x = i;
  return r;
}
uvec4 PDims(uint w) { return uvec4(P(w), P(w + 1), P(w + 2), P(w + 3)); }

// flash_attn's causal rule, j > i + (Skv - Sq), in unsigned arithmetic that
// cannot wrap: with Sq > Skv the first Sq - Skv rows see no key at all.
bool CausalHidden(uint i, uint j, uint Sq, uint Skv) { return j + Sq > i + Skv; }
// The keys [0, CausalKeys) that query row i sees.
uint CausalKeys(uint i, uint Sq, uint Skv) { return i + Skv + 1u > Sq ? i + Skv + 1u - Sq : 0u; }
