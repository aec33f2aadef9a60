// Tiny model configurations and scratch folders shared by the models tests.
#pragma once

#include <filesystem>
#include <string>

#include "gtest/gtest.h"
#include "models/model_config.h"

namespace kiln::models::test {

// A two-layer Qwen3.5-style hybrid: a gated delta net layer, then an
// attention layer with every Qwen3.5 feature on.
inline ModelConfig TinyHybrid(int64_t vocab_size) {
  ModelConfig c;
  c.family = Family::kQwen3_5;
  c.name = "tiny-hybrid";
  c.vocab_size = vocab_size;
  c.hidden_size = 32;
  c.num_layers = 2;
  c.intermediate_size = 48;
  c.norm_offset_one = c.qk_norm = c.attn_output_gate = c.tie_embeddings = true;
  c.num_heads = 2;
  c.num_kv_heads = 1;
  c.head_dim = 16;
  c.full_attention = {false, true};
  c.linear_num_key_heads = 1;
  c.linear_num_value_heads = 2;
  c.linear_key_head_dim = c.linear_value_head_dim = 8;
  return c;
}

// An empty folder under the test's temporary directory.
inline std::string FreshDir(const std::string& name) {
  const std::string dir = ::testing::TempDir() + "/" + name;
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

}  // namespace kiln::models::test
