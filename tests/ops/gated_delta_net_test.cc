// gated_delta_net reference (ops/gated_delta_net.cc) against a step-by-step
// matrix-form calculation written here, splitting T across calls, in-place
// state, and inference errors.
#include "ops/gated_delta_net.h"

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/ops/op_test_util.h"

namespace kiln {
namespace {

using ::testing::HasSubstr;

struct GdnCase {
  int64_t B = 2, T = 5, Hk = 2, Hv = 4, K = 8, V = 6;
  bool kda = false, l2norm = false, with_state = true, tiled = false;
  DType qk_dtype = DType::kF32, v_dtype = DType::kF32;
  double scale = 0;

  std::string Describe() const {
    return absl::StrCat("B=", B, " T=", T, " Hk=", Hk, " Hv=", Hv, " K=", K, " V=", V,
                        " kda=", kda, " l2norm=", l2norm, " state=", with_state,
                        " tiled=", tiled, " qk=", DTypeName(qk_dtype), " v=", DTypeName(v_dtype),
                        " scale=", scale);
  }
  Attrs attrs() const {
    return {{"scale", scale}, {"l2norm_qk", l2norm},
            {"head_map", std::string(tiled ? "tiled" : "grouped")}};
  }
};

// Row-major input values of one case.
struct GdnValues {
  std::vector<double> q, k, v, g, beta, state;
};

std::vector<double> Uniform(std::mt19937& rng, int64_t n, double lo, double hi) {
  std::uniform_real_distribution<double> u(lo, hi);
  std::vector<double> x(n);
  for (double& e : x) e = u(rng);
  return x;
}

GdnValues RandomInputs(const GdnCase& c, uint32_t seed) {
  std::mt19937 rng(seed);
  GdnValues x;
  x.q = Uniform(rng, c.B * c.T * c.Hk * c.K, -1, 1);
  // Without l2norm, small keys keep the recurrence tame.
  x.k = Uniform(rng, c.B * c.T * c.Hk * c.K, c.l2norm ? -1 : -0.5, c.l2norm ? 1 : 0.5);
  x.v = Uniform(rng, c.B * c.T * c.Hv * c.V, -1, 1);
  x.g = Uniform(rng, c.B * c.T * c.Hv * (c.kda ? c.K : 1), -1, 0);
  x.beta = Uniform(rng, c.B * c.T * c.Hv, 0.05, 0.95);
  if (c.with_state) x.state = Uniform(rng, c.B * c.Hv * c.K * c.V, -1, 1);
  return x;
}

using Matrix = std::vector<std::vector<double>>;  // [rows][cols]

Matrix MatMul(const Matrix& a, const Matrix& b) {
  Matrix c(a.size(), std::vector<double>(b[0].size(), 0.0));
  for (size_t i = 0; i < a.size(); ++i)
    for (size_t l = 0; l < b.size(); ++l)
      for (size_t j = 0; j < b[0].size(); ++j) c[i][j] += a[i][l] * b[l][j];
  return c;
}

// The recurrence in matrix form, one token at a time:
//   S_t = (I - beta k k^T) D S_{t-1} + beta k v^T,  D = diag(exp g)
//   o_t = scale * S_t^T q
// which is what OPS.md's decay / delta-rule steps amount to.
struct Oracle {
  std::vector<double> out, final_state;
};

Oracle StepByStep(const GdnCase& c, const GdnValues& x) {
  const double scale = c.scale != 0 ? c.scale : 1 / std::sqrt(static_cast<double>(c.K));
  Oracle r;
  r.out.assign(c.B * c.T * c.Hv * c.V, 0.0);
  r.final_state.assign(c.B * c.Hv * c.K * c.V, 0.0);
  auto row = [&](const std::vector<double>& src, int64_t b, int64_t t, int64_t h) {
    std::vector<double> e(src.begin() + ((b * c.T + t) * c.Hk + h) * c.K,
                          src.begin() + ((b * c.T + t) * c.Hk + h + 1) * c.K);
    if (c.l2norm) {
      double n = 1e-6;
      for (double a : e) n += a * a;
      for (double& a : e) a /= std::sqrt(n);
    }
    return e;
  };
  for (int64_t b = 0; b < c.B; ++b) {
    for (int64_t hv = 0; hv < c.Hv; ++hv) {
      const int64_t kh = c.tiled ? hv % c.Hk : hv / (c.Hv / c.Hk);
      Matrix S(c.K, std::vector<double>(c.V, 0.0));
      if (c.with_state)
        for (int64_t i = 0; i < c.K; ++i)
          for (int64_t j = 0; j < c.V; ++j) S[i][j] = x.state[((b * c.Hv + hv) * c.K + i) * c.V + j];
      for (int64_t t = 0; t < c.T; ++t) {
        const std::vector<double> q = row(x.q, b, t, kh), k = row(x.k, b, t, kh);
        const int64_t bth = (b * c.T + t) * c.Hv + hv;
        const double beta = x.beta[bth];
        Matrix A(c.K, std::vector<double>(c.K, 0.0));  // (I - beta k k^T) D
        for (int64_t i = 0; i < c.K; ++i) {
          for (int64_t l = 0; l < c.K; ++l) {
            const double decay = std::exp(c.kda ? x.g[bth * c.K + l] : x.g[bth]);
            A[i][l] = ((i == l ? 1.0 : 0.0) - beta * k[i] * k[l]) * decay;
          }
        }
        S = MatMul(A, S);
        for (int64_t i = 0; i < c.K; ++i)
          for (int64_t j = 0; j < c.V; ++j) S[i][j] += beta * k[i] * x.v[bth * c.V + j];
        for (int64_t j = 0; j < c.V; ++j) {
          double o = 0;
          for (int64_t i = 0; i < c.K; ++i) o += S[i][j] * q[i];
          r.out[bth * c.V + j] = scale * o;
        }
      }
      for (int64_t i = 0; i < c.K; ++i)
        for (int64_t j = 0; j < c.V; ++j) r.final_state[((b * c.Hv + hv) * c.K + i) * c.V + j] = S[i][j];
    }
  }
  return r;
}

struct GdnTensors {
  TestTensor q, k, v, g, beta, state;
};

// Tensors of `c` holding `x`; the values in `x` are replaced by what the
// tensors hold (rounded to their dtypes) so the oracle sees the same.
GdnTensors MakeTensors(const GdnCase& c, GdnValues& x) {
  GdnTensors t;
  t.q = MakeTensor(c.qk_dtype, {c.B, c.T, c.Hk, c.K}, x.q);
  t.k = MakeTensor(c.qk_dtype, {c.B, c.T, c.Hk, c.K}, x.k);
  t.v = MakeTensor(c.v_dtype, {c.B, c.T, c.Hv, c.V}, x.v);
  t.g = c.kda ? MakeTensor(DType::kF32, {c.B, c.T, c.Hv, c.K}, x.g)
              : MakeTensor(DType::kF32, {c.B, c.T, c.Hv}, x.g);
  t.beta = MakeTensor(DType::kF32, {c.B, c.T, c.Hv}, x.beta);
  if (c.with_state) t.state = MakeTensor(DType::kF32, {c.B, c.Hv, c.K, c.V}, x.state);
  x.q = Values(t.q), x.k = Values(t.k), x.v = Values(t.v), x.g = Values(t.g), x.beta = Values(t.beta);
  if (c.with_state) x.state = Values(t.state);
  return t;
}

absl::StatusOr<std::vector<TestTensor>> RunGdn(const GdnCase& c, const GdnTensors& t) {
  return RunReference("gated_delta_net",
                      {&t.q, &t.k, &t.v, &t.g, &t.beta, c.with_state ? &t.state : nullptr},
                      c.attrs());
}

void ExpectClose(const std::vector<double>& got, const std::vector<double>& want, double rel,
                 absl::string_view what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (size_t i = 0; i < got.size(); ++i) {
    ASSERT_NEAR(got[i], want[i], rel * std::max(1.0, std::fabs(want[i]))) << what << " at " << i;
  }
}

void CheckAgainstOracle(const GdnCase& c, uint32_t seed) {
  SCOPED_TRACE(c.Describe());
  GdnValues x = RandomInputs(c, seed);
  const GdnTensors t = MakeTensors(c, x);
  auto outs = RunGdn(c, t);
  ASSERT_TRUE(outs.ok()) << outs.status();
  ASSERT_EQ(outs->size(), 2u);
  EXPECT_EQ((*outs)[0].view.dtype, c.v_dtype);
  EXPECT_EQ(Dims((*outs)[0].view), (std::vector<int64_t>{c.B, c.T, c.Hv, c.V}));
  EXPECT_EQ((*outs)[1].view.dtype, DType::kF32);
  EXPECT_EQ(Dims((*outs)[1].view), (std::vector<int64_t>{c.B, c.Hv, c.K, c.V}));
  const Oracle want = StepByStep(c, x);
  const double rel = c.v_dtype == DType::kF32 ? 1e-6 : c.v_dtype == DType::kF16 ? 1e-3 : 8e-3;
  ExpectClose(Values((*outs)[0]), want.out, rel, "out");
  ExpectClose(Values((*outs)[1]), want.final_state, 1e-6, "final_state");
}

TEST(GatedDeltaNetReference, MatchesStepByStepOracle) {
  uint32_t seed = 1;
  for (bool kda : {false, true}) {
    for (bool tiled : {false, true}) {
      for (bool l2norm : {false, true}) {
        for (bool with_state : {false, true}) {
          GdnCase c;
          c.kda = kda, c.tiled = tiled, c.l2norm = l2norm, c.with_state = with_state;
          CheckAgainstOracle(c, seed++);
        }
      }
    }
  }
  GdnCase base;
  auto check = [&](auto tweak) { GdnCase c = base; tweak(c); CheckAgainstOracle(c, seed++); };
  check([](GdnCase& c) { c.Hk = 4, c.Hv = 4; });                        // no grouping
  check([](GdnCase& c) { c.Hk = 1, c.Hv = 3, c.kda = true; });
  check([](GdnCase& c) { c.Hk = 2, c.Hv = 6, c.tiled = true, c.l2norm = true; });
  check([](GdnCase& c) { c.K = 4, c.V = 16; });                          // K < V
  check([](GdnCase& c) { c.K = 1, c.V = 1, c.T = 7; });
  check([](GdnCase& c) { c.T = 1; });                                    // decode
  check([](GdnCase& c) { c.T = 0; });                                    // final_state = state
  check([](GdnCase& c) { c.scale = 0.3; c.kda = true; });
  check([](GdnCase& c) { c.qk_dtype = DType::kF16, c.v_dtype = DType::kF16; c.l2norm = true; });
  check([](GdnCase& c) { c.qk_dtype = DType::kBF16, c.v_dtype = DType::kBF16; c.kda = true; });
  check([](GdnCase& c) { c.qk_dtype = DType::kBF16, c.v_dtype = DType::kF32; });
  check([](GdnCase& c) { c.qk_dtype = DType::kF32, c.v_dtype = DType::kF16; c.tiled = true; });
}

TEST(GatedDeltaNetReference, HandComputedScalarCase) {
  // K = V = 1 (scale 1), no state. t0: decay 1/2 of 0; u = 0; d = 0.5 * 2 = 1;
  // S = 1; out = 1 * q0 = 1. t1: S = 1/2; u = 1/2; d = 1 * (3 - 1/2) = 2.5;
  // S = 3; out = 3 * q1 = 6.
  TestTensor q = MakeTensor(DType::kF32, {1, 2, 1, 1}, {1, 2});
  TestTensor k = MakeTensor(DType::kF32, {1, 2, 1, 1}, {1, 1});
  TestTensor v = MakeTensor(DType::kF32, {1, 2, 1, 1}, {2, 3});
  TestTensor g = MakeTensor(DType::kF32, {1, 2, 1}, {std::log(0.5), std::log(0.5)});
  TestTensor beta = MakeTensor(DType::kF32, {1, 2, 1}, {0.5, 1});
  auto outs = RunReference("gated_delta_net", {&q, &k, &v, &g, &beta});
  ASSERT_TRUE(outs.ok()) << outs.status();
  EXPECT_THAT(Values((*outs)[0]), ::testing::ElementsAre(1.0, 6.0));
  EXPECT_THAT(Values((*outs)[1]), ::testing::ElementsAre(3.0));

  // The same with a state 4 and l2norm (|k| = 1 becomes 1/sqrt(1 + 1e-6)).
  TestTensor state = MakeTensor(DType::kF32, {1, 1, 1, 1}, {4});
  outs = RunReference("gated_delta_net", {&q, &k, &v, &g, &beta, &state},
                      {{"l2norm_qk", true}, {"scale", 2.0}});
  ASSERT_TRUE(outs.ok()) << outs.status();
  const double n = 1 / std::sqrt(1 + kGdnL2Eps);
  double S = 4 * 0.5;
  S += n * 0.5 * (2 - S * n);
  const double o0 = 2 * S * n;
  S *= 0.5;
  S += n * 1 * (3 - S * n);
  const double o1 = 2 * S * (2 / std::sqrt(4 + kGdnL2Eps));
  EXPECT_NEAR(Values((*outs)[0])[0], o0, 1e-6);
  EXPECT_NEAR(Values((*outs)[0])[1], o1, 1e-6);
  EXPECT_NEAR(Values((*outs)[1])[0], S, 1e-6);
}

TEST(GatedDeltaNetReference, HeadMaps) {
  EXPECT_EQ(GdnKeyHead(3, 4, 2, GdnHeadMap::kGrouped), 1);
  EXPECT_EQ(GdnKeyHead(1, 4, 2, GdnHeadMap::kGrouped), 0);
  EXPECT_EQ(GdnKeyHead(1, 4, 2, GdnHeadMap::kTiled), 1);
  EXPECT_EQ(GdnKeyHead(2, 4, 2, GdnHeadMap::kTiled), 0);
  Node n;
  n.attrs["head_map"] = std::string("tiled");
  EXPECT_EQ(GdnHeadMapOf(n), GdnHeadMap::kTiled);
  n.attrs["head_map"] = std::string("grouped");
  EXPECT_EQ(GdnHeadMapOf(n), GdnHeadMap::kGrouped);
  n.attrs["scale"] = 0.0;
  EXPECT_DOUBLE_EQ(EffectiveScale(n, 16), 0.25);
  EXPECT_TRUE(GdnIsKda(4));
  EXPECT_FALSE(GdnIsKda(3));
}

// Values of tokens [t0, t1) of a row-major [B, T, ...] array with `inner`
// values per token.
std::vector<double> Tokens(const std::vector<double>& x, int64_t B, int64_t T, int64_t inner,
                           int64_t t0, int64_t t1) {
  std::vector<double> r;
  for (int64_t b = 0; b < B; ++b) {
    r.insert(r.end(), x.begin() + (b * T + t0) * inner, x.begin() + (b * T + t1) * inner);
  }
  return r;
}

// Runs `c` over tokens [t0, t1) of `x`, starting from `state` (row-major
// values, empty = none); appends the outputs to `out` (token-major per batch
// is restored by the caller) and returns the final state.
std::vector<double> RunTokens(const GdnCase& full, const GdnValues& x, int64_t t0, int64_t t1,
                              const std::vector<double>& state,
                              std::vector<std::vector<double>>& out_chunks) {
  GdnCase c = full;
  c.T = t1 - t0;
  c.with_state = !state.empty();
  GdnValues part;
  part.q = Tokens(x.q, full.B, full.T, full.Hk * full.K, t0, t1);
  part.k = Tokens(x.k, full.B, full.T, full.Hk * full.K, t0, t1);
  part.v = Tokens(x.v, full.B, full.T, full.Hv * full.V, t0, t1);
  part.g = Tokens(x.g, full.B, full.T, full.Hv * (full.kda ? full.K : 1), t0, t1);
  part.beta = Tokens(x.beta, full.B, full.T, full.Hv, t0, t1);
  part.state = state;
  const GdnTensors t = MakeTensors(c, part);
  auto outs = RunGdn(c, t);
  EXPECT_TRUE(outs.ok()) << outs.status();
  if (!outs.ok()) return {};
  out_chunks.push_back(Values((*outs)[0]));
  return Values((*outs)[1]);
}

// Reassembles [B, T_i, ...] chunks into [B, T, ...].
std::vector<double> JoinTokens(const std::vector<std::vector<double>>& chunks, int64_t B,
                               int64_t per_batch_total) {
  std::vector<double> r;
  for (int64_t b = 0; b < B; ++b) {
    for (const auto& ch : chunks) {
      const int64_t n = static_cast<int64_t>(ch.size()) / B;
      r.insert(r.end(), ch.begin() + b * n, ch.begin() + (b + 1) * n);
    }
  }
  EXPECT_EQ(static_cast<int64_t>(r.size()), B * per_batch_total);
  return r;
}

TEST(GatedDeltaNetReference, SplittingTokensAcrossCallsCarriesTheState) {
  uint32_t seed = 100;
  for (bool kda : {false, true}) {
    for (bool with_state : {false, true}) {
      GdnCase c;
      c.T = 6, c.kda = kda, c.with_state = with_state, c.l2norm = kda, c.tiled = !kda;
      SCOPED_TRACE(c.Describe());
      GdnValues x = RandomInputs(c, seed++);
      const GdnTensors all = MakeTensors(c, x);
      auto whole = RunGdn(c, all);
      ASSERT_TRUE(whole.ok()) << whole.status();
      const std::vector<double> whole_out = Values((*whole)[0]), whole_state = Values((*whole)[1]);
      const int64_t per_token = c.Hv * c.V;

      // T calls of one token each.
      std::vector<std::vector<double>> chunks;
      std::vector<double> state = x.state;
      for (int64_t t = 0; t < c.T; ++t) state = RunTokens(c, x, t, t + 1, state, chunks);
      // The state passes through f32 between calls: tolerance for that rounding.
      ExpectClose(JoinTokens(chunks, c.B, c.T * per_token), whole_out, 1e-5, "one token per call");
      ExpectClose(state, whole_state, 1e-5, "state after one token per call");

      // Two calls: 2 tokens, then 4.
      chunks.clear();
      state = RunTokens(c, x, 0, 2, x.state, chunks);
      state = RunTokens(c, x, 2, c.T, state, chunks);
      ExpectClose(JoinTokens(chunks, c.B, c.T * per_token), whole_out, 1e-5, "two calls");
      ExpectClose(state, whole_state, 1e-5, "state after two calls");
    }
  }
}

TEST(GatedDeltaNetReference, FinalStateMayAliasState) {
  const OpSchema* schema = FindOp("gated_delta_net");
  ASSERT_NE(schema, nullptr);
  EXPECT_THAT(schema->inplace, ::testing::ElementsAre(std::pair<int, int>{kGdnState, kGdnFinalState}));

  for (bool kda : {false, true}) {
    GdnCase c;
    c.kda = kda;
    SCOPED_TRACE(c.Describe());
    GdnValues x = RandomInputs(c, 7 + kda);
    GdnTensors t = MakeTensors(c, x);
    auto separate = RunGdn(c, t);
    ASSERT_TRUE(separate.ok()) << separate.status();

    Node node;
    node.name = "gdn";
    node.op = "gated_delta_net";
    node.attrs = c.attrs();
    ASSERT_TRUE(NormalizeAttrs(*schema, node).ok());
    TestTensor out = ZeroTensor(c.v_dtype, {c.B, c.T, c.Hv, c.V});
    const std::vector<TensorView> inputs = {t.q.view, t.k.view, t.v.view,
                                            t.g.view, t.beta.view, t.state.view};
    const std::vector<TensorView> outputs = {out.view, t.state.view};  // in place
    ASSERT_TRUE(schema->reference(node, inputs, outputs).ok());
    EXPECT_EQ(Values(out), Values((*separate)[0]));
    EXPECT_EQ(Values(t.state), Values((*separate)[1]));
  }
}

absl::Status InferError(std::vector<std::vector<int64_t>> dims, std::vector<DType> dtypes,
                        Attrs attrs = {}) {
  std::vector<TestTensor> ts;
  std::vector<const TestTensor*> ptrs;
  ts.reserve(dims.size());
  for (size_t i = 0; i < dims.size(); ++i) {
    ts.push_back(dims[i].empty() ? TestTensor{} : ZeroTensor(dtypes[i], dims[i]));
  }
  for (size_t i = 0; i < dims.size(); ++i) ptrs.push_back(dims[i].empty() ? nullptr : &ts[i]);
  return RunReference("gated_delta_net", ptrs, std::move(attrs)).status();
}

TEST(GatedDeltaNetInfer, Errors) {
  const DType f = DType::kF32;
  const std::vector<DType> f6(6, f);
  // Hv % Hk
  absl::Status st = InferError({{1, 3, 4, 8}, {1, 3, 4, 8}, {1, 3, 6, 8}, {1, 3, 6}, {1, 3, 6}}, f6);
  EXPECT_THAT(st.message(), HasSubstr("test_node"));
  EXPECT_THAT(st.message(), HasSubstr("'v' (tensor 't2'"));
  EXPECT_THAT(st.message(), HasSubstr("Hv % Hk"));
  // g neither [B,T,Hv] nor [B,T,Hv,K]
  st = InferError({{1, 3, 2, 8}, {1, 3, 2, 8}, {1, 3, 4, 8}, {1, 3, 2}, {1, 3, 4}}, f6);
  EXPECT_THAT(st.message(), HasSubstr("'g' (tensor 't3'"));
  st = InferError({{1, 3, 2, 8}, {1, 3, 2, 8}, {1, 3, 4, 8}, {1, 3, 4, 4}, {1, 3, 4}}, f6);
  EXPECT_THAT(st.message(), HasSubstr("'g'"));
  st = InferError({{1, 3, 2, 8}, {1, 3, 2, 8}, {1, 3, 4, 8}, {1, 3, 4}, {1, 3, 4}},
                  {f, f, f, DType::kF16, f});
  EXPECT_THAT(st.message(), HasSubstr("'g'"));
  // beta, state
  st = InferError({{1, 3, 2, 8}, {1, 3, 2, 8}, {1, 3, 4, 8}, {1, 3, 4}, {1, 3, 2}}, f6);
  EXPECT_THAT(st.message(), HasSubstr("'beta' (tensor 't4'"));
  st = InferError({{1, 3, 2, 8}, {1, 3, 2, 8}, {1, 3, 4, 8}, {1, 3, 4}, {1, 3, 4}, {1, 4, 8, 4}}, f6);
  EXPECT_THAT(st.message(), HasSubstr("'state' (tensor 't5'"));
  st = InferError({{1, 3, 2, 8}, {1, 3, 2, 8}, {1, 3, 4, 8}, {1, 3, 4}, {1, 3, 4}, {1, 4, 8, 8}},
                  {f, f, f, f, f, DType::kF16});
  EXPECT_THAT(st.message(), HasSubstr("'state'"));
  // q/k mismatch, v batch/time mismatch, dtypes, rank
  st = InferError({{1, 3, 2, 8}, {1, 3, 2, 4}, {1, 3, 4, 8}, {1, 3, 4}, {1, 3, 4}}, f6);
  EXPECT_THAT(st.message(), HasSubstr("'k' (tensor 't1'"));
  st = InferError({{1, 3, 2, 8}, {1, 3, 2, 8}, {1, 3, 4, 8}, {1, 3, 4}, {1, 3, 4}},
                  {f, DType::kF16, f, f, f});
  EXPECT_THAT(st.message(), HasSubstr("'k'"));
  st = InferError({{1, 3, 2, 8}, {1, 3, 2, 8}, {1, 2, 4, 8}, {1, 3, 4}, {1, 3, 4}}, f6);
  EXPECT_THAT(st.message(), HasSubstr("'v'"));
  st = InferError({{1, 3, 2, 8}, {1, 3, 2, 8}, {1, 3, 4, 8}, {1, 3, 4}, {1, 3, 4}},
                  {DType::kI32, DType::kI32, f, f, f});
  EXPECT_THAT(st.message(), HasSubstr("'q'"));
  st = InferError({{3, 2, 8}, {3, 2, 8}, {1, 3, 4, 8}, {1, 3, 4}, {1, 3, 4}}, f6);
  EXPECT_THAT(st.message(), HasSubstr("'q'"));
  // Attributes.
  st = InferError({{1, 3, 2, 8}, {1, 3, 2, 8}, {1, 3, 4, 8}, {1, 3, 4}, {1, 3, 4}}, f6,
                  {{"head_map", std::string("interleaved")}});
  EXPECT_THAT(st.message(), HasSubstr("'head_map'"));
  st = InferError({{1, 3, 2, 8}, {1, 3, 2, 8}, {1, 3, 4, 8}, {1, 3, 4}, {1, 3, 4}}, f6,
                  {{"scale", -0.5}});
  EXPECT_THAT(st.message(), HasSubstr("'scale'"));
  // Good ones pass: GDA and KDA, with a state.
  EXPECT_TRUE(InferError({{1, 3, 2, 8}, {1, 3, 2, 8}, {1, 3, 4, 16}, {1, 3, 4}, {1, 3, 4}, {1, 4, 8, 16}},
                         {DType::kBF16, DType::kBF16, DType::kF16, f, f, f})
                  .ok());
  EXPECT_TRUE(InferError({{1, 3, 2, 8}, {1, 3, 2, 8}, {1, 3, 4, 16}, {1, 3, 4, 8}, {1, 3, 4}}, f6).ok());
}

}  // namespace
}  // namespace kiln
