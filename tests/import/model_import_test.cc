// ImportModel (what `kiln import` runs): the two entries and their link,
// weights referenced in place in the checkpoint or written once to the
// shared weights file, dtype conversion, and checkpoints that do not fit
// their config (extra tensors, wrong shapes). Also SaveGraph's in-place
// references, which the importer relies on.
#include "import/model_import.h"

#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <string>

#include "absl/strings/match.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "proto/graph_io.h"
#include "proto/kiln.pb.h"
#include "tests/import/import_test_util.h"

namespace kiln::import {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using testing::FixturesDir;
using testing::ReadBytes;
using testing::TempDir;
using testing::WriteBytes;
using ::testing::HasSubstr;

ImportOptions Small() {
  ImportOptions o;
  o.context = 16;
  o.tokens = 7;
  return o;
}

v1::Graph ParseProto(const std::string& path) {
  v1::Graph proto;
  EXPECT_TRUE(proto.ParseFromString(ReadBytes(path))) << path;
  return proto;
}

// The external files a graph file refers to, with how many tensors each.
std::map<std::string, int> ExternalFiles(const std::string& path) {
  std::map<std::string, int> files;
  const v1::Graph proto = ParseProto(path);
  for (const v1::Tensor& t : proto.tensors()) {
    if (t.has_external()) ++files[t.external().path()];
  }
  return files;
}

// Rewrites a safetensors file: its header edited by `edit`, `extra` bytes
// appended to the data, and the header padded with spaces (as the format
// allows) so that the data starts at a multiple of `align`.
void RewriteSafetensors(const std::string& from, const std::string& to, const std::function<void(json&)>& edit,
                        const std::string& extra, size_t align) {
  const std::string bytes = ReadBytes(from);
  uint64_t n;
  std::memcpy(&n, bytes.data(), 8);
  json header = json::parse(bytes.substr(8, n));
  edit(header);
  std::string text = header.dump();
  // align 0: data one byte past a multiple of 4, aligned for no dtype.
  if (align == 0) {
    while ((8 + text.size()) % 4 != 1) text += ' ';
  } else {
    while ((8 + text.size()) % align != 0) text += ' ';
  }
  WriteBytes(to, testing::Safetensors(text, bytes.substr(8 + n) + extra));
}

// The llama fixture copied into `dir`, its safetensors rewritten.
void CopyLlama(const TempDir& dir, const std::function<void(json&)>& edit, const std::string& extra, size_t align) {
  fs::copy_file(FixturesDir() + "/llama/config.json", dir.File("config.json"), fs::copy_options::overwrite_existing);
  RewriteSafetensors(FixturesDir() + "/llama/model.safetensors", dir.File("model.safetensors"), edit, extra, align);
}

TEST(ModelImport, WritesBothEntriesOverOneWeightsFile) {
  TempDir dir;
  auto r = ImportModel(FixturesDir() + "/llama", dir.File("llama.kgraph"), Small());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->decode_path, dir.File("llama.decode.kgraph"));
  EXPECT_EQ(r->bytes_in_place, 0);  // the checkpoint is in another folder
  EXPECT_EQ(r->unaligned_in_folder, 0);
  EXPECT_EQ(r->weights, 21);
  // Each weight once: the file holds the checkpoint's bytes, not two copies.
  const int64_t checkpoint_bytes = static_cast<int64_t>(fs::file_size(FixturesDir() + "/llama/model.safetensors"));
  EXPECT_LE(r->bytes_written, checkpoint_bytes);
  EXPECT_GT(r->bytes_written, checkpoint_bytes - 4096);
  EXPECT_EQ(ExternalFiles(r->prefill_path), (std::map<std::string, int>{{"llama.kgraph.weights", 21}}));
  EXPECT_EQ(ExternalFiles(r->decode_path), (std::map<std::string, int>{{"llama.kgraph.weights", 21}}));
  auto prefill = LoadGraph(r->prefill_path);
  ASSERT_TRUE(prefill.ok()) << prefill.status();
  EXPECT_EQ(prefill->metadata.at("model.entry.decode"), "llama.decode.kgraph");
  EXPECT_EQ(prefill->metadata.at("tokens"), "7");
  auto decode = LoadGraph(r->decode_path);
  ASSERT_TRUE(decode.ok()) << decode.status();
  EXPECT_EQ(decode->metadata.at("tokens"), "1");
  EXPECT_EQ(decode->states.size(), 4u);  // k and v caches of 2 layers
}

