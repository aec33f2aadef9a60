// config.json -> ModelConfig: configurations shaped like the published ones
// (Llama 3 / 3.1, Qwen3, Qwen3-Next, Qwen3.5: the fields their config.json
// files carry, in both the transformers 4 and 5 spellings of rope), the
// fixtures transformers wrote, and the fields kiln cannot run named in errors.
#include "import/hf_config.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/import/import_test_util.h"

namespace kiln::import {
namespace {

using models::Family;
using testing::FixturesDir;
using ::testing::HasSubstr;
using json = nlohmann::json;

// Meta-Llama-3.1-8B's config.json (llama3 rope scaling, no head_dim).
const char* const kLlama31 = R"({
  "architectures": ["LlamaForCausalLM"], "attention_bias": false, "attention_dropout": 0.0,
  "bos_token_id": 128000, "eos_token_id": 128001, "hidden_act": "silu", "hidden_size": 4096,
  "initializer_range": 0.02, "intermediate_size": 14336, "max_position_embeddings": 131072,
  "mlp_bias": false, "model_type": "llama", "num_attention_heads": 32, "num_hidden_layers": 32,
  "num_key_value_heads": 8, "pretraining_tp": 1, "rms_norm_eps": 1e-05,
  "rope_scaling": {"factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                   "original_max_position_embeddings": 8192, "rope_type": "llama3"},
  "rope_theta": 500000.0, "tie_word_embeddings": false, "torch_dtype": "bfloat16",
  "transformers_version": "4.43.0.dev0", "use_cache": true, "vocab_size": 128256})";

// Qwen3-0.6B's (head_dim given, tied embeddings, integer rope_theta).
const char* const kQwen3 = R"({
  "architectures": ["Qwen3ForCausalLM"], "attention_bias": false, "attention_dropout": 0.0,
  "bos_token_id": 151643, "eos_token_id": 151645, "head_dim": 128, "hidden_act": "silu",
  "hidden_size": 1024, "initializer_range": 0.02, "intermediate_size": 3072,
  "max_position_embeddings": 40960, "max_window_layers": 28, "model_type": "qwen3",
  "num_attention_heads": 16, "num_hidden_layers": 28, "num_key_value_heads": 8, "rms_norm_eps": 1e-06,
  "rope_scaling": null, "rope_theta": 1000000, "sliding_window": null, "tie_word_embeddings": true,
  "torch_dtype": "bfloat16", "transformers_version": "4.51.0", "use_cache": true,
  "use_sliding_window": false, "vocab_size": 151936})";

// Qwen3-Next-80B-A3B's: every layer a mixture of experts.
const char* const kQwen3Next = R"({
  "architectures": ["Qwen3NextForCausalLM"], "attention_bias": false, "decoder_sparse_step": 1,
  "full_attention_interval": 4, "head_dim": 256, "hidden_act": "silu", "hidden_size": 2048,
  "intermediate_size": 5120, "linear_conv_kernel_dim": 4, "linear_key_head_dim": 128,
  "linear_num_key_heads": 16, "linear_num_value_heads": 32, "linear_value_head_dim": 128,
  "max_position_embeddings": 262144, "mlp_only_layers": [], "model_type": "qwen3_next",
  "moe_intermediate_size": 512, "norm_topk_prob": true, "num_attention_heads": 16, "num_experts": 512,
  "num_experts_per_tok": 10, "num_hidden_layers": 48, "num_key_value_heads": 2,
  "partial_rotary_factor": 0.25, "rms_norm_eps": 1e-06, "rope_scaling": null, "rope_theta": 10000000,
  "shared_expert_intermediate_size": 512, "tie_word_embeddings": false, "vocab_size": 151936})";

// Shaped like Qwen3.5-0.8B's: the multimodal form, the language model's
// fields under text_config, rope_parameters with mrope.
const char* const kQwen35 = R"({
  "architectures": ["Qwen3_5ForConditionalGeneration"], "model_type": "qwen3_5",
  "image_token_id": 248056, "video_token_id": 248057, "tie_word_embeddings": true,
  "text_config": {
    "attention_bias": false, "attn_output_gate": true, "full_attention_interval": 4, "head_dim": 256,
    "hidden_act": "silu", "hidden_size": 1024, "intermediate_size": 3584,
    "layer_types": ["linear_attention", "linear_attention", "linear_attention", "full_attention",
                    "linear_attention", "linear_attention", "linear_attention", "full_attention"],
    "linear_conv_kernel_dim": 4, "linear_key_head_dim": 128, "linear_num_key_heads": 16,
    "linear_num_value_heads": 16, "linear_value_head_dim": 128, "max_position_embeddings": 262144,
    "model_type": "qwen3_5_text", "mtp_num_hidden_layers": 1, "num_attention_heads": 8,
    "num_hidden_layers": 8, "num_key_value_heads": 2, "rms_norm_eps": 1e-06,
    "rope_parameters": {"mrope_interleaved": true, "mrope_section": [11, 11, 10], "rope_type": "default",
                        "rope_theta": 10000000, "partial_rotary_factor": 0.25},
    "vocab_size": 248320},
  "vision_config": {"depth": 12, "hidden_size": 768, "model_type": "qwen3_5"}})";

