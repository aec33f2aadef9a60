// Whole-model graphs (models/): for a tiny config of each family with seeded
// random weights, the entries build and validate, and prefilling N tokens
// then decoding token N+1 over the shared states gives the logits a prefill
// of N+1 tokens gives; bad weights are errors naming the weight.
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "backends/registry.h"
#include "gtest/gtest.h"
#include "graph/validate.h"
#include "models/model_config.h"
#include "models/layer_builder.h"
#include "models/random_weights.h"
#include "ops/compare.h"
#include "scheduler/model.h"

namespace kiln::models {
namespace {

ModelConfig Tiny(Family family) {
  ModelConfig c;
  c.family = family;
  c.name = "tiny";
  c.vocab_size = 97;
  c.hidden_size = 64;
  c.num_layers = 2;
  c.intermediate_size = 96;
  c.num_heads = 4;
  c.num_kv_heads = 2;
  c.head_dim = 16;
  c.rope_theta = 10000;
  if (family == Family::kLlama) c.attention_bias = true;  // q/k/v biases (Qwen2-style checkpoints)
  if (family == Family::kQwen3) c.qk_norm = true;
  if (family == Family::kQwen3Next || family == Family::kQwen3_5) {
    c.num_layers = 4;
    c.full_attention = {false, true, false, true};
    c.qk_norm = true;
    c.attn_output_gate = true;
    c.norm_offset_one = true;
    c.tie_embeddings = true;
    c.rotary_dim = 8;  // partial rotary
    c.head_dim = 32;
    c.linear_num_key_heads = 2;
    c.linear_num_value_heads = 4;  // two value heads per key head
    c.linear_key_head_dim = 16;
    c.linear_value_head_dim = 16;
    c.linear_conv_kernel = 4;
  }
  return c;
}

struct Case {
  const char* name;
  Family family;
};
const Case kCases[] = {{"llama", Family::kLlama},
                       {"qwen3", Family::kQwen3},
                       {"qwen3_next", Family::kQwen3Next},
                       {"qwen3_5", Family::kQwen3_5}};

class ModelGraphTest : public ::testing::TestWithParam<Case> {};

constexpr int64_t kContext = 16;

// Sets tokens[0..T) = ids[start..start+T), positions start.., and a causal
// mask over the cache for them.
absl::Status SetStep(Executable& e, const std::vector<int32_t>& ids, int64_t start, int64_t T) {
  std::vector<int32_t> tok(ids.begin() + start, ids.begin() + start + T), pos(T);
  for (int64_t t = 0; t < T; ++t) pos[t] = static_cast<int32_t>(start + t);
  std::vector<float> mask(static_cast<size_t>(T * kContext), -std::numeric_limits<float>::infinity());
  for (int64_t t = 0; t < T; ++t) {
    for (int64_t j = 0; j <= start + t; ++j) mask[t * kContext + j] = 0;
  }
  if (auto st = e.SetInputBytes("tokens", tok.data(), tok.size() * 4); !st.ok()) return st;
  if (auto st = e.SetInputBytes("pos", pos.data(), pos.size() * 4); !st.ok()) return st;
  return e.SetInputBytes("mask", mask.data(), mask.size() * 4);
}

std::vector<float> Row(const HostTensor& logits, int64_t t, int64_t vocab) {
  std::vector<float> row(vocab);
  std::memcpy(row.data(), logits.data.data() + t * vocab * 4, vocab * 4);
  return row;
}

double Nmse(const std::vector<float>& a, const std::vector<float>& r) {
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    num += (double(a[i]) - r[i]) * (double(a[i]) - r[i]);
    den += double(r[i]) * r[i];
  }
  return num / den;
}

std::shared_ptr<Backend> Cpu() {
  auto cpu = CreateBackend("cpu");
  EXPECT_TRUE(cpu.ok()) << cpu.status();
  return cpu.ok() ? std::shared_ptr<Backend>(std::move(*cpu)) : nullptr;
}

TEST_P(ModelGraphTest, DecodeAfterPrefillMatchesLongerPrefill) {
  const ModelConfig c = Tiny(GetParam().family);
  RandomWeightOptions wo;
  wo.seed = 7;
  wo.projection_dtype = DType::kF32;
  RandomWeightSource weights(c, wo);
  constexpr int64_t N = 5;
  EntryOptions prefill{.tokens = N, .context = kContext};
  EntryOptions longer{.tokens = N + 1, .context = kContext};
  EntryOptions decode{.tokens = 1, .context = kContext};
  auto g_prefill = BuildModelGraph(c, weights, prefill);
  ASSERT_TRUE(g_prefill.ok()) << g_prefill.status();
  auto g_longer = BuildModelGraph(c, weights, longer);
  ASSERT_TRUE(g_longer.ok()) << g_longer.status();
  auto g_decode = BuildModelGraph(c, weights, decode);
  ASSERT_TRUE(g_decode.ok()) << g_decode.status();
  EXPECT_TRUE(ValidateGraph(*g_decode).ok());
  EXPECT_EQ(g_decode->metadata.at("tokens"), "1");

  const std::vector<int32_t> ids = {3, 14, 15, 92, 65, 35, 89};
  auto cpu = Cpu();
  ASSERT_NE(cpu, nullptr);

  Model model({cpu});
  auto p = model.Add("prefill", *std::move(g_prefill));
  ASSERT_TRUE(p.ok()) << p.status();
  auto d = model.Add("decode", *std::move(g_decode));
  ASSERT_TRUE(d.ok()) << d.status();
  // The decode entry found every weight already held.
  EXPECT_GT(model.resources().weight_stats().bytes_shared, 0);
  ASSERT_TRUE(SetStep(**p, ids, 0, N).ok());
  ASSERT_TRUE((*p)->Run().ok());
  ASSERT_TRUE(SetStep(**d, ids, N, 1).ok());
  absl::Status run = (*d)->Run();
  ASSERT_TRUE(run.ok()) << run;
  auto step = (*d)->GetOutput("logits");
  ASSERT_TRUE(step.ok()) << step.status();

  Model reference({cpu});
  auto l = reference.Add("prefill", *std::move(g_longer));
  ASSERT_TRUE(l.ok()) << l.status();
  ASSERT_TRUE(SetStep(**l, ids, 0, N + 1).ok());
  ASSERT_TRUE((*l)->Run().ok());
  auto all = (*l)->GetOutput("logits");
  ASSERT_TRUE(all.ok()) << all.status();
  ASSERT_EQ(all->dims, (std::vector<int64_t>{1, N + 1, c.vocab_size}));

  const std::vector<float> got = Row(*step, 0, c.vocab_size), want = Row(*all, N, c.vocab_size);
  double sum = 0;
  for (float v : want) sum += std::fabs(v);
  EXPECT_GT(sum / c.vocab_size, 1e-3) << "logits are all about zero: the test would not see a difference";
  EXPECT_LT(Nmse(got, want), Tolerance("linear", DType::kF32));
  // And a second decode step stays on track (the states advanced once).
  auto l2 = BuildModelGraph(c, weights, EntryOptions{.tokens = N + 2, .context = kContext});
  ASSERT_TRUE(l2.ok());
  Model reference2({cpu});
  auto e2 = reference2.Add("prefill", *std::move(l2));
  ASSERT_TRUE(e2.ok());
  ASSERT_TRUE(SetStep(**e2, ids, 0, N + 2).ok());
  ASSERT_TRUE((*e2)->Run().ok());
  ASSERT_TRUE(SetStep(**d, ids, N + 1, 1).ok());
  ASSERT_TRUE((*d)->Run().ok());
  auto step2 = (*d)->GetOutput("logits");
  auto all2 = (*e2)->GetOutput("logits");
  ASSERT_TRUE(step2.ok() && all2.ok());
  EXPECT_LT(Nmse(Row(*step2, 0, c.vocab_size), Row(*all2, N + 1, c.vocab_size)), Tolerance("linear", DType::kF32));
}

// Sets one run of S sequences of T tokens each: sequence s's tokens
// ids[s][start..start+T) at cache cells s*kHalf + start.., a block-diagonal
// causal mask.
constexpr int64_t kHalf = kContext / 2;
absl::Status SetSequences(Executable& e, const std::vector<std::vector<int32_t>>& ids, int64_t start, int64_t T) {
  const int64_t S = static_cast<int64_t>(ids.size());
  std::vector<int32_t> tok, pos;
  std::vector<float> mask(static_cast<size_t>(S * T * kContext), -std::numeric_limits<float>::infinity());
  for (int64_t s = 0; s < S; ++s) {
    for (int64_t t = 0; t < T; ++t) {
      tok.push_back(ids[s][start + t]);
      pos.push_back(static_cast<int32_t>(s * kHalf + start + t));
      for (int64_t j = 0; j <= start + t; ++j) mask[(s * T + t) * kContext + s * kHalf + j] = 0;
    }
  }
  if (auto st = e.SetInputBytes("tokens", tok.data(), tok.size() * 4); !st.ok()) return st;
  if (auto st = e.SetInputBytes("pos", pos.data(), pos.size() * 4); !st.ok()) return st;
  return e.SetInputBytes("mask", mask.data(), mask.size() * 4);
}

TEST_P(ModelGraphTest, SequencesDecodeTogetherAsEachAlone) {
  const ModelConfig c = Tiny(GetParam().family);
  RandomWeightSource weights(c, {.seed = 5, .projection_dtype = DType::kF32});
  constexpr int64_t N = 4;
  const std::vector<std::vector<int32_t>> ids = {{5, 6, 7, 8, 9}, {50, 40, 30, 20, 10}};
  auto cpu = Cpu();
  ASSERT_NE(cpu, nullptr);
  // Both sequences' prompts in one prefill run, then one decode run of both.
  const EntryOptions two_prefill{.tokens = 2 * N, .context = kContext, .cache_dtype = DType::kF32, .sequences = 2};
  const EntryOptions two_decode{.tokens = 2, .context = kContext, .cache_dtype = DType::kF32, .sequences = 2};
  auto gp = BuildModelGraph(c, weights, two_prefill);
  ASSERT_TRUE(gp.ok()) << gp.status();
  auto gd = BuildModelGraph(c, weights, two_decode);
  ASSERT_TRUE(gd.ok()) << gd.status();
  Model together({cpu});
  auto p = together.Add("prefill", *std::move(gp));
  ASSERT_TRUE(p.ok()) << p.status();
  auto d = together.Add("decode", *std::move(gd));
  ASSERT_TRUE(d.ok()) << d.status();
  ASSERT_TRUE(SetSequences(**p, ids, 0, N).ok());
  ASSERT_TRUE((*p)->Run().ok());
  ASSERT_TRUE(SetSequences(**d, ids, N, 1).ok());
  absl::Status run = (*d)->Run();
  ASSERT_TRUE(run.ok()) << run;
  auto both = (*d)->GetOutput("logits");
  ASSERT_TRUE(both.ok());
  for (int64_t s = 0; s < 2; ++s) {
    auto g = BuildModelGraph(c, weights, {.tokens = N + 1, .context = kContext, .cache_dtype = DType::kF32});
    ASSERT_TRUE(g.ok());
    Model alone({cpu});
    auto e = alone.Add("prefill", *std::move(g));
    ASSERT_TRUE(e.ok());
    ASSERT_TRUE(SetStep(**e, ids[s], 0, N + 1).ok());
    ASSERT_TRUE((*e)->Run().ok());
    auto want = (*e)->GetOutput("logits");
    ASSERT_TRUE(want.ok());
    EXPECT_LT(Nmse(Row(*both, s, c.vocab_size), Row(*want, N, c.vocab_size)), Tolerance("linear", DType::kF32))
        << "sequence " << s;
  }
}

TEST_P(ModelGraphTest, LastLogitsOnlyAndF16Weights) {
  const ModelConfig c = Tiny(GetParam().family);
  RandomWeightSource weights(c, {.seed = 1, .projection_dtype = DType::kBF16});
  auto g = BuildModelGraph(c, weights, {.tokens = 4, .context = kContext, .last_logits_only = true});
  ASSERT_TRUE(g.ok()) << g.status();
  const TensorInfo& logits = g->tensors[g->FindTensor("logits")];
  EXPECT_EQ(logits.dims, (std::vector<int64_t>{1, 1, c.vocab_size}));
  for (const char* s : {"k_cache", "v_cache"}) {
    const int last_attention = GetParam().family == Family::kLlama || GetParam().family == Family::kQwen3 ? 1 : 3;
    EXPECT_GE(g->FindTensor("blk." + std::to_string(last_attention) + "." + s), 0) << s;
  }
  if (c.family == Family::kQwen3Next || c.family == Family::kQwen3_5) {
    EXPECT_GE(g->FindTensor("blk.0.conv_state"), 0);
    EXPECT_GE(g->FindTensor("blk.2.ssm_state"), 0);
  }
}

// A source that changes or drops one weight of another source.
class EditedSource : public WeightSource {
 public:
  EditedSource(WeightSource& base, std::string name, bool drop) : base_(base), name_(std::move(name)), drop_(drop) {}
  absl::StatusOr<Weight> Get(absl::string_view name) override {
    if (name != name_) return base_.Get(name);
    if (drop_) return absl::NotFoundError("not in this checkpoint");
    auto w = base_.Get(name);
    if (w.ok()) w->dims.back() += 1;
    return w;
  }