TEST(ModelImport, ReferencesAlignedCheckpointTensorsInPlace) {
  TempDir dir;
  CopyLlama(dir, [](json&) {}, "", 64);
  auto r = ImportModel(dir.path(), dir.File("m.kgraph"), Small());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->bytes_written, 0);
  EXPECT_TRUE(r->weights_path.empty());
  EXPECT_FALSE(fs::exists(dir.File("m.kgraph.weights")));
  EXPECT_GT(r->bytes_in_place, 500000);
  EXPECT_EQ(ExternalFiles(r->prefill_path), (std::map<std::string, int>{{"model.safetensors", 21}}));
  EXPECT_EQ(ExternalFiles(r->decode_path), (std::map<std::string, int>{{"model.safetensors", 21}}));
  // Loading maps them (an origin of the file), the bytes those of the checkpoint.
  auto g = LoadGraph(r->prefill_path);
  ASSERT_TRUE(g.ok()) << g.status();
  int mapped = 0;
  for (const TensorInfo& t : g->tensors) {
    if (t.constant && t.constant->size > 0) mapped += absl::StartsWith(t.constant->origin, "file:");
  }
  EXPECT_EQ(mapped, 21);
}

// safetensors pads its header to 8 bytes: element-aligned, not 64-aligned.
TEST(ModelImport, ReferencesEightByteAlignedCheckpointTensorsInPlace) {
  TempDir dir;
  // Lengthen the header's metadata until the data starts 8- but not 64-aligned.
  for (std::string pad;; pad += 'x') {
    CopyLlama(dir, [&](json& h) { h["__metadata__"]["pad"] = pad; }, "", 8);
    const std::string bytes = ReadBytes(dir.File("model.safetensors"));
    uint64_t n;
    std::memcpy(&n, bytes.data(), 8);
    if ((8 + n) % 64 != 0) break;
  }
  auto r = ImportModel(dir.path(), dir.File("m.kgraph"), Small());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->bytes_written, 0);
  EXPECT_EQ(r->unaligned_in_folder, 0);
  EXPECT_EQ(ExternalFiles(r->prefill_path), (std::map<std::string, int>{{"model.safetensors", 21}}));
  auto g = LoadGraph(r->prefill_path);
  ASSERT_TRUE(g.ok()) << g.status();
  int mapped = 0;
  for (const TensorInfo& t : g->tensors) {
    if (t.constant && t.constant->size > 0) mapped += absl::StartsWith(t.constant->origin, "file:");
  }
  EXPECT_EQ(mapped, 21);
}

TEST(ModelImport, UnalignedTensorsInTheFolderAreWrittenToTheWeightsFile) {
  TempDir dir;
  CopyLlama(dir, [](json&) {}, "", 64);
  ASSERT_TRUE(fs::remove(dir.File("model.safetensors")));
  CopyLlama(dir, [](json&) {}, "", 0);  // no tensor element-aligned
  auto r = ImportModel(dir.path(), dir.File("m.kgraph"), Small());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->bytes_in_place, 0);
  EXPECT_GT(r->bytes_written, 500000);
  EXPECT_EQ(r->unaligned_in_folder, 21);
}

