// Row-wise ops over the last axis, one work-group (WG = 256) per row, with
// local-memory reductions (no subgroup functions: NVIDIA's OpenCL has none).
#define WG 256

inline float wg_sum(float v, __local float* red) {
  const int l = get_local_id(0);
  red[l] = v;
  barrier(CLK_LOCAL_MEM_FENCE);
  for (int s = WG / 2; s > 0; s >>= 1) {
    if (l < s) red[l] += red[l + s];
    barrier(CLK_LOCAL_MEM_FENCE);
  }
  const float r = red[0];
  barrier(CLK_LOCAL_MEM_FENCE);
  return r;
}

// kind: 0 rms_norm, 1 layer_norm, 2 l2_norm. Rows are the three outer dims
// (row_dims) of x with strides x_str (elements); y is contiguous.
__kernel __attribute__((reqd_work_group_size(WG, 1, 1)))
void norm(gout y, long y_off, gin x, long x_off, int4 x_str, int4 row_dims, int xdt, gin w, long w_off, int wdt, int has_w,
          gin b, long b_off, int bdt, int has_b, int C, int kind, float eps) {
  __local float red[WG];
  const long row = get_group_id(0);
  const int l = get_local_id(0);
  const long base = x_off + dot4(unravel(row, row_dims), x_str);
  float mean = 0.0f;
  if (kind == 1) {
    float s = 0.0f;
    for (int c = l; c < C; c += WG) s += ld(x, xdt, base + c);
    mean = wg_sum(s, red) / C;
  }
  float ss = 0.0f;
  for (int c = l; c < C; c += WG) {
    const float e = ld(x, xdt, base + c) - mean;
    ss += e * e;
  }
  ss = wg_sum(ss, red);
  const float denom = kind == 2 ? ss : ss / C;
  const float r = 1.0f / sqrt(denom + eps);
  for (int c = l; c < C; c += WG) {
    float e = (ld(x, xdt, base + c) - mean) * r;
    if (has_w) e *= ld(w, wdt, w_off + c);
    if (has_b) e += ld(b, bdt, b_off + c);
    st(y, xdt, y_off + row * C + c, e);
  }
}

// softmax(scale * x + mask) over the last axis; the mask broadcasts (stride
// 0). A row of all -inf gives zeros; a NaN logit makes the row NaN.
__kernel __attribute__((reqd_work_group_size(WG, 1, 1)))
void softmax(gout y, long y_off, gin x, long x_off, int4 x_str, int4 row_dims, int xdt, gin m, long m_off, int4 m_str,
             int m_cs, int mdt, int has_m, int C, float scale) {
  __local float red[WG];
  __local int nan_flag;
  const long row = get_group_id(0);
  const int l = get_local_id(0);
  const int4 ri = unravel(row, row_dims);
  const long base = x_off + dot4(ri, x_str);
  const long mbase = m_off + dot4(ri, m_str);
  if (l == 0) nan_flag = 0;
  barrier(CLK_LOCAL_MEM_FENCE);
  float mx = -INFINITY;
  int saw_nan = 0;
  for (int c = l; c < C; c += WG) {
    float s = scale * ld(x, xdt, base + c);
    if (has_m) s += ld(m, mdt, mbase + (long)c * m_cs);
    saw_nan |= isnan(s);
    mx = fmax(mx, s);
  }
  if (saw_nan) atomic_or(&nan_flag, 1);
  red[l] = mx;
  barrier(CLK_LOCAL_MEM_FENCE);
  for (int s = WG / 2; s > 0; s >>= 1) {
    if (l < s) red[l] = fmax(red[l], red[l + s]);
    barrier(CLK_LOCAL_MEM_FENCE);
  }
  mx = red[0];
  const int any_nan = nan_flag;
  barrier(CLK_LOCAL_MEM_FENCE);
  if (any_nan) {
    for (int c = l; c < C; c += WG) st(y, xdt, y_off + row * C + c, NAN);
    return;
  }
  const int all_masked = mx == -INFINITY;
  float den = 0.0f;
  for (int c = l; c < C; c += WG) {
    float s = scale * ld(x, xdt, base + c);
    if (has_m) s += ld(m, mdt, mbase + (long)c * m_cs);
    den += all_masked ? 0.0f : exp(s - mx);
  }
  den = wg_sum(den, red);
  for (int c = l; c < C; c += WG) {
    float s = scale * ld(x, xdt, base + c);
    if (has_m) s += ld(m, mdt, mbase + (long)c * m_cs);
    st(y, xdt, y_off + row * C + c, all_masked ? 0.0f : exp(s - mx) / den);
  }
}

// sum / mean / max over one axis: one work-item per output. `dims` are x's
// dims with the axis set to 1 (the output's order), `a_str` the axis stride.
__kernel void reduce(gout y, long y_off, gin x, long x_off, int4 x_str, int4 dims, int xdt, int a_str, int n, long count,
                     int op) {
  const long i = get_global_id(0);
  if (i >= count) return;
  const long base = x_off + dot4(unravel(i, dims), x_str);
  float sum = 0.0f, mx = -INFINITY;
  int saw_nan = 0;
  for (int k = 0; k < n; ++k) {
    const float v = ld(x, xdt, base + (long)k * a_str);
    sum += v;
    saw_nan |= isnan(v);
    mx = fmax(mx, v);
  }
  const float r = op == 2 ? (saw_nan ? NAN : mx) : op == 1 ? sum / n : sum;
  st(y, xdt, y_off + i, r);
}