models::ModelConfig Parse(const std::string& text) {
  auto c = ParseHfConfig(json::parse(text));
  EXPECT_TRUE(c.ok()) << c.status();
  return c.ok() ? *c : models::ModelConfig{};
}

std::string ParseError(const std::string& text) {
  auto c = ParseHfConfig(json::parse(text));
  return c.ok() ? "" : std::string(c.status().message());
}

// kQwen3 with one field replaced.
std::string Qwen3With(const std::string& key, const json& value) {
  json j = json::parse(kQwen3);
  j[key] = value;
  return j.dump();
}

TEST(HfConfig, Llama31) {
  const models::ModelConfig c = Parse(kLlama31);
  EXPECT_EQ(c.family, Family::kLlama);
  EXPECT_EQ(c.vocab_size, 128256);
  EXPECT_EQ(c.num_layers, 32);
  EXPECT_EQ(c.num_kv_heads, 8);
  EXPECT_EQ(c.head_dim, 128);  // hidden / heads
  EXPECT_EQ(c.rotary_dim, 0);  // the whole head
  EXPECT_FALSE(c.rope_interleaved);
  EXPECT_DOUBLE_EQ(c.rope_theta, 500000);
  EXPECT_DOUBLE_EQ(c.rms_norm_eps, 1e-5);
  EXPECT_EQ(c.rope_scaling.type, "llama3");
  EXPECT_DOUBLE_EQ(c.rope_scaling.factor, 8);
  EXPECT_EQ(c.rope_scaling.original_max_position, 8192);
  EXPECT_FALSE(c.qk_norm);
  EXPECT_FALSE(c.tie_embeddings);
}

TEST(HfConfig, Qwen3) {
  const models::ModelConfig c = Parse(kQwen3);
  EXPECT_EQ(c.family, Family::kQwen3);
  EXPECT_EQ(c.head_dim, 128);  // given, not hidden / heads (64)
  EXPECT_TRUE(c.qk_norm);
  EXPECT_TRUE(c.tie_embeddings);
  EXPECT_DOUBLE_EQ(c.rope_theta, 1e6);
  EXPECT_TRUE(c.rope_scaling.type.empty());
  EXPECT_FALSE(c.norm_offset_one);
}

TEST(HfConfig, Qwen3NextMixtureOfExpertsIsAnErrorNamingTheField) {
  const std::string e = ParseError(kQwen3Next);
  EXPECT_THAT(e, HasSubstr("\"num_experts\" is 512"));
  EXPECT_THAT(e, HasSubstr("layer 0 is a mixture-of-experts layer"));
  // Dense when every layer is listed in mlp_only_layers (as the fixture is).
  json dense = json::parse(kQwen3Next);
  dense["mlp_only_layers"] = json::array();
  for (int i = 0; i < 48; ++i) dense["mlp_only_layers"].push_back(i);
  const models::ModelConfig c = Parse(dense.dump());
  EXPECT_EQ(c.family, Family::kQwen3Next);
  EXPECT_EQ(c.rotary_dim, 64);  // 256 * 0.25
  EXPECT_DOUBLE_EQ(c.rope_theta, 1e7);
  ASSERT_EQ(c.full_attention.size(), 48u);
  for (int i = 0; i < 48; ++i) EXPECT_EQ(c.full_attention[i], (i + 1) % 4 == 0) << i;
  EXPECT_TRUE(c.attn_output_gate && c.qk_norm && c.norm_offset_one);
  EXPECT_EQ(c.linear_num_value_heads, 32);
  EXPECT_EQ(c.linear_conv_kernel, 4);
}

TEST(HfConfig, Qwen35ConditionalGenerationReadsItsTextConfig) {
  const models::ModelConfig c = Parse(kQwen35);
  EXPECT_EQ(c.family, Family::kQwen3_5);
  EXPECT_EQ(c.name, "qwen3_5_text");
  EXPECT_EQ(c.hidden_size, 1024);
  EXPECT_EQ(c.vocab_size, 248320);
  EXPECT_TRUE(c.tie_embeddings);  // the top-level field
  EXPECT_EQ(c.rotary_dim, 64);
  EXPECT_DOUBLE_EQ(c.rope_theta, 1e7);
  EXPECT_EQ(c.full_attention, (std::vector<bool>{false, false, false, true, false, false, false, true}));
  EXPECT_EQ(c.linear_num_key_heads, 16);
  EXPECT_EQ(c.linear_num_value_heads, 16);
}