TEST(ModelImport, ConvertsFloatWeightsToTheAskedDtype) {
  TempDir dir;
  ImportOptions o = Small();
  o.dtype = DType::kF16;
  auto r = ImportModel(FixturesDir() + "/qwen3_5", dir.File("q.kgraph"), o);
  ASSERT_TRUE(r.ok()) << r.status();
  auto g = LoadGraph(r->prefill_path);
  ASSERT_TRUE(g.ok()) << g.status();
  for (const TensorInfo& t : g->tensors) {
    if (t.name == "model.layers.1.self_attn.q_proj.weight" || t.name == "model.norm.weight" ||
        t.name == "model.layers.0.linear_attn.A_log") {
      EXPECT_EQ(t.dtype, DType::kF16) << t.name;
    }
  }
  const int64_t f32_bytes = static_cast<int64_t>(fs::file_size(FixturesDir() + "/qwen3_5/model.safetensors"));
  EXPECT_LT(r->bytes_written, f32_bytes / 2 + 4096);
}

TEST(ModelImport, ATensorTheGraphWouldNotReadIsAnError) {
  TempDir dir;
  // An o_proj bias: a real feature (attention_bias) that the config does not announce.
  CopyLlama(dir,
            [](json& h) {
              uint64_t end = 0;
              for (auto& [k, v] : h.items()) {
                if (k != "__metadata__") end = std::max(end, v["data_offsets"][1].get<uint64_t>());
              }
              h["model.layers.0.self_attn.o_proj.bias"] = {
                  {"dtype", "F32"}, {"shape", {64}}, {"data_offsets", {end, end + 256}}};
            },
            std::string(256, '\0'), 64);
  auto r = ImportModel(dir.path(), dir.File("m.kgraph"), Small());
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), HasSubstr("model.layers.0.self_attn.o_proj.bias"));
  EXPECT_FALSE(fs::exists(dir.File("m.kgraph")));
}

TEST(ModelImport, AShapeTheConfigDoesNotImplyIsAnErrorNamingTheWeight) {
  TempDir dir;
  CopyLlama(dir, [](json&) {}, "", 64);
  json config = json::parse(ReadBytes(dir.File("config.json")));
  config["intermediate_size"] = 96;
  WriteBytes(dir.File("config.json"), config.dump());
  auto r = ImportModel(dir.path(), dir.File("m.kgraph"), Small());
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), HasSubstr("mlp.gate_proj.weight"));
  EXPECT_THAT(r.status().message(), HasSubstr("[96,64]"));
}

TEST(ModelImport, AMissingWeightIsAnErrorNamingIt) {
  TempDir dir;
  CopyLlama(dir, [](json& h) { h.erase("model.norm.weight"); }, "", 64);
  auto r = ImportModel(dir.path(), dir.File("m.kgraph"), Small());
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), HasSubstr("'model.norm.weight' is missing"));
}

TEST(ModelImport, BadInputsAreErrors) {
  TempDir dir;
  EXPECT_TRUE(absl::IsNotFound(ImportModel(dir.path(), dir.File("m.kgraph"), Small()).status()));
  auto r = ImportModel(FixturesDir() + "/llama", dir.File("no/such/folder/m.kgraph"), Small());
  EXPECT_FALSE(r.ok());
  WriteBytes(dir.File("x.gguf"), "GGUF");
  r = ImportModel(dir.File("x.gguf"), dir.File("m.kgraph"), Small());
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), HasSubstr("x.gguf"));
}

TEST(ModelImport, DecodePathFor) {
  EXPECT_EQ(DecodePathFor("out/m.kgraph"), "out/m.decode.kgraph");
  EXPECT_EQ(DecodePathFor("m"), "m.decode.kgraph");
}

