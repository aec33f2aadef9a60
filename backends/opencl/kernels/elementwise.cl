// Elementwise ops over a contiguous output of up to 4 dims; inputs are
// strided views (a stride of 0 broadcasts). Dtypes and the op are kernel
// arguments (uniform branches), so one program serves every variant.
#define OP_ADD 0
#define OP_SUB 1
#define OP_MUL 2
#define OP_DIV 3

__kernel void binary(gout y, long y_off, gin a, long a_off, int4 a_str, gin b, long b_off, int4 b_str,
                     int4 dims, long n, int dt, int op) {
  const long i = get_global_id(0);
  if (i >= n) return;
  const int4 idx = unravel(i, dims);
  const long ia = a_off + dot4(idx, a_str), ib = b_off + dot4(idx, b_str);
  if (dt == DT_I32) {
    // Two's complement wrap-around: unsigned arithmetic.
    const uint va = (uint)((__global const int*)a)[ia], vb = (uint)((__global const int*)b)[ib];
    const uint r = op == OP_ADD ? va + vb : op == OP_SUB ? va - vb : va * vb;
    ((__global int*)y)[y_off + i] = as_int(r);
    return;
  }
  const float va = ld(a, dt, ia), vb = ld(b, dt, ib);
  float r;
  switch (op) {
    case OP_ADD: r = va + vb; break;
    case OP_SUB: r = va - vb; break;
    case OP_MUL: r = va * vb; break;
    default: r = va / vb; break;
  }
  st(y, dt, y_off + i, r);
}

// The order of ops::UnaryOp.
#define U_NEG 0
#define U_ABS 1
#define U_EXP 2
#define U_LOG 3
#define U_SQRT 4
#define U_RSQRT 5
#define U_TANH 6
#define U_SIGMOID 7
#define U_SILU 8
#define U_GELU_TANH 9
#define U_GELU_ERF 10
#define U_RELU 11
#define U_SOFTPLUS 12
#define U_SCALE 13

inline float unary_f(int op, float x, float fa, float fb) {
  switch (op) {
    case U_NEG: return -x;
    case U_ABS: return fabs(x);
    case U_EXP: return exp(x);
    case U_LOG: return log(x);
    case U_SQRT: return sqrt(x);
    case U_RSQRT: return 1.0f / sqrt(x);
    case U_TANH: return tanh(x);
    case U_SIGMOID: return 1.0f / (1.0f + exp(-x));
    case U_SILU: return x / (1.0f + exp(-x));
    case U_GELU_TANH: return 0.5f * x * (1.0f + tanh(0.79788456080286535588f * (x + 0.044715f * x * x * x)));
    case U_GELU_ERF: return 0.5f * x * (1.0f + erf(x * 0.70710678118654752440f));
    case U_RELU: return x < 0.0f ? 0.0f : x;
    case U_SOFTPLUS: return fmax(x, 0.0f) + log1p(exp(-fabs(x)));
    default: return x * fa + fb;
  }
}

__kernel void unary(gout y, long y_off, gin x, long x_off, int4 x_str, int4 dims, long n, int dt, int op,
                    float fa, float fb) {
  const long i = get_global_id(0);
  if (i >= n) return;
  const long ix = x_off + dot4(unravel(i, dims), x_str);
  if (dt == DT_I32) {
    const int v = ((__global const int*)x)[ix];
    const uint u = (uint)v;
    ((__global int*)y)[y_off + i] = (op == U_NEG || v < 0) ? as_int(0u - u) : v;
    return;
  }
  st(y, dt, y_off + i, unary_f(op, ld(x, dt, ix), fa, fb));
}

// cast: any float/i32 -> any float/i32; a q8_0 source has byte strides for
// its three outer dims and its row's blocks along the innermost.
__kernel void cast(gout y, long y_off, int ydt, gin x, long x_off, int4 x_str, int xdt, int4 dims, long n) {
  const long i = get_global_id(0);
  if (i >= n) return;
  const int4 idx = unravel(i, dims);
  if (xdt == DT_Q8) {
    const long row = x_off + (long)idx.x * x_str.x + (long)idx.y * x_str.y + (long)idx.z * x_str.z;
    st(y, ydt, y_off + i, ld_q8(x, row, idx.w));
    return;
  }
  const long ix = x_off + dot4(idx, x_str);
  if (xdt == DT_I32 && ydt == DT_I32) {
    ((__global int*)y)[y_off + i] = ((__global const int*)x)[ix];
    return;
  }
  st(y, ydt, y_off + i, ld(x, xdt, ix));
}
