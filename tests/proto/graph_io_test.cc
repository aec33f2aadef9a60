// Saving and loading graph files: round trips, external weights, atomic
// writes, node sorting and the load limits.
#include "proto/graph_io.h"

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/kiln.pb.h"
#include "tests/proto/proto_test_util.h"

namespace kiln {
namespace {

using ::kiln::testing::ExpectSameGraph;
using ::kiln::testing::ReadBytes;
using ::kiln::testing::TempDir;
using ::kiln::testing::WriteBytes;
using ::testing::HasSubstr;

namespace fs = std::filesystem;

std::vector<std::string> FolderEntries(const std::string& dir) {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

v1::Graph ParseProto(const std::string& path) {
  v1::Graph proto;
  EXPECT_TRUE(proto.ParseFromString(ReadBytes(path))) << path;
  return proto;
}

TEST(GraphIo, RoundTripInline) {
  TempDir dir;
  const Graph graph = testing::MakeRichGraph();
  const std::string path = dir.File("model.kgraph");
  ASSERT_TRUE(SaveGraph(graph, path).ok());
  EXPECT_EQ(FolderEntries(dir.path()), std::vector<std::string>{"model.kgraph"});
  auto loaded = LoadGraph(path);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  ExpectSameGraph(graph, *loaded);
  // Every constant is inline.
  const v1::Graph proto = ParseProto(path);
  for (const v1::Tensor& t : proto.tensors()) EXPECT_FALSE(t.has_external()) << t.name();
}

TEST(GraphIo, RoundTripExternalWeights) {
  TempDir dir;
  const Graph graph = testing::MakeRichGraph();
  const std::string path = dir.File("model.kgraph");
  SaveOptions options;
  options.external_weights = true;
  options.external_min_bytes = 64;  // big_w (1024 B) and q8_w (68 B) go out; norm_w (32 B), rows (8 B) stay
  ASSERT_TRUE(SaveGraph(graph, path, options).ok());
  EXPECT_EQ(FolderEntries(dir.path()), (std::vector<std::string>{"model.kgraph", "model.kgraph.weights"}));

  const v1::Graph proto = ParseProto(path);
  int external = 0;
  for (const v1::Tensor& t : proto.tensors()) {
    if (!t.has_external()) continue;
    ++external;
    EXPECT_EQ(t.external().path(), "model.kgraph.weights");
    EXPECT_EQ(t.external().offset() % kExternalAlignment, 0u) << t.name();
  }
  EXPECT_EQ(external, 2);
  EXPECT_TRUE(proto.tensors(graph.FindTensor("norm_w")).has_inline_data());

  auto loaded = LoadGraph(path);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  ExpectSameGraph(graph, *loaded);
  const TensorInfo& big = loaded->tensors[loaded->FindTensor("big_w")];
  EXPECT_EQ(reinterpret_cast<uintptr_t>(big.constant->data) % kExternalAlignment, 0u);
  EXPECT_NE(big.constant->keepalive, nullptr);
}

// The weights are memory-mapped (visible in /proc/self/maps) while a loaded
// constant lives, and unmapped once the last one is gone.
TEST(GraphIo, ExternalWeightsAreMapped) {
  TempDir dir;
  GraphBuilder b("mapped");
  Tensor x = b.Input("x", DType::kF32, {1024, 256});
  Tensor w = b.Constant("w", DType::kF32, {1024, 256}, testing::F32Bytes(1024 * 256));
  b.Output(b.Op1("add", {x, w}));
  auto graph = b.Build();
  ASSERT_TRUE(graph.ok()) << graph.status();
  const std::string path = dir.File("m.kgraph");
  SaveOptions options;
  options.external_weights = true;
  ASSERT_TRUE(SaveGraph(*graph, path, options).ok());
  EXPECT_LT(ReadBytes(path).size(), 4096u);  // 1 MiB of weights are not in the graph file
  const std::string weights = fs::canonical(WeightsPathFor(path)).string();
  auto is_mapped = [&] { return ReadBytes("/proc/self/maps").find(weights) != std::string::npos; };
  {
    auto loaded = LoadGraph(path);
    ASSERT_TRUE(loaded.ok()) << loaded.status();
    EXPECT_TRUE(is_mapped());
    auto constant = loaded->tensors[loaded->FindTensor("w")].constant;
    *loaded = Graph{};
    EXPECT_TRUE(is_mapped());  // the constant keeps its mapping alive
    EXPECT_EQ(0, std::memcmp(constant->data, graph->tensors[w.id].constant->data, constant->size));
  }
  EXPECT_FALSE(is_mapped());
}

TEST(GraphIo, SharedConstantIsWrittenOnce) {
  TempDir dir;
  auto data = testing::PatternBytes(4096, 1);
  GraphBuilder b("shared");
  Tensor w1 = b.Constant("w1", DType::kF32, {1024}, data);
  Tensor w2 = b.Constant("w2", DType::kF32, {1024}, data);
  b.Output(b.Op1("add", {w1, w2}));
  auto graph = b.Build();
  ASSERT_TRUE(graph.ok()) << graph.status();
  const std::string path = dir.File("s.kgraph");
  SaveOptions options;
  options.external_weights = true;
  ASSERT_TRUE(SaveGraph(*graph, path, options).ok());
  EXPECT_EQ(fs::file_size(WeightsPathFor(path)), 4096u);
  auto loaded = LoadGraph(path);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  ExpectSameGraph(*graph, *loaded);
}

TEST(GraphIo, SaveIsDeterministic) {
  TempDir dir;
  const Graph graph = testing::MakeRichGraph();
  ASSERT_TRUE(SaveGraph(graph, dir.File("a.kgraph")).ok());
  ASSERT_TRUE(SaveGraph(graph, dir.File("b.kgraph")).ok());
  EXPECT_EQ(ReadBytes(dir.File("a.kgraph")), ReadBytes(dir.File("b.kgraph")));
}

// Saving over the files a graph was loaded from replaces them by rename, so
// the mapping of the old weights stays valid while the new ones are written.
TEST(GraphIo, ResaveOverLoadedFiles) {
  TempDir dir;
  const Graph graph = testing::MakeRichGraph();
  const std::string path = dir.File("model.kgraph");
  SaveOptions options;
  options.external_weights = true;
  options.external_min_bytes = 64;
  ASSERT_TRUE(SaveGraph(graph, path, options).ok());
  auto loaded = LoadGraph(path);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  loaded->metadata["resaved"] = "yes";
  ASSERT_TRUE(SaveGraph(*loaded, path, options).ok());
  auto again = LoadGraph(path);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->metadata.at("resaved"), "yes");
  again->metadata.erase("resaved");
  ExpectSameGraph(graph, *again);
  // The first load's constants still read the replaced (unlinked) weights.
  loaded->metadata.erase("resaved");
  ExpectSameGraph(graph, *loaded);
  EXPECT_EQ(FolderEntries(dir.path()), (std::vector<std::string>{"model.kgraph", "model.kgraph.weights"}));
}

TEST(GraphIo, SaveRefusesAnInvalidGraphAndLeavesNoFiles) {
  TempDir dir;
  Graph graph = testing::MakeRichGraph();
  graph.nodes[0].attrs["eps"] = std::string("tiny");
  const absl::Status st = SaveGraph(graph, dir.File("bad.kgraph"));
  EXPECT_FALSE(st.ok());
  EXPECT_THAT(std::string(st.message()), HasSubstr("cannot save an invalid graph"));
  EXPECT_THAT(std::string(st.message()), HasSubstr("attribute 'eps'"));
  EXPECT_TRUE(FolderEntries(dir.path()).empty());
}

TEST(GraphIo, SaveIntoMissingFolderFails) {
  TempDir dir;
  const absl::Status st = SaveGraph(testing::MakeRichGraph(), dir.File("no/such/folder/g.kgraph"));
  EXPECT_FALSE(st.ok());
  EXPECT_THAT(std::string(st.message()), HasSubstr("temp file"));
}

// An existing file is replaced whole; a failed save leaves it untouched.
TEST(GraphIo, FailedSaveKeepsTheOldFile) {
  TempDir dir;
  const std::string path = dir.File("g.kgraph");
  const Graph graph = testing::MakeRichGraph();
  ASSERT_TRUE(SaveGraph(graph, path).ok());
  const std::string before = ReadBytes(path);
  Graph bad = graph;
  bad.outputs.push_back(12345);
  EXPECT_FALSE(SaveGraph(bad, path).ok());
  EXPECT_EQ(ReadBytes(path), before);
  EXPECT_EQ(FolderEntries(dir.path()), std::vector<std::string>{"g.kgraph"});
}

TEST(GraphIo, NodesOutOfOrderAreSorted) {
  TempDir dir;
  const Graph graph = testing::MakeRichGraph();
  const std::string path = dir.File("g.kgraph");
  ASSERT_TRUE(SaveGraph(graph, path).ok());
  v1::Graph proto = ParseProto(path);
  std::reverse(proto.mutable_nodes()->begin(), proto.mutable_nodes()->end());
  WriteBytes(path, proto.SerializeAsString());
  auto loaded = LoadGraph(path);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  // Same nodes, in an order where each comes after its inputs' writers.
  ASSERT_EQ(loaded->nodes.size(), graph.nodes.size());
  for (const Node& n : graph.nodes) {
    auto it = std::find_if(loaded->nodes.begin(), loaded->nodes.end(),
                           [&](const Node& m) { return m.name == n.name; });
    ASSERT_NE(it, loaded->nodes.end()) << n.name;
    EXPECT_EQ(it->inputs, n.inputs);
    EXPECT_EQ(it->outputs, n.outputs);
    EXPECT_EQ(it->attrs, n.attrs);
    const int index = static_cast<int>(it - loaded->nodes.begin());
    for (int out : n.outputs) EXPECT_EQ(loaded->tensors[out].producer, index);
    for (int in : n.inputs) {
      if (in >= 0) {
        EXPECT_LT(loaded->tensors[loaded->StorageOf(in)].producer, index);
      }
    }
  }
}

TEST(GraphIo, LoadsAFileWithoutAttributeDefaults) {
  // A writer may leave out attributes that have defaults; loading fills them.
  TempDir dir;
  const Graph graph = testing::MakeRichGraph();
  const std::string path = dir.File("g.kgraph");
  ASSERT_TRUE(SaveGraph(graph, path).ok());
  v1::Graph proto = ParseProto(path);
  for (v1::Node& n : *proto.mutable_nodes()) {
    if (n.op() == "rms_norm") n.mutable_attrs()->clear();
  }
  WriteBytes(path, proto.SerializeAsString());
  auto loaded = LoadGraph(path);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  const Node& norm = loaded->nodes[0];
  ASSERT_EQ(norm.op, "rms_norm");
  EXPECT_TRUE(norm.attrs.count("eps"));
}

TEST(GraphIo, SymlinkInsideTheFolderIsAccepted) {
  TempDir dir;
  const Graph graph = testing::MakeRichGraph();
  const std::string path = dir.File("g.kgraph");
  SaveOptions options;
  options.external_weights = true;
  options.external_min_bytes = 64;
  ASSERT_TRUE(SaveGraph(graph, path, options).ok());
  fs::create_directory(dir.File("sub"));
  fs::rename(WeightsPathFor(path), dir.File("sub/real.bin"));
  fs::create_symlink("sub/real.bin", dir.File("link.bin"));
  v1::Graph proto = ParseProto(path);
  for (v1::Tensor& t : *proto.mutable_tensors()) {
    if (t.has_external()) t.mutable_external()->set_path("link.bin");
  }
  WriteBytes(path, proto.SerializeAsString());
  auto loaded = LoadGraph(path);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  ExpectSameGraph(graph, *loaded);
}

TEST(GraphIo, UnalignedExternalDataIsCopied) {
  TempDir dir;
  const Graph graph = testing::MakeRichGraph();
  const std::string path = dir.File("g.kgraph");
  ASSERT_TRUE(SaveGraph(graph, path).ok());
  // Move big_w's inline bytes to offset 3 of a file of its own.
  v1::Graph proto = ParseProto(path);
  v1::Tensor& big = *proto.mutable_tensors(graph.FindTensor("big_w"));
  WriteBytes(dir.File("w.bin"), "abc" + big.inline_data() + "xyz");
  const uint64_t length = big.inline_data().size();
  big.mutable_external()->set_path("w.bin");
  big.mutable_external()->set_offset(3);
  big.mutable_external()->set_length(length);
  WriteBytes(path, proto.SerializeAsString());
  auto loaded = LoadGraph(path);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  ExpectSameGraph(graph, *loaded);
}

TEST(GraphIo, LimitsAreEnforced) {
  TempDir dir;
  const Graph graph = testing::MakeRichGraph();
  const std::string path = dir.File("g.kgraph");
  ASSERT_TRUE(SaveGraph(graph, path).ok());
  const int64_t file_size = static_cast<int64_t>(fs::file_size(path));
  struct Case {
    LoadOptions options;
    const char* fragment;
  };
  std::vector<Case> cases(10);
  cases[0].options.max_file_bytes = file_size - 1;
  cases[0].fragment = "more than the limit of";
  cases[1].options.max_tensors = 3;
  cases[1].fragment = "tensors, more than the limit of 3";
  cases[2].options.max_nodes = 2;
  cases[2].fragment = "nodes, more than the limit of 2";
  cases[3].options.max_name_bytes = 4;
  cases[3].fragment = "more than the limit of 4";
  cases[4].options.max_metadata = 1;
  cases[4].fragment = "metadata entries";
  cases[5].options.max_attr_ints = 1;
  cases[5].fragment = "an attribute of node #4 has 2 values, more than the limit of 1";
  cases[6].options.max_string_bytes = 2;
  cases[6].fragment = "more than the limit of 2";
  cases[7].options.max_graph_io = 2;
  cases[7].fragment = "inputs, more than the limit of 2";
  cases[8].options.max_elements = 50;
  cases[8].fragment = "more than 50 fields and values";
  cases[9].options.max_node_inputs = 2;
  cases[9].fragment = "node #0 has 3 inputs, more than the limit of 2";
  for (const Case& c : cases) {
    auto loaded = LoadGraph(path, c.options);
    ASSERT_FALSE(loaded.ok()) << c.fragment;
    EXPECT_THAT(std::string(loaded.status().message()), HasSubstr(c.fragment));
    EXPECT_THAT(std::string(loaded.status().message()), HasSubstr(path));
  }
  EXPECT_TRUE(LoadGraph(path).ok());
}

// Counts are refused before protobuf allocates for them: each empty tensor
// costs 2 bytes of file but a heap object once parsed.
TEST(GraphIo, CountsAreCheckedBeforeParsing) {
  std::string bytes = "\x08\x01";  // format_version 1
  for (int i = 0; i < 3'000'000; ++i) bytes += std::string("\x1a\x00", 2);  // empty tensors
  auto loaded = ParseGraph(bytes, ".");
  ASSERT_FALSE(loaded.ok());
  EXPECT_THAT(std::string(loaded.status().message()),
              HasSubstr("the graph has 3000000 tensors, more than the limit of 1048576"));

  std::string unknown = "\x08\x01";
  for (int i = 0; i < 1000; ++i) unknown += std::string("\xf8\x01\x00", 3);  // field 31, varint 0
  LoadOptions options;
  options.max_elements = 500;
  loaded = ParseGraph(unknown, ".", options);
  ASSERT_FALSE(loaded.ok());
  EXPECT_THAT(std::string(loaded.status().message()), HasSubstr("more than 500 fields and values"));
}

TEST(GraphIo, ParseGraphFromBytes) {
  TempDir dir;
  const Graph graph = testing::MakeRichGraph();
  ASSERT_TRUE(SaveGraph(graph, dir.File("g.kgraph")).ok());
  auto loaded = ParseGraph(ReadBytes(dir.File("g.kgraph")), dir.path());
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  ExpectSameGraph(graph, *loaded);
}

}  // namespace
}  // namespace kiln