// SaveGraph's side: a reference must be inside the folder and aligned.
TEST(SaveInPlace, RefusesFilesOutsideTheFolderAndUnalignedOffsets) {
  TempDir dir, other;
  const std::string bytes(256, '\x05');
  WriteBytes(dir.File("blob"), bytes);
  WriteBytes(other.File("blob"), bytes);
  auto data = ConstantData::Copy(bytes.data(), 128);
  Graph g;
  g.name = "g";
  TensorInfo w;
  w.name = "w";
  w.dtype = DType::kF32;
  w.dims = {32};
  w.strides = {4};
  w.constant = data;
  g.tensors.push_back(w);
  TensorInfo y = w;
  y.name = "y";
  y.constant = nullptr;
  g.tensors.push_back(y);
  g.nodes.push_back(Node{});
  g.nodes.back().name = "neg";
  g.nodes.back().op = "neg";
  g.nodes.back().inputs = {0};
  g.nodes.back().outputs = {1};
  g.outputs = {1};

  SaveOptions o;
  o.in_place[data->data] = FileRange{dir.File("blob"), 64};
  ASSERT_TRUE(SaveGraph(g, dir.File("g.kgraph"), o).ok());
  EXPECT_EQ(ExternalFiles(dir.File("g.kgraph")), (std::map<std::string, int>{{"blob", 1}}));
  auto loaded = LoadGraph(dir.File("g.kgraph"));
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(static_cast<char>(loaded->tensors[0].constant->data[0]), '\x05');

  o.in_place[data->data] = FileRange{other.File("blob"), 64};
  auto st = SaveGraph(g, dir.File("g2.kgraph"), o);
  EXPECT_THAT(st.message(), HasSubstr("not inside the graph's folder"));
  o.in_place[data->data] = FileRange{dir.File("blob"), 34};
  EXPECT_THAT(SaveGraph(g, dir.File("g2.kgraph"), o).message(), HasSubstr("not a multiple of 4 (f32)"));
  o.in_place[data->data] = FileRange{dir.File("blob"), 192};
  EXPECT_THAT(SaveGraph(g, dir.File("g2.kgraph"), o).message(), HasSubstr("has only 256 bytes"));
  EXPECT_FALSE(fs::exists(dir.File("g2.kgraph")));
}

}  // namespace
}  // namespace kiln::import

namespace kiln::import {
namespace {

// Qwen3.5 as published: Qwen3_5ForConditionalGeneration, the text model's
// config under text_config and its tensors under "model.language_model.",
// with a vision tower and multi-token-prediction heads kiln leaves out. The
// import must read the same weights as from the Qwen3_5ForCausalLM form.
TEST(ModelImport, Qwen35MultimodalCheckpointImportsItsTextModel) {
  TempDir dir;
  json text = json::parse(ReadBytes(FixturesDir() + "/qwen3_5/config.json"));
  json config = {{"architectures", {"Qwen3_5ForConditionalGeneration"}},
                 {"model_type", "qwen3_5"},
                 {"tie_word_embeddings", text["tie_word_embeddings"]},
                 {"text_config", text},
                 {"vision_config", {{"depth", 2}}}};
  WriteBytes(dir.File("config.json"), config.dump());
  RewriteSafetensors(FixturesDir() + "/qwen3_5/model.safetensors", dir.File("model.safetensors"),
                     [](json& h) {
                       json renamed;
                       uint64_t end = 0;
                       for (auto& [k, v] : h.items()) {
                         if (k == "__metadata__") {
                           renamed[k] = v;
                           continue;
                         }
                         end = std::max(end, v["data_offsets"][1].get<uint64_t>());
                         renamed[k.rfind("model.", 0) == 0 ? "model.language_model." + k.substr(6) : k] = v;
                       }
                       renamed["model.visual.patch_embed.weight"] = {
                           {"dtype", "F32"}, {"shape", {8}}, {"data_offsets", {end, end + 32}}};
                       renamed["mtp.fc.weight"] = {
                           {"dtype", "F32"}, {"shape", {8}}, {"data_offsets", {end + 32, end + 64}}};
                       h = renamed;
                     },
                     std::string(64, '\0'), 1);
  TempDir out_a, out_b;
  auto a = ImportModel(dir.path(), out_a.File("m.kgraph"), Small());
  ASSERT_TRUE(a.ok()) << a.status();
  auto b = ImportModel(FixturesDir() + "/qwen3_5", out_b.File("m.kgraph"), Small());
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(a->weights, b->weights);
  EXPECT_EQ(ReadBytes(out_a.File("m.kgraph.weights")), ReadBytes(out_b.File("m.kgraph.weights")));
}

}  // namespace
}  // namespace kiln::import
