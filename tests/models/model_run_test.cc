// kiln run FILE --steps N on a make-example model (tools/decode_run.h): the
// prefill entry names its decode entry, gets positions 0..T-1 and a causal
// mask, and decoding follows over the shared states.
#include <filesystem>
#include <string>

#include "absl/strings/match.h"
#include "backends/registry.h"
#include "gtest/gtest.h"
#include "models/example_model.h"
#include "proto/graph_io.h"
#include "base/read_file.h"
#include "nlohmann/json.hpp"
#include "tools/command.h"
#include "tools/decode_run.h"
#include "tests/models/tiny_configs.h"

namespace kiln::models {
namespace {

TEST(ModelRunTest, PrefillThenDecodeFollowsTheEntryMetadata) {
  ModelConfig c;
  c.family = Family::kQwen3;
  c.name = "tiny-qwen3";
  c.vocab_size = 40;
  c.hidden_size = 32;
  c.num_layers = 2;
  c.intermediate_size = 48;
  c.num_heads = 2;
  c.num_kv_heads = 1;
  c.head_dim = 16;
  c.qk_norm = true;
  const std::string dir = test::FreshDir("kiln_model_run");
  ExampleModelOptions o;
  o.prefill_tokens = 3;
  o.context = 8;
  auto files = WriteExampleModel(c, o, dir + "/q.kgraph");
  ASSERT_TRUE(files.ok()) << files.status();
  auto prefill = LoadGraph(files->prefill);
  ASSERT_TRUE(prefill.ok());
  auto decode_path = tools::DecodeEntryPath(*prefill, files->prefill);
  ASSERT_TRUE(decode_path.ok());
  EXPECT_EQ(*decode_path, files->decode);
  auto decode = LoadGraph(*decode_path);
  ASSERT_TRUE(decode.ok());
  auto cpu = CreateBackend("cpu");
  ASSERT_TRUE(cpu.ok());
  tools::DecodeRunSettings s;
  s.steps = 5;  // 3 + 5 = the 8 cells
  s.rounds = 1;
  auto report = tools::RunPrefillThenDecode(*prefill, *decode, {std::shared_ptr<Backend>(std::move(*cpu))}, s);
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->prefill_tokens, 3);
  EXPECT_EQ(report->step_ms.size(), 5u);
  // pos and mask were set, not made up; only the tokens are random.
  for (const std::string& r : report->random_inputs) EXPECT_TRUE(absl::EndsWith(r, ":tokens")) << r;
  s.steps = 6;  // one more than the cache holds
  cpu = CreateBackend("cpu");
  auto too_long = tools::RunPrefillThenDecode(*prefill, *decode, {std::shared_ptr<Backend>(std::move(*cpu))}, s);
  EXPECT_FALSE(too_long.ok());
  std::filesystem::remove_all(dir);
}

TEST(ModelRunTest, DecodeEntryMustBeAFileInTheSameFolder) {
  Graph g;
  EXPECT_EQ(*tools::DecodeEntryPath(g, "a/b.kgraph"), "");
  g.metadata["model.entry.decode"] = "../../etc/x.kgraph";
  auto bad = tools::DecodeEntryPath(g, "a/b.kgraph");
  ASSERT_FALSE(bad.ok());
  EXPECT_TRUE(absl::StrContains(bad.status().message(), "same folder")) << bad.status();
  g.metadata["model.entry.decode"] = "b.decode.kgraph";
  EXPECT_EQ(*tools::DecodeEntryPath(g, "a/b.kgraph"), "a/b.decode.kgraph");
}

// kiln bench model on a tiny model FILE: pp and tg at two depths, JSON with
// the results and the per-op shares.
TEST(ModelRunTest, BenchModelOnAFile) {
  ModelConfig c = test::TinyHybrid(40);
  const std::string dir = test::FreshDir("kiln_bench_model");
  ExampleModelOptions o;
  o.prefill_tokens = 4;
  o.context = 16;
  auto files = WriteExampleModel(c, o, dir + "/h.kgraph");
  ASSERT_TRUE(files.ok()) << files.status();
  const std::string json = dir + "/bench.json";
  EXPECT_EQ(tools::BenchModelCommand({files->prefill, "-n", "2", "-d", "0,8", "--warmup", "20", "--json", json}), 0);
  auto text = ReadFile(json, 1 << 20);
  ASSERT_TRUE(text.ok()) << text.status();
  const auto j = nlohmann::json::parse(*text);
  ASSERT_EQ(j["results"].size(), 4u);  // pp4 and tg2 at d0 and d8
  EXPECT_EQ(j["results"][0]["test"], "pp4");
  EXPECT_EQ(j["results"][3]["test"], "tg2");
  EXPECT_EQ(j["results"][3]["depth"], 8);
  EXPECT_GT(j["results"][3]["tokens_per_s"].get<double>(), 0);
  EXPECT_TRUE(j["op_shares"].contains("pp4@d0"));
  EXPECT_GT(j["op_shares"]["tg2@d0"]["gdn"].get<double>(), 0);
  // Too deep for the file's 16-cell cache; --seqs needs a NAME.
  EXPECT_NE(tools::BenchModelCommand({files->prefill, "-n", "2", "-d", "14"}), 0);
  EXPECT_NE(tools::BenchModelCommand({files->prefill, "--seqs", "2"}), 0);
  EXPECT_NE(tools::BenchModelCommand({files->prefill, "--warmup", "-1"}), 0);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace kiln::models