TEST(HfConfig, ReadsTheFixturesTransformersWrote) {
  auto llama = ReadHfConfig(FixturesDir() + "/llama/config.json");
  ASSERT_TRUE(llama.ok()) << llama.status();
  EXPECT_EQ(llama->head_dim, 32);
  EXPECT_EQ(llama->num_kv_heads, 2);
  auto next = ReadHfConfig(FixturesDir() + "/qwen3_next/config.json");
  ASSERT_TRUE(next.ok()) << next.status();
  EXPECT_EQ(next->full_attention, (std::vector<bool>{false, true, false}));
  EXPECT_EQ(next->rotary_dim, 8);  // rope_parameters.partial_rotary_factor 0.25 of 32
  auto q35 = ReadHfConfig(FixturesDir() + "/qwen3_5/config.json");
  ASSERT_TRUE(q35.ok()) << q35.status();
  EXPECT_EQ(q35->family, Family::kQwen3_5);
}

TEST(HfConfig, FieldsKilnCannotRunAreErrorsNamingThem) {
  EXPECT_THAT(ParseError(Qwen3With("architectures", {"MistralForCausalLM"})),
              HasSubstr("\"architectures\" is 'MistralForCausalLM'"));
  EXPECT_THAT(ParseError(Qwen3With("architectures", json::array())), HasSubstr("\"architectures\""));
  EXPECT_THAT(ParseError(Qwen3With("hidden_act", "gelu")), HasSubstr("\"hidden_act\" is 'gelu'"));
  EXPECT_THAT(ParseError(Qwen3With("attention_bias", true)), HasSubstr("\"attention_bias\""));
  EXPECT_THAT(ParseError(Qwen3With("mlp_bias", true)), HasSubstr("\"mlp_bias\""));
  EXPECT_THAT(ParseError(Qwen3With("use_sliding_window", true)), HasSubstr("\"use_sliding_window\""));
  EXPECT_THAT(ParseError(Qwen3With("rope_scaling", {{"rope_type", "yarn"}, {"factor", 4}})),
              HasSubstr("\"rope_scaling\" has rope type 'yarn'"));
  EXPECT_THAT(ParseError(Qwen3With("rope_parameters", {{"rope_type", "dynamic"}, {"rope_theta", 1e6}})),
              HasSubstr("\"rope_parameters\" has rope type 'dynamic'"));
  EXPECT_THAT(ParseError(Qwen3With("model_type", "qwen3_moe")), HasSubstr("\"model_type\" is 'qwen3_moe'"));
  EXPECT_THAT(ParseError(Qwen3With("num_key_value_heads", 5)), HasSubstr("\"num_key_value_heads\""));
  EXPECT_THAT(ParseError(Qwen3With("hidden_size", "1024")), ::testing::AllOf(HasSubstr("\"hidden_size\" is "), HasSubstr("1024")));
  EXPECT_THAT(ParseError(Qwen3With("hidden_size", -4)), HasSubstr("\"hidden_size\" is -4"));
  EXPECT_THAT(ParseError(Qwen3With("vocab_size", nullptr)), HasSubstr("\"vocab_size\" is missing"));
  EXPECT_THAT(ParseError(Qwen3With("partial_rotary_factor", 1.5)), HasSubstr("\"partial_rotary_factor\""));
  EXPECT_THAT(ParseError(Qwen3With("rms_norm_eps", "small")), HasSubstr("\"rms_norm_eps\""));
  json hybrid = json::parse(kQwen35);
  hybrid["text_config"]["layer_types"][2] = "sliding_attention";
  EXPECT_THAT(ParseError(hybrid.dump()), ::testing::AllOf(HasSubstr("\"layer_types\" has "), HasSubstr("sliding_attention"),
                                                        HasSubstr("at layer 2")));
  hybrid = json::parse(kQwen35);
  hybrid["text_config"]["linear_num_value_heads"] = 24;
  hybrid["text_config"]["linear_num_key_heads"] = 16;
  EXPECT_THAT(ParseError(hybrid.dump()), HasSubstr("\"linear_num_value_heads\""));
}

TEST(HfConfig, ReadsTransformers5RopeParameters) {
  json j = json::parse(kQwen3);
  j.erase("rope_theta");
  j["rope_parameters"] = {{"rope_type", "linear"}, {"rope_theta", 5e5}, {"factor", 2.0}};
  const models::ModelConfig c = Parse(j.dump());
  EXPECT_DOUBLE_EQ(c.rope_theta, 5e5);
  EXPECT_EQ(c.rope_scaling.type, "linear");
  EXPECT_DOUBLE_EQ(c.rope_scaling.factor, 2);
}

}  // namespace
}  // namespace kiln::import
