// Depthwise causal conv1d over x [B,T,C] with a carried state [B,K-1,C].
// Two kernels: the outputs (reading the old state), then the new state, one
// work-item per (b, c) walking its rows upward: new row r reads old row T+r
// > r, so an aliased state is read before it is overwritten.
inline float xpad(gin x, long x_off, int4 xs, int xdt, gin s, long s_off, int4 ss, int sdt, int has_s, int b,
                  int r, int c, int K) {
  if (r < K - 1) return has_s ? ld(s, sdt, s_off + (long)b * ss.x + (long)r * ss.y + c) : 0.0f;
  return ld(x, xdt, x_off + (long)b * xs.x + (long)(r - (K - 1)) * xs.y + c);
}

__kernel void conv1d_out(gout y, long y_off, gin x, long x_off, int4 xs, int xdt, gin w, long w_off, int w_row, int wdt,
                         gin s, long s_off, int4 ss, int sdt, int has_s, int B, int T, int C, int K, int silu) {
  const long g = get_global_id(0);
  if (g >= (long)B * T * C) return;
  const int c = (int)(g % C);
  const int t = (int)((g / C) % T);
  const int b = (int)(g / ((long)C * T));
  float acc = 0.0f;
  for (int k = 0; k < K; ++k) {
    acc += ld(w, wdt, w_off + (long)c * w_row + k) * xpad(x, x_off, xs, xdt, s, s_off, ss, sdt, has_s, b, t + k, c, K);
  }
  if (silu) acc = acc / (1.0f + exp(-acc));
  st(y, xdt, y_off + g, acc);
}

__kernel void conv1d_state(gout ns, long n_off, int4 nstr, int ndt, gin x, long x_off, int4 xs, int xdt, gin s,
                           long s_off, int4 ss, int sdt, int has_s, int B, int T, int C, int K) {
  const long g = get_global_id(0);
  if (g >= (long)B * C) return;
  const int c = (int)(g % C), b = (int)(g / C);
  for (int r = 0; r < K - 1; ++r) {
    const float v = xpad(x, x_off, xs, xdt, s, s_off, ss, sdt, has_s, b, T + r, c, K);
    st(ns, ndt, n_off + (long)b * nstr.x + (long)r * nstr.y + c, v);
  }
}
