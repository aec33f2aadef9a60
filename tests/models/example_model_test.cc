// kiln make-example models on disk (models/example_model.h): two entries
// over one weights file, held once by a Model; the published configs.
#include <filesystem>
#include <string>

#include "absl/strings/match.h"
#include "backends/registry.h"
#include "base/atomic_file.h"
#include "graph/builder.h"
#include "gtest/gtest.h"
#include "models/example_model.h"
#include "models/published_configs.h"
#include "proto/graph_io.h"
#include "scheduler/model.h"
#include "tests/models/tiny_configs.h"

namespace kiln::models {
namespace {

TEST(ExampleModelTest, EntriesShareOneWeightsFile) {
  ModelConfig c = test::TinyHybrid(50);
  c.rotary_dim = 4;
  const std::string dir = test::FreshDir("kiln_example_model");
  ExampleModelOptions o;
  o.prefill_tokens = 4;
  o.context = 8;
  o.weights.projection_dtype = DType::kBF16;
  auto files = WriteExampleModel(c, o, dir + "/m.kgraph");
  ASSERT_TRUE(files.ok()) << files.status();
  EXPECT_EQ(files->decode, dir + "/m.decode.kgraph");
  EXPECT_EQ(files->weights, dir + "/m.kgraph.weights");
  EXPECT_FALSE(std::filesystem::exists(dir + "/m.decode.kgraph.weights"));

  auto prefill = LoadGraph(files->prefill);
  ASSERT_TRUE(prefill.ok()) << prefill.status();
  auto decode = LoadGraph(files->decode);
  ASSERT_TRUE(decode.ok()) << decode.status();
  EXPECT_EQ(prefill->metadata.at("model.entry.decode"), "m.decode.kgraph");
  EXPECT_EQ(prefill->metadata.at("tokens"), "4");
  const TensorInfo& logits = prefill->tensors[prefill->FindTensor("logits")];
  EXPECT_EQ(logits.dims, (std::vector<int64_t>{1, 1, 50}));  // the last token's

  auto cpu = CreateBackend("cpu");
  ASSERT_TRUE(cpu.ok());
  Model model({std::shared_ptr<Backend>(std::move(*cpu))});
  ASSERT_TRUE(model.Add("prefill", *std::move(prefill)).ok());
  const int64_t held = model.resources().weight_stats().bytes_held;
  ASSERT_TRUE(model.Add("decode", *std::move(decode)).ok());
  const WeightStats stats = model.resources().weight_stats();
  EXPECT_EQ(stats.bytes_held, held);  // nothing new for decode
  EXPECT_GE(stats.bytes_shared, files->weight_bytes);
  std::filesystem::remove_all(dir);
}

TEST(ExampleModelTest, ReferenceFilesMustSitNextToTheGraph) {
  const std::string dir = testing::TempDir() + "/kiln_reference_files";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir + "/sub");
  const std::string elsewhere = dir + "/sub/w.bin";
  ASSERT_TRUE(WriteFileAtomically(elsewhere, std::string(64, '\0')).ok());
  GraphBuilder b("g");
  Tensor x = b.Input("x", DType::kF32, {4});
  b.Output(b.Op1("neg", {x}));
  auto g = b.Build();
  ASSERT_TRUE(g.ok());
  SaveOptions save;
  save.reference_files = {elsewhere};
  auto st = SaveGraph(*g, dir + "/g.kgraph", save);
  EXPECT_FALSE(st.ok());
  EXPECT_TRUE(absl::StrContains(st.message(), "not in the folder")) << st;
  std::filesystem::remove_all(dir);
}

TEST(PublishedConfigTest, ShapesAndLayers) {
  auto q = PublishedModelConfig("qwen3.5-0.8b");
  ASSERT_TRUE(q.ok());
  EXPECT_EQ(q->num_layers, 24);
  int attention = 0;
  for (bool a : q->full_attention) attention += a;
  EXPECT_EQ(attention, 6);
  auto small = WithLayers(*q, 4);
  ASSERT_TRUE(small.ok());
  EXPECT_EQ(small->full_attention, (std::vector<bool>{false, false, false, true}));
  EXPECT_FALSE(WithLayers(*q, 25).ok());
  int64_t params = 0;
  auto llama = PublishedModelConfig("llama-3-8b");
  ASSERT_TRUE(llama.ok());
  for (const WeightSpec& s : ExpectedWeights(*llama)) {
    int64_t n = 1;
    for (int64_t d : s.dims) n *= d;
    params += n;
  }
  EXPECT_EQ(params, 8030261248);  // Meta-Llama-3-8B's parameter count
  auto unknown = PublishedModelConfig("gpt-2");
  EXPECT_TRUE(absl::IsNotFound(unknown.status()));
}

}  // namespace
}  // namespace kiln::models