 private:
  WeightSource& base_;
  std::string name_;
  bool drop_;
};

TEST_P(ModelGraphTest, BadWeightsAreErrorsNamingTheWeight) {
  const ModelConfig c = Tiny(GetParam().family);
  RandomWeightSource weights(c, {.seed = 1, .projection_dtype = DType::kF16});
  const std::string victim = c.family == Family::kQwen3Next ? "model.layers.0.linear_attn.in_proj_qkvz.weight"
                             : c.family == Family::kQwen3_5 ? "model.layers.2.linear_attn.conv1d.weight"
                                                            : "model.layers.1.self_attn.k_proj.weight";
  for (bool drop : {false, true}) {
    EditedSource edited(weights, victim, drop);
    auto g = BuildModelGraph(c, edited, {.tokens = 2, .context = kContext});
    ASSERT_FALSE(g.ok());
    EXPECT_TRUE(absl::StrContains(g.status().message(), victim)) << g.status();
    EXPECT_TRUE(absl::StrContains(g.status().message(), drop ? "missing" : "shape")) << g.status();
  }
}

TEST_P(ModelGraphTest, ExpectedWeightsNameTheCheckpointTensors) {
  const ModelConfig c = Tiny(GetParam().family);
  std::vector<std::string> names;
  for (const WeightSpec& s : ExpectedWeights(c)) names.push_back(s.name);
  auto has = [&](const std::string& n) { return std::find(names.begin(), names.end(), n) != names.end(); };
  EXPECT_TRUE(has("model.embed_tokens.weight"));
  EXPECT_TRUE(has("model.norm.weight"));
  EXPECT_TRUE(has("lm_head.weight"));
  EXPECT_TRUE(has("model.layers.1.mlp.down_proj.weight"));
  switch (c.family) {
    case Family::kLlama: EXPECT_FALSE(has("model.layers.0.self_attn.q_norm.weight")); break;
    case Family::kQwen3: EXPECT_TRUE(has("model.layers.0.self_attn.q_norm.weight")); break;
    case Family::kQwen3Next:
      EXPECT_TRUE(has("model.layers.0.linear_attn.in_proj_ba.weight"));
      EXPECT_TRUE(has("model.layers.1.self_attn.k_norm.weight"));
      break;
    case Family::kQwen3_5:
      EXPECT_TRUE(has("model.layers.0.linear_attn.in_proj_a.weight"));
      EXPECT_TRUE(has("model.layers.0.linear_attn.A_log"));
      break;
  }
}

INSTANTIATE_TEST_SUITE_P(Families, ModelGraphTest, ::testing::ValuesIn(kCases),
                         [](const auto& info) { return std::string(info.param.name); });

// Logits of a prefill of `ids` (T = ids.size()) from position 0.
std::vector<float> PrefillLogits(const ModelConfig& c, WeightSource& w, const std::vector<int32_t>& ids) {
  auto g = BuildModelGraph(c, w, {.tokens = static_cast<int64_t>(ids.size()), .context = kContext,
                                  .cache_dtype = DType::kF32});
  EXPECT_TRUE(g.ok()) << g.status();
  if (!g.ok()) return {};
  Model m({Cpu()});
  auto e = m.Add("prefill", *std::move(g));
  EXPECT_TRUE(e.ok()) << e.status();
  EXPECT_TRUE(SetStep(**e, ids, 0, static_cast<int64_t>(ids.size())).ok());
  EXPECT_TRUE((*e)->Run().ok());
  auto out = (*e)->GetOutput("logits");
  EXPECT_TRUE(out.ok());
  std::vector<float> v(out->data.size() / 4);
  std::memcpy(v.data(), out->data.data(), out->data.size());
  return v;
}

// Scaled rope runs on cos/sin tables; unscaled ("linear", factor 1) it must
// give what the rope op gives, in both pairings and with partial rotary.
TEST(ScaledRopeTest, UnitScalingMatchesTheRopeOp) {
  for (bool interleaved : {false, true}) {
    ModelConfig c = Tiny(Family::kQwen3);
    c.rope_interleaved = interleaved;
    c.rotary_dim = 8;
    RandomWeightSource w(c, {.seed = 2, .projection_dtype = DType::kF32});
    const std::vector<int32_t> ids = {1, 2, 3, 4, 5, 6};
    const std::vector<float> plain = PrefillLogits(c, w, ids);
    ModelConfig scaled = c;
    scaled.rope_scaling.type = "linear";
    scaled.rope_scaling.factor = 1;
    EXPECT_LT(Nmse(PrefillLogits(scaled, w, ids), plain), 1e-10) << "interleaved " << interleaved;
    scaled.rope_scaling.factor = 4;  // now it must differ
    EXPECT_GT(Nmse(PrefillLogits(scaled, w, ids), plain), 1e-8) << "interleaved " << interleaved;
  }
}

TEST(ScaledRopeTest, Llama3FrequenciesAsTransformersComputesThem) {
  ModelConfig c = Tiny(Family::kLlama);
  c.head_dim = 16;
  c.rope_theta = 10000;
  c.rope_scaling = {.type = "llama3", .factor = 8, .low_freq_factor = 1, .high_freq_factor = 4,
                    .original_max_position = 64};
  // low_freq_wavelen 64, high_freq_wavelen 16: pair 0 (wavelen 2 pi) stays,
  // the slowest pairs are divided by 8, the middle ones interpolated.
  const std::vector<double> f = ScaledInvFreq(c, 16);
  ASSERT_EQ(f.size(), 8u);
  EXPECT_DOUBLE_EQ(f[0], 1.0);
  const double inv7 = std::pow(10000.0, -14.0 / 16);
  EXPECT_NEAR(f[7], inv7 / 8, 1e-15);
  const double inv2 = std::pow(10000.0, -4.0 / 16), wl2 = 2 * M_PI / inv2;  // wavelen ~ 62.8: medium
  const double smooth = (64 / wl2 - 1) / 3;
  EXPECT_NEAR(f[2], (1 - smooth) * inv2 / 8 + smooth * inv2, 1e-15);
}

TEST(ScaledRopeTest, DecodeAfterPrefillWithLlama3Scaling) {
  ModelConfig c = Tiny(Family::kLlama);
  c.rope_scaling = {.type = "llama3", .factor = 8, .low_freq_factor = 1, .high_freq_factor = 4,
                    .original_max_position = 8};
  RandomWeightSource w(c, {.seed = 9, .projection_dtype = DType::kF32});
  const std::vector<int32_t> ids = {9, 8, 7, 6, 5};
  const std::vector<float> all = PrefillLogits(c, w, ids);
  auto gp = BuildModelGraph(c, w, {.tokens = 4, .context = kContext, .cache_dtype = DType::kF32});
  auto gd = BuildModelGraph(c, w, {.tokens = 1, .context = kContext, .cache_dtype = DType::kF32});
  ASSERT_TRUE(gp.ok() && gd.ok());
  Model m({Cpu()});
  auto p = m.Add("prefill", *std::move(gp));
  auto d = m.Add("decode", *std::move(gd));
  ASSERT_TRUE(p.ok() && d.ok());
  ASSERT_TRUE(SetStep(**p, ids, 0, 4).ok());
  ASSERT_TRUE((*p)->Run().ok());
  ASSERT_TRUE(SetStep(**d, ids, 4, 1).ok());
  ASSERT_TRUE((*d)->Run().ok());
  auto step = (*d)->GetOutput("logits");
  ASSERT_TRUE(step.ok());
  const std::vector<float> want(all.end() - c.vocab_size, all.end());
  EXPECT_LT(Nmse(Row(*step, 0, c.vocab_size), want), Tolerance("linear", DType::kF32));
}

// A bf16 KV cache works like f16; q8_0 is refused (no op quantizes rows).
TEST(ModelCacheTest, CacheDTypes) {
  const ModelConfig c = Tiny(Family::kQwen3);
  RandomWeightSource w(c, {.seed = 4});
  auto bf16 = BuildModelGraph(c, w, {.tokens = 2, .context = kContext, .cache_dtype = DType::kBF16});
  ASSERT_TRUE(bf16.ok()) << bf16.status();
  EXPECT_EQ(bf16->tensors[bf16->FindTensor("blk.0.k_cache")].dtype, DType::kBF16);
  auto q8 = BuildModelGraph(c, w, {.tokens = 2, .context = kContext, .cache_dtype = DType::kQ8_0});
  ASSERT_FALSE(q8.ok());
  EXPECT_TRUE(absl::StrContains(q8.status().message(), "cache_dtype q8_0")) << q8.status();
}

TEST(ModelConfigTest, UnknownRopeScalingIsAClearError) {
  ModelConfig c = Tiny(Family::kLlama);
  c.rope_scaling.type = "yarn";
  RandomWeightSource w(c, {});
  auto g = BuildModelGraph(c, w, {.tokens = 1, .context = kContext});
  ASSERT_FALSE(g.ok());
  EXPECT_TRUE(absl::StrContains(g.status().message(), "yarn")) << g.status();
}

TEST(ModelConfigTest, MixtureOfExpertsIsAClearError) {
  ModelConfig c = Tiny(Family::kQwen3Next);
  c.num_experts = 512;
  RandomWeightSource weights(c, {});
  auto g = BuildModelGraph(c, weights, {.tokens = 1, .context = kContext});
  ASSERT_FALSE(g.ok());
  EXPECT_TRUE(absl::StrContains(g.status().message(), "num_experts")) << g.status();
}

TEST(ModelConfigTest, RandomWeightsDoNotDependOnHowTheyAreMade) {
  const ModelConfig c = Tiny(Family::kLlama);
  RandomWeightSource one(c, {.seed = 3, .threads = 1});
  RandomWeightSource many(c, {.seed = 3, .threads = 4});
  auto a = one.Get("model.embed_tokens.weight");
  auto b = many.Get("model.embed_tokens.weight");
  ASSERT_TRUE(a.ok() && b.ok());
  ASSERT_EQ(a->data->size, b->data->size);
  EXPECT_EQ(std::memcmp(a->data->data, b->data->data, a->data->size), 0);
  RandomWeightSource other(c, {.seed = 4});
  auto o = other.Get("model.embed_tokens.weight");
  ASSERT_TRUE(o.ok());
  EXPECT_NE(std::memcmp(a->data->data, o->data->data, a->data->size), 0);
}

}  // namespace
}  // namespace kiln::models
