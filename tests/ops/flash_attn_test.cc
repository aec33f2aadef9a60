// flash_attn reference (ops/flash_attn.cc) against a plain softmax(QK^T)V
// written here from OPS.md, hand-computed cases, and inference errors.
#include "ops/flash_attn.h"

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "graph/builder.h"
#include "gtest/gtest.h"
#include "tests/ops/op_test_util.h"

namespace kiln {
namespace {

using ::testing::HasSubstr;

constexpr double kInf = std::numeric_limits<double>::infinity();

// One flash_attn configuration. mask_b == 0 means no mask.
struct FaCase {
  int64_t B = 1, Sq = 1, Skv = 1, Hq = 1, Hkv = 1, Dk = 4, Dv = 4;
  DType q_dtype = DType::kF32, k_dtype = DType::kF32, v_dtype = DType::kF32;
  int64_t mask_b = 0, mask_h = 0;
  DType mask_dtype = DType::kF32;
  double mask_inf_fraction = 0.25;  // share of -inf mask entries
  bool sinks = false, causal = false;
  enum class KvLayout { kContiguous, kPadded, kHeadMajorCache } kv_layout = KvLayout::kContiguous;
  double scale = 0, softcap = 0, max_bias = 0;
  std::string out_dtype = "f32";

  std::string Describe() const {
    return absl::StrCat("B=", B, " Sq=", Sq, " Skv=", Skv, " Hq=", Hq, " Hkv=", Hkv, " Dk=", Dk,
                        " Dv=", Dv, " q=", DTypeName(q_dtype), " k=", DTypeName(k_dtype),
                        " v=", DTypeName(v_dtype), " mask=[", mask_b, ",", mask_h, "] ",
                        DTypeName(mask_dtype), " sinks=", sinks, " causal=", causal,
                        " kv_layout=", static_cast<int>(kv_layout), " scale=", scale,
                        " softcap=", softcap, " max_bias=", max_bias, " out=", out_dtype);
  }
};

std::vector<double> RandomValues(std::mt19937& rng, int64_t n, double lo, double hi) {
  std::uniform_real_distribution<double> u(lo, hi);
  std::vector<double> v(n);
  for (double& x : v) x = u(rng);
  return v;
}

// A [B,S,H,D] tensor stored head-major inside a larger cache [B,H,L,D]
// (L > S), seen through strides: how a KV cache may be read. The unused
// cells hold NaN.
TestTensor MakeHeadMajorCacheView(DType dtype, const std::vector<int64_t>& dims,
                                  const std::vector<double>& values) {
  const int64_t B = dims[0], S = dims[1], H = dims[2], D = dims[3], L = S + 3;
  TestTensor t;
  const int64_t rb = RowBytes(dtype, D);
  t.bytes = std::make_shared<std::vector<std::byte>>(B * H * L * rb);
  std::memset(t.bytes->data(), 0xff, t.bytes->size());
  TensorInfo info;
  info.dtype = dtype;
  info.dims = dims;
  info.strides = {H * L * rb, rb, L * rb, ElementSize(dtype)};
  t.view = TensorView::Of(info, t.bytes->data());
  op_test_internal::Fill(t.view, values);
  return t;
}

// ALiBi slope written from OPS.md by repeated multiplication.
double TestSlope(int64_t h, int64_t Hq, double max_bias) {
  if (max_bias == 0) return 1;
  int64_t n = 1;
  while (2 * n <= Hq) n *= 2;
  const double base = h < n ? std::pow(2.0, -max_bias / n) : std::pow(2.0, -max_bias / (2 * n));
  const int64_t power = h < n ? h + 1 : 2 * (h - n) + 1;
  double slope = 1;
  for (int64_t p = 0; p < power; ++p) slope *= base;
  return slope;
}

// Plain attention over row-major value arrays: for each row, the logits of
// all keys plus the sink as one more column, softmax, then the weighted sum
// of V over the keys only.
std::vector<double> NaiveAttention(const FaCase& c, const std::vector<double>& q,
                                   const std::vector<double>& k, const std::vector<double>& v,
                                   const std::vector<double>& mask,
                                   const std::vector<double>& sinks) {
  const double scale = c.scale != 0 ? c.scale : 1 / std::sqrt(static_cast<double>(c.Dk));
  const int64_t group = c.Hq / c.Hkv;
  std::vector<double> out(c.B * c.Sq * c.Hq * c.Dv, 0.0);
  for (int64_t b = 0; b < c.B; ++b) {
    for (int64_t h = 0; h < c.Hq; ++h) {
      const int64_t kvh = h / group;
      for (int64_t i = 0; i < c.Sq; ++i) {
        std::vector<double> logits;
        for (int64_t j = 0; j < c.Skv; ++j) {
          double s = 0;
          for (int64_t d = 0; d < c.Dk; ++d) {
            s += q[((b * c.Sq + i) * c.Hq + h) * c.Dk + d] *
                 k[((b * c.Skv + j) * c.Hkv + kvh) * c.Dk + d];
          }
          s *= scale;
          if (c.softcap > 0) s = c.softcap * std::tanh(s / c.softcap);
          if (c.mask_b > 0) {
            const int64_t mb = c.mask_b == 1 ? 0 : b, mh = c.mask_h == 1 ? 0 : h;
            s += TestSlope(h, c.Hq, c.max_bias) * mask[((mb * c.mask_h + mh) * c.Sq + i) * c.Skv + j];
          }
          if (c.causal && j - (c.Skv - c.Sq) > i) s = -kInf;
          logits.push_back(s);
        }
        if (c.sinks) logits.push_back(sinks[h]);
        double mx = -kInf;
        for (double s : logits) mx = std::max(mx, s);
        if (mx == -kInf) continue;  // nothing to attend to: zeros
        std::vector<double> p(logits.size());
        double sum = 0;
        for (size_t j = 0; j < logits.size(); ++j) sum += p[j] = std::exp(logits[j] - mx);
        for (int64_t d = 0; d < c.Dv; ++d) {
          double acc = 0;
          for (int64_t j = 0; j < c.Skv; ++j) {
            acc += p[j] / sum * v[((b * c.Skv + j) * c.Hkv + kvh) * c.Dv + d];
          }
          out[((b * c.Sq + i) * c.Hq + h) * c.Dv + d] = acc;
        }
      }
    }
  }
  return out;
}

Attrs AttrsOf(const FaCase& c) {
  return {{"scale", c.scale},     {"softcap", c.softcap},
          {"max_bias", c.max_bias}, {"causal", c.causal},
          {"out_dtype", c.out_dtype}};
}

// Runs the reference on random inputs for `c` and checks it against
// NaiveAttention on the same (dtype-rounded) values.
void CheckAgainstNaive(const FaCase& c, uint32_t seed) {
  SCOPED_TRACE(c.Describe());
  std::mt19937 rng(seed);
  const std::vector<int64_t> q_dims = {c.B, c.Sq, c.Hq, c.Dk}, k_dims = {c.B, c.Skv, c.Hkv, c.Dk},
                             v_dims = {c.B, c.Skv, c.Hkv, c.Dv};
  TestTensor q = MakeTensor(c.q_dtype, q_dims, RandomValues(rng, c.B * c.Sq * c.Hq * c.Dk, -1, 1));
  auto kv = [&](DType dtype, const std::vector<int64_t>& dims) {
    const auto values = RandomValues(rng, dims[0] * dims[1] * dims[2] * dims[3], -1, 1);
    switch (c.kv_layout) {
      case FaCase::KvLayout::kContiguous: return MakeTensor(dtype, dims, values);
      case FaCase::KvLayout::kPadded: return MakePaddedTensor(dtype, dims, values);
      case FaCase::KvLayout::kHeadMajorCache: return MakeHeadMajorCacheView(dtype, dims, values);
    }
    return TestTensor{};
  };
  TestTensor k = kv(c.k_dtype, k_dims);
  TestTensor v = kv(c.v_dtype, v_dims);

  TestTensor mask, sinks;
  if (c.mask_b > 0) {
    std::vector<double> m = RandomValues(rng, c.mask_b * c.mask_h * c.Sq * c.Skv, -2, 2);
    std::bernoulli_distribution masked(c.mask_inf_fraction);
    for (double& x : m) if (masked(rng)) x = -kInf;
    mask = MakeTensor(c.mask_dtype, {c.mask_b, c.mask_h, c.Sq, c.Skv}, m);
  }
  if (c.sinks) sinks = MakeTensor(DType::kF32, {c.Hq}, RandomValues(rng, c.Hq, -2, 2));

  auto outs = RunReference("flash_attn", {&q, &k, &v, c.mask_b > 0 ? &mask : nullptr,
                                          c.sinks ? &sinks : nullptr},
                           AttrsOf(c));
  ASSERT_TRUE(outs.ok()) << outs.status();
  ASSERT_EQ(outs->size(), 1u);
  const TensorView& out = (*outs)[0].view;
  EXPECT_EQ(Dims(out), (std::vector<int64_t>{c.B, c.Sq, c.Hq, c.Dv}));
  EXPECT_EQ(out.dtype, *ParseDType(c.out_dtype));

  const std::vector<double> want =
      NaiveAttention(c, Values(q), Values(k), Values(v), c.mask_b > 0 ? Values(mask) : std::vector<double>{},
                     c.sinks ? Values(sinks) : std::vector<double>{});
  const std::vector<double> got = Values(out);
  ASSERT_EQ(got.size(), want.size());
  const double rel = out.dtype == DType::kF32 ? 1e-6 : out.dtype == DType::kF16 ? 1e-3 : 8e-3;
  for (size_t i = 0; i < got.size(); ++i) {
    ASSERT_FALSE(std::isnan(got[i])) << "at " << i;
    ASSERT_NEAR(got[i], want[i], rel * std::max(1.0, std::fabs(want[i]))) << "at " << i;
  }
}

TEST(FlashAttnReference, MatchesNaiveAttentionOverManyConfigs) {
  std::vector<FaCase> cases;
  // A grid over head grouping, mask broadcasting, causal and sinks.
  struct Heads { int64_t hq, hkv; };
  for (Heads heads : {Heads{1, 1}, Heads{4, 4}, Heads{4, 2}, Heads{6, 1}, Heads{8, 2}}) {
    for (int mask_mode = 0; mask_mode < 5; ++mask_mode) {
      for (bool causal : {false, true}) {
        for (bool sinks : {false, true}) {
          FaCase c;
          c.B = 2, c.Sq = 3, c.Skv = 5, c.Hq = heads.hq, c.Hkv = heads.hkv, c.Dk = 8, c.Dv = 8;
          // none, [1,1], [B,1], [1,Hq], [B,Hq]
          const int64_t mb[5] = {0, 1, c.B, 1, c.B}, mh[5] = {0, 1, 1, c.Hq, c.Hq};
          c.mask_b = mb[mask_mode], c.mask_h = mh[mask_mode];
          c.mask_dtype = mask_mode % 2 ? DType::kF16 : DType::kF32;
          c.causal = causal, c.sinks = sinks;
          cases.push_back(c);
        }
      }
    }
  }
  // Single features, one at a time and mixed.
  FaCase base;
  base.B = 2, base.Sq = 4, base.Skv = 7, base.Hq = 4, base.Hkv = 2, base.Dk = 16, base.Dv = 16;
  auto add = [&](auto tweak) { FaCase c = base; tweak(c); cases.push_back(c); };
  add([](FaCase& c) { c.Dk = 8, c.Dv = 24; });                      // Dk != Dv
  add([](FaCase& c) { c.Dk = 32, c.Dv = 8; });
  add([](FaCase& c) { c.scale = 0.7; });
  add([](FaCase& c) { c.softcap = 0.5; c.scale = 3; });             // softcap bites
  add([](FaCase& c) { c.mask_b = 1, c.mask_h = 1, c.max_bias = 8; });  // ALiBi, Hq = 4
  add([](FaCase& c) { c.Hq = 6, c.Hkv = 3, c.mask_b = 2, c.mask_h = 6, c.max_bias = 5; });  // n = 4 < Hq
  add([](FaCase& c) { c.Hq = 12, c.Hkv = 4, c.mask_b = 1, c.mask_h = 1, c.max_bias = 2.5, c.softcap = 1, c.sinks = true, c.causal = true; });
  add([](FaCase& c) { c.Sq = 7; c.causal = true; });                // Sq == Skv
  add([](FaCase& c) { c.Sq = 1; c.Skv = 9; c.causal = true; });     // decode
  add([](FaCase& c) { c.Skv = 0; c.sinks = true; });                // no keys at all: zeros
  add([](FaCase& c) { c.B = 3, c.mask_b = 3, c.mask_h = 1, c.mask_inf_fraction = 0.9; c.sinks = true; });
  add([](FaCase& c) { c.q_dtype = DType::kF16, c.k_dtype = DType::kF16, c.v_dtype = DType::kF16; });
  add([](FaCase& c) { c.q_dtype = DType::kBF16, c.k_dtype = DType::kBF16, c.v_dtype = DType::kBF16; });
  add([](FaCase& c) { c.k_dtype = DType::kF16, c.v_dtype = DType::kBF16; });
  add([](FaCase& c) { c.Dk = 32, c.Dv = 64, c.k_dtype = DType::kQ8_0, c.v_dtype = DType::kQ8_0, c.q_dtype = DType::kF16; });
  add([](FaCase& c) { c.Dk = 64, c.Dv = 32, c.k_dtype = DType::kQ8_0, c.v_dtype = DType::kF16; c.mask_b = 2, c.mask_h = 4; c.causal = true; });
  add([](FaCase& c) { c.out_dtype = "f16"; });
  add([](FaCase& c) { c.out_dtype = "bf16"; c.sinks = true; });
  // Strided views of K/V: padded rows and dims, and a head-major cache.
  add([](FaCase& c) { c.kv_layout = FaCase::KvLayout::kPadded; c.mask_b = 1, c.mask_h = 4; });
  add([](FaCase& c) { c.kv_layout = FaCase::KvLayout::kPadded; c.k_dtype = DType::kQ8_0; c.v_dtype = DType::kF16; c.Dk = 32; });
  add([](FaCase& c) { c.kv_layout = FaCase::KvLayout::kHeadMajorCache; c.causal = true; c.sinks = true; });
  add([](FaCase& c) { c.kv_layout = FaCase::KvLayout::kHeadMajorCache; c.k_dtype = DType::kQ8_0; c.v_dtype = DType::kQ8_0; c.Dk = 32; c.Dv = 32; c.mask_b = 2, c.mask_h = 1; });

  uint32_t seed = 1;
  for (const FaCase& c : cases) CheckAgainstNaive(c, seed++);
}

// Runs flash_attn on f32 tensors given as values.
absl::StatusOr<std::vector<double>> RunF32(std::vector<int64_t> q_dims, std::vector<double> q,
                                           std::vector<int64_t> k_dims, std::vector<double> k,
                                           std::vector<int64_t> v_dims, std::vector<double> v,
                                           Attrs attrs = {}, std::vector<int64_t> mask_dims = {},
                                           std::vector<double> mask = {},
                                           std::vector<double> sinks = {}) {
  TestTensor tq = MakeTensor(DType::kF32, q_dims, q), tk = MakeTensor(DType::kF32, k_dims, k),
             tv = MakeTensor(DType::kF32, v_dims, v), tm, ts;
  if (!mask.empty()) tm = MakeTensor(DType::kF32, mask_dims, mask);
  if (!sinks.empty()) ts = MakeTensor(DType::kF32, {static_cast<int64_t>(sinks.size())}, sinks);
  auto outs = RunReference("flash_attn", {&tq, &tk, &tv, mask.empty() ? nullptr : &tm,
                                          sinks.empty() ? nullptr : &ts},
                           std::move(attrs));
  if (!outs.ok()) return outs.status();
  return Values((*outs)[0]);
}

TEST(FlashAttnReference, HandComputedWeights) {
  // Dk = 1 so the default scale is 1; logits 0 and ln 2 weigh v 1:2.
  auto out = RunF32({1, 1, 1, 1}, {1}, {1, 2, 1, 1}, {0, std::log(2.0)}, {1, 2, 1, 1}, {3, 6});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_NEAR((*out)[0], (3 + 2 * 6) / 3.0, 1e-6);

  // scale 2: logits 0 and 2 ln 2 weigh 1:4.
  out = RunF32({1, 1, 1, 1}, {1}, {1, 2, 1, 1}, {0, std::log(2.0)}, {1, 2, 1, 1}, {3, 6},
               {{"scale", 2.0}});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_NEAR((*out)[0], (3 + 4 * 6) / 5.0, 1e-6);

  // Default scale with Dk = 4 is 1/2: q.k = 2 ln 2 becomes ln 2.
  const double l = std::log(2.0) / 2;
  out = RunF32({1, 1, 1, 4}, {1, 1, 1, 1}, {1, 2, 1, 4}, {0, 0, 0, 0, l, l, l, l}, {1, 2, 1, 1},
               {3, 6});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_NEAR((*out)[0], 5.0, 1e-6);
}

TEST(FlashAttnReference, SinkIsARawLogit) {
  // Equal key logits 0; a sink ln 2 (no scale applied to it, though scale = 5)
  // adds 2 to the denominator and nothing to the numerator.
  auto out = RunF32({1, 1, 1, 1}, {0}, {1, 2, 1, 1}, {1, 1}, {1, 2, 1, 2}, {4, 1, 8, 3},
                    {{"scale", 5.0}}, {}, {}, {std::log(2.0)});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_NEAR((*out)[0], (4 + 8) / 4.0, 1e-6);
  EXPECT_NEAR((*out)[1], (1 + 3) / 4.0, 1e-6);
}

TEST(FlashAttnReference, CausalWithFewerQueriesThanKeys) {
  // q = 0: uniform weights over the visible keys. Sq = 2, Skv = 3: row 0 sees
  // keys 0..1, row 1 sees keys 0..2.
  auto out = RunF32({1, 2, 1, 1}, {0, 0}, {1, 3, 1, 1}, {5, -3, 2}, {1, 3, 1, 1}, {1, 2, 6},
                    {{"causal", true}});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_NEAR((*out)[0], 1.5, 1e-6);
  EXPECT_NEAR((*out)[1], 3.0, 1e-6);
  EXPECT_TRUE(CausalMasked(0, 2, 2, 3));
  EXPECT_FALSE(CausalMasked(1, 2, 2, 3));
}

TEST(FlashAttnReference, SoftcapThenMask) {
  // softcap 1: logits 0 and 10 become 0 and tanh(10); mask adds 0 and -1.
  auto out = RunF32({1, 1, 1, 1}, {1}, {1, 2, 1, 1}, {0, 10}, {1, 2, 1, 1}, {1, 2},
                    {{"softcap", 1.0}}, {1, 1, 1, 2}, {0, -1});
  ASSERT_TRUE(out.ok()) << out.status();
  const double w = std::exp(std::tanh(10.0) - 1);
  EXPECT_NEAR((*out)[0], (1 + 2 * w) / (1 + w), 1e-6);
}

TEST(FlashAttnReference, AlibiSlopes) {
  EXPECT_EQ(AlibiSlope(3, 8, 0.0), 1.0);
  // Hq = 8, max_bias 8: n = 8, slope(h) = 2^-(h+1).
  for (int h = 0; h < 8; ++h) EXPECT_DOUBLE_EQ(AlibiSlope(h, 8, 8.0), std::pow(2.0, -(h + 1)));
  // Hq = 6, max_bias 8: n = 4; h < 4: 4^-(h+1); h = 4: 2^-1; h = 5: 2^-3.
  for (int h = 0; h < 4; ++h) EXPECT_DOUBLE_EQ(AlibiSlope(h, 6, 8.0), std::pow(4.0, -(h + 1)));
  EXPECT_DOUBLE_EQ(AlibiSlope(4, 6, 8.0), 0.5);
  EXPECT_DOUBLE_EQ(AlibiSlope(5, 6, 8.0), 0.125);

  // Head 1 of 2 with max_bias 2 (n = 2): slope 2^-2 scales the mask.
  // q = 0, so logits are 0 + slope * mask = {0, -1} for head 1 (head 0: slope 1/2).
  auto out = RunF32({1, 1, 2, 1}, {0, 0}, {1, 2, 1, 1}, {1, 1}, {1, 2, 1, 1}, {1, 2},
                    {{"max_bias", 2.0}}, {1, 1, 1, 2}, {0, -4});
  ASSERT_TRUE(out.ok()) << out.status();
  for (int h = 0; h < 2; ++h) {
    const double w = std::exp(-4 * std::pow(2.0, -(h + 1)));
    EXPECT_NEAR((*out)[h], (1 + 2 * w) / (1 + w), 1e-6) << "head " << h;
  }
}

TEST(FlashAttnReference, GroupedQueryHeadsShareConsecutively) {
  // Hq = 4, Hkv = 2: heads 0,1 read KV head 0 (v = 10), heads 2,3 KV head 1 (v = 20).
  EXPECT_EQ(FlashAttnKvHead(1, 4, 2), 0);
  EXPECT_EQ(FlashAttnKvHead(2, 4, 2), 1);
  auto out = RunF32({1, 1, 4, 1}, {1, 1, 1, 1}, {1, 1, 2, 1}, {1, 1}, {1, 1, 2, 1}, {10, 20});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_THAT(*out, ::testing::ElementsAre(10, 10, 20, 20));
}

TEST(FlashAttnReference, FullyMaskedRowsAreZerosNeverNaN) {
  // Row 0: every key -inf; row 1: one key visible.
  const std::vector<double> mask = {-kInf, -kInf, -kInf, 0};
  auto out = RunF32({1, 2, 1, 1}, {1, 1}, {1, 2, 1, 1}, {1, 2}, {1, 2, 1, 1}, {3, 7}, {},
                    {1, 1, 2, 2}, mask);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_THAT(*out, ::testing::ElementsAre(0.0, 7.0));

  // With a sink the masked row is still zeros (the sink has no value).
  out = RunF32({1, 2, 1, 1}, {1, 1}, {1, 2, 1, 1}, {1, 2}, {1, 2, 1, 1}, {3, 7}, {}, {1, 1, 2, 2},
               mask, {0.5});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ((*out)[0], 0.0);
  EXPECT_NEAR((*out)[1], 7 * std::exp(2 - 2.0) / (1 + std::exp(0.5 - 2)), 1e-6);

  // Causal with Sq > Skv: the first query row sees no key at all.
  out = RunF32({1, 3, 1, 1}, {1, 1, 1}, {1, 2, 1, 1}, {0, 0}, {1, 2, 1, 1}, {4, 8},
               {{"causal", true}});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_THAT(*out, ::testing::ElementsAre(0.0, 4.0, 6.0));

  // A -inf sink with every key masked: still zeros.
  out = RunF32({1, 1, 1, 1}, {1}, {1, 1, 1, 1}, {1}, {1, 1, 1, 1}, {3}, {}, {1, 1, 1, 1}, {-kInf},
               {-kInf});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ((*out)[0], 0.0);
}

TEST(FlashAttnReference, MaskedKeysAreNotRead) {
  // Unwritten KV cache cells may hold anything, NaN included; a key masked
  // with -inf (or causally) must not reach the output.
  const double nan = std::numeric_limits<double>::quiet_NaN();
  auto out = RunF32({1, 1, 1, 1}, {1}, {1, 3, 1, 1}, {0, nan, nan}, {1, 3, 1, 1}, {5, nan, nan}, {},
                    {1, 1, 1, 3}, {0, -kInf, -kInf});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ((*out)[0], 5.0);
  // Causal, Sq = Skv = 2: row 0 must not see key 1; row 1 does, so its NaN shows.
  out = RunF32({1, 2, 1, 1}, {1, 1}, {1, 2, 1, 1}, {0, nan}, {1, 2, 1, 1}, {5, nan},
               {{"causal", true}});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ((*out)[0], 5.0);
  EXPECT_TRUE(std::isnan((*out)[1]));
}

TEST(FlashAttnReference, OutDtype) {
  TestTensor q = MakeTensor(DType::kF32, {1, 1, 1, 1}, {1}), k = MakeTensor(DType::kF32, {1, 1, 1, 1}, {1}),
             v = MakeTensor(DType::kF32, {1, 1, 1, 1}, {1.0 / 3});
  for (const char* dt : {"f32", "f16", "bf16"}) {
    auto outs = RunReference("flash_attn", {&q, &k, &v}, {{"out_dtype", std::string(dt)}});
    ASSERT_TRUE(outs.ok()) << outs.status();
    const DType want = *ParseDType(dt);
    EXPECT_EQ((*outs)[0].view.dtype, want);
    EXPECT_EQ(Values((*outs)[0])[0], RoundTo(want, 1.0 / 3));
  }
}

// Inference errors name the node and the offending tensor.
absl::Status InferError(std::vector<std::vector<int64_t>> dims, std::vector<DType> dtypes,
                        Attrs attrs = {}) {
  std::vector<TestTensor> ts;
  std::vector<const TestTensor*> ptrs;
  ts.reserve(dims.size());
  for (size_t i = 0; i < dims.size(); ++i) {
    ts.push_back(dims[i].empty() ? TestTensor{} : ZeroTensor(dtypes[i], dims[i]));
  }
  for (size_t i = 0; i < dims.size(); ++i) ptrs.push_back(dims[i].empty() ? nullptr : &ts[i]);
  return RunReference("flash_attn", ptrs, std::move(attrs)).status();
}

TEST(FlashAttnInfer, Errors) {
  const DType f = DType::kF32;
  // Hq % Hkv
  absl::Status st = InferError({{1, 2, 6, 8}, {1, 4, 4, 8}, {1, 4, 4, 8}}, {f, f, f});
  EXPECT_THAT(st.message(), HasSubstr("test_node"));
  EXPECT_THAT(st.message(), HasSubstr("'k' (tensor 't1'"));
  EXPECT_THAT(st.message(), HasSubstr("Hq % Hkv"));
  // mask: wrong Hm, wrong Sq, wrong rank, wrong dtype
  for (std::vector<int64_t> m : std::vector<std::vector<int64_t>>{
           {1, 3, 2, 4}, {2, 1, 2, 4}, {1, 1, 1, 4}, {1, 1, 2, 5}, {2, 4}}) {
    st = InferError({{1, 2, 4, 8}, {1, 4, 2, 8}, {1, 4, 2, 8}, m}, {f, f, f, f});
    EXPECT_THAT(st.message(), HasSubstr("test_node")) << ShapeString(m);
    EXPECT_THAT(st.message(), HasSubstr("'mask' (tensor 't3'")) << ShapeString(m);
  }
  st = InferError({{1, 2, 4, 8}, {1, 4, 2, 8}, {1, 4, 2, 8}, {1, 1, 2, 4}}, {f, f, f, DType::kBF16});
  EXPECT_THAT(st.message(), HasSubstr("'mask'"));
  // max_bias without a mask
  st = InferError({{1, 2, 4, 8}, {1, 4, 2, 8}, {1, 4, 2, 8}}, {f, f, f}, {{"max_bias", 8.0}});
  EXPECT_THAT(st.message(), HasSubstr("test_node"));
  EXPECT_THAT(st.message(), HasSubstr("max_bias"));
  EXPECT_THAT(st.message(), HasSubstr("mask"));
  // k/v mismatches, dtypes, sinks
  st = InferError({{1, 2, 4, 8}, {1, 4, 2, 16}, {1, 4, 2, 8}}, {f, f, f});
  EXPECT_THAT(st.message(), HasSubstr("'k' (tensor 't1'"));
  st = InferError({{1, 2, 4, 8}, {1, 4, 2, 8}, {1, 5, 2, 8}}, {f, f, f});
  EXPECT_THAT(st.message(), HasSubstr("'v' (tensor 't2'"));
  st = InferError({{2, 2, 4, 8}, {1, 4, 2, 8}, {1, 4, 2, 8}}, {f, f, f});
  EXPECT_THAT(st.message(), HasSubstr("'k'"));
  st = InferError({{1, 2, 4, 8}, {1, 4, 2, 8}, {1, 4, 2, 8}}, {DType::kI32, f, f});
  EXPECT_THAT(st.message(), HasSubstr("'q'"));
  st = InferError({{1, 2, 4, 32}, {1, 4, 2, 32}, {1, 4, 2, 8}}, {DType::kQ8_0, f, f});
  EXPECT_THAT(st.message(), HasSubstr("'q'"));
  st = InferError({{1, 2, 4, 8}, {1, 4, 2, 8}, {1, 4, 2, 8}, {}, {2}}, {f, f, f, f, f});
  EXPECT_THAT(st.message(), HasSubstr("'sinks' (tensor 't4'"));
  st = InferError({{1, 2, 4}, {1, 4, 2, 8}, {1, 4, 2, 8}}, {f, f, f});
  EXPECT_THAT(st.message(), HasSubstr("'q'"));
  // Attribute ranges and choices.
  st = InferError({{1, 2, 4, 8}, {1, 4, 2, 8}, {1, 4, 2, 8}}, {f, f, f}, {{"scale", -1.0}});
  EXPECT_THAT(st.message(), HasSubstr("'scale'"));
  st = InferError({{1, 2, 4, 8}, {1, 4, 2, 8}, {1, 4, 2, 8}}, {f, f, f}, {{"softcap", -1.0}});
  EXPECT_THAT(st.message(), HasSubstr("'softcap'"));
  st = InferError({{1, 2, 4, 8}, {1, 4, 2, 8}, {1, 4, 2, 8}}, {f, f, f}, {{"scale", kInf}});
  EXPECT_THAT(st.message(), HasSubstr("'scale'"));
  st = InferError({{1, 2, 4, 8}, {1, 4, 2, 8}, {1, 4, 2, 8}}, {f, f, f},
                  {{"out_dtype", std::string("i32")}});
  EXPECT_THAT(st.message(), HasSubstr("'out_dtype'"));
  // And a good one passes.
  EXPECT_TRUE(InferError({{1, 2, 4, 8}, {1, 4, 2, 8}, {1, 4, 2, 16}, {1, 4, 2, 4}, {4}},
                         {f, DType::kF16, DType::kBF16, DType::kF16, f}, {{"max_bias", 1.0}})
                  .ok());
}

TEST(FlashAttnInfer, ErrorsThroughTheGraphBuilderNameTheNode) {
  GraphBuilder b("g");
  Tensor q = b.Input("query", DType::kF32, {1, 2, 6, 8});
  Tensor k = b.Input("kcache", DType::kF16, {1, 4, 4, 8});
  Tensor v = b.Input("vcache", DType::kF16, {1, 4, 4, 8});
  b.Op1("flash_attn", {q, k, v}, {}, "attn0");
  EXPECT_THAT(b.status().message(), HasSubstr("attn0"));
  EXPECT_THAT(b.status().message(), HasSubstr("kcache"));
}

TEST(FlashAttnReference, EffectiveScale) {
  Node n;
  n.attrs["scale"] = 0.0;
  EXPECT_DOUBLE_EQ(EffectiveScale(n, 64), 0.125);
  n.attrs["scale"] = 0.3;
  EXPECT_DOUBLE_EQ(EffectiveScale(n, 64), 0.3);
}

}  // namespace
}  // namespace kiln
