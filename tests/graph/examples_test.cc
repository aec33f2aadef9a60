// The example model graphs build (so every node validated) and have the
// inputs, outputs, states, weights and metadata their documentation promises.
#include "examples/example_graphs.h"

#include <cmath>
#include <cstring>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "gmock/gmock.h"
#include "graph/dtype.h"
#include "gtest/gtest.h"

namespace kiln {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using Dims = std::vector<int64_t>;

struct Expected {
  DType dtype;
  Dims dims;
};

std::map<std::string, Expected> ByName(const Graph& g, const std::vector<int>& ids) {
  std::map<std::string, Expected> m;
  for (int id : ids) m[g.tensor(id).name] = {g.tensor(id).dtype, g.tensor(id).dims};
  return m;
}

std::map<std::string, std::string> StateNames(const Graph& g) {
  std::map<std::string, std::string> m;
  for (const StatePair& s : g.states) m[g.tensor(s.input).name] = g.tensor(s.output).name;
  return m;
}

const TensorInfo& Named(const Graph& g, const std::string& name) {
  const int id = g.FindTensor(name);
  EXPECT_GE(id, 0) << name;
  return g.tensor(id >= 0 ? id : 0);
}

void ExpectTensor(const Graph& g, const std::string& name, DType dtype, const Dims& dims) {
  const TensorInfo& t = Named(g, name);
  EXPECT_EQ(t.dtype, dtype) << name;
  EXPECT_EQ(t.dims, dims) << name;
}

// Example graphs are large; build each once for all tests.
const Graph& Example(const std::string& name) {
  static auto* cache = new std::map<std::string, Graph>();
  auto it = cache->find(name);
  if (it == cache->end()) {
    auto g = MakeExample(name, 1);
    EXPECT_TRUE(g.ok()) << g.status();
    if (!g.ok()) return *new Graph();
    it = cache->emplace(name, *std::move(g)).first;
  }
  return it->second;
}

TEST(Examples, NamesAreTheFourDocumented) {
  EXPECT_THAT(ExampleNames(), ElementsAre("attention-block-decode", "attention-block-prefill",
                                          "hybrid-block-decode", "hybrid-block-prefill"));
}

TEST(Examples, EveryExampleBuildsWithNameAndSeedMetadata) {
  for (const std::string& name : ExampleNames()) {
    const Graph& g = Example(name);
    EXPECT_EQ(g.name, name);
    EXPECT_EQ(g.metadata.at("example"), name);
    EXPECT_EQ(g.metadata.at("seed"), "1");
    EXPECT_FALSE(g.metadata.at("description").empty());
  }
}

TEST(Examples, UnknownNameIsNotFoundAndListsTheNames) {
  auto g = MakeExample("gpt-17", 1);
  EXPECT_EQ(g.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(g.status().message(), HasSubstr("hybrid-block-decode"));
}

constexpr DType kF32 = DType::kF32, kF16 = DType::kF16, kI32 = DType::kI32;

TEST(Examples, AttentionDecodeInterface) {
  const Graph& g = Example("attention-block-decode");
  auto in = ByName(g, g.inputs);
  ASSERT_EQ(in.size(), 5u);
  ExpectTensor(g, "x", kF32, {1, 1, 1024});
  ExpectTensor(g, "pos", kI32, {1});
  ExpectTensor(g, "mask", kF32, {1, 1, 1, 4096});
  ExpectTensor(g, "blk.0.k_cache", kF16, {1, 4096, 1024});
  ExpectTensor(g, "blk.0.v_cache", kF16, {1, 4096, 1024});
  EXPECT_EQ(g.metadata.at("input_range.pos"), "0,4095");
  EXPECT_EQ(g.metadata.at("input_range.mask"), "0,0");

  auto out = ByName(g, g.outputs);
  ASSERT_EQ(out.size(), 3u);
  ExpectTensor(g, "y", kF32, {1, 1, 1024});
  EXPECT_EQ(StateNames(g), (std::map<std::string, std::string>{
                               {"blk.0.k_cache", "blk.0.k_cache.next"},
                               {"blk.0.v_cache", "blk.0.v_cache.next"}}));
}

TEST(Examples, AttentionPrefillInterface) {
  const Graph& g = Example("attention-block-prefill");
  auto in = ByName(g, g.inputs);
  ASSERT_EQ(in.size(), 3u);
  ExpectTensor(g, "x", kF32, {1, 512, 1024});
  ExpectTensor(g, "blk.0.k_cache", kF16, {1, 4096, 1024});
  // Positions 0..511 are a constant: prefill of a sequence's first tokens.
  const TensorInfo& pos = Named(g, "pos");
  ASSERT_TRUE(pos.is_constant());
  std::vector<int32_t> p(512);
  ASSERT_EQ(pos.constant->size, p.size() * sizeof(int32_t));
  std::memcpy(p.data(), pos.constant->data, pos.constant->size);
  for (int i = 0; i < 512; ++i) ASSERT_EQ(p[i], i);
  ExpectTensor(g, "y", kF32, {1, 512, 1024});
  EXPECT_EQ(StateNames(g).size(), 2u);
}

TEST(Examples, HybridDecodeInterface) {
  const Graph& g = Example("hybrid-block-decode");
  auto in = ByName(g, g.inputs);
  ASSERT_EQ(in.size(), 7u);
  ExpectTensor(g, "x", kF32, {1, 1, 1024});
  ExpectTensor(g, "pos", kI32, {1});
  ExpectTensor(g, "mask", kF32, {1, 1, 1, 4096});
  // Conv channels: q (8x128) + k (8x128) + v (16x128).
  ExpectTensor(g, "blk.0.conv_state", kF32, {1, 3, 4096});
  ExpectTensor(g, "blk.0.ssm_state", kF32, {1, 16, 128, 128});
  ExpectTensor(g, "blk.1.k_cache", kF16, {1, 4096, 1024});
  ExpectTensor(g, "blk.1.v_cache", kF16, {1, 4096, 1024});
  ExpectTensor(g, "y", kF32, {1, 1, 1024});
  EXPECT_EQ(g.outputs.size(), 5u);
  EXPECT_EQ(StateNames(g), (std::map<std::string, std::string>{
                               {"blk.0.conv_state", "blk.0.ssm_conv.new_state"},
                               {"blk.0.ssm_state", "blk.0.ssm_gdn.final_state"},
                               {"blk.1.k_cache", "blk.1.k_cache.next"},
                               {"blk.1.v_cache", "blk.1.v_cache.next"}}));
}

TEST(Examples, HybridPrefillInterface) {
  const Graph& g = Example("hybrid-block-prefill");
  EXPECT_EQ(g.inputs.size(), 5u);
  ExpectTensor(g, "x", kF32, {1, 512, 1024});
  ExpectTensor(g, "y", kF32, {1, 512, 1024});
  EXPECT_EQ(StateNames(g).size(), 4u);
  EXPECT_EQ(g.FindTensor("mask"), -1);
}

// Each decode state is updated in place by the op that may alias it.
TEST(Examples, DecodeStatesComeFromInPlaceOps) {
  const Graph& g = Example("hybrid-block-decode");
  std::map<std::string, std::string> producer_op;
  for (const StatePair& s : g.states) {
    const TensorInfo& next = g.tensor(s.output);
    ASSERT_GE(next.producer, 0);
    const Node& n = g.nodes[next.producer];
    producer_op[g.tensor(s.input).name] = n.op;
    EXPECT_EQ(n.inputs[n.op == "gated_delta_net" ? 5 : n.op == "conv1d_causal" ? 2 : 0], s.input)
        << n.name;
  }
  EXPECT_EQ(producer_op["blk.0.conv_state"], "conv1d_causal");
  EXPECT_EQ(producer_op["blk.0.ssm_state"], "gated_delta_net");
  EXPECT_EQ(producer_op["blk.1.k_cache"], "write_rows");
}

// FA reads the cache through a head-split view of write_rows' output.
TEST(Examples, DecodeAttentionReadsTheCacheThroughAView) {
  const Graph& g = Example("attention-block-decode");
  const Node* fa = nullptr;
  for (const Node& n : g.nodes) if (n.op == "flash_attn") fa = &n;
  ASSERT_NE(fa, nullptr);
  const TensorInfo& k = g.tensor(fa->inputs[1]);
  EXPECT_TRUE(k.is_view());
  EXPECT_EQ(k.dims, (Dims{1, 4096, 8, 128}));
  EXPECT_EQ(g.tensor(k.view_of).name, "blk.0.k_cache.next");
  EXPECT_EQ(g.tensor(fa->inputs[3]).name, "mask");
  EXPECT_FALSE(fa->GetBool("causal"));
}

TEST(Examples, WeightsAreStoredLikeCheckpoints) {
  const Graph& g = Example("hybrid-block-decode");
  ExpectTensor(g, "blk.0.ssm_in_qkv.weight", kF16, {4096, 1024});
  ExpectTensor(g, "blk.0.ssm_out.weight", kF16, {1024, 2048});
  ExpectTensor(g, "blk.0.ssm_norm.weight", kF32, {128});
  ExpectTensor(g, "blk.0.ssm_conv1d.weight", kF32, {4096, 4});
  ExpectTensor(g, "blk.1.attn_q.weight", kF16, {2048, 1024});
  ExpectTensor(g, "blk.1.attn_k_norm.weight", kF32, {128});
  ExpectTensor(g, "blk.1.ffn_down.weight", kF16, {1024, 3072});
  for (const TensorInfo& t : g.tensors) {
    if (!t.is_constant()) continue;
    EXPECT_TRUE(t.dtype == kF16 || t.dtype == kF32 || t.dtype == kI32) << t.name;
  }
}

double WeightStd(const TensorInfo& t) {
  const auto* h = reinterpret_cast<const uint16_t*>(t.constant->data);
  const size_t n = t.constant->size / 2;
  double s = 0, s2 = 0;
  for (size_t i = 0; i < n; ++i) {
    const double v = F16ToF32(h[i]);
    s += v;
    s2 += v * v;
  }
  return std::sqrt(s2 / n - (s / n) * (s / n));
}

TEST(Examples, LinearWeightsScaleWithFanIn) {
  const Graph& g = Example("attention-block-decode");
  EXPECT_NEAR(WeightStd(Named(g, "blk.0.attn_q.weight")), 1 / std::sqrt(1024.0), 1e-3);
  EXPECT_NEAR(WeightStd(Named(g, "blk.0.ffn_down.weight")), 1 / std::sqrt(3072.0), 1e-3);
}

// The GDN decay parameters give g = -exp(A_log) * softplus(.) <= 0.
TEST(Examples, GdnDecayParametersAreInRange) {
  const Graph& g = Example("hybrid-block-decode");
  const TensorInfo& a_log = Named(g, "blk.0.ssm_a_log");
  const auto* a = reinterpret_cast<const float*>(a_log.constant->data);
  for (int i = 0; i < 16; ++i) {
    EXPECT_GE(a[i], 0.0f);
    EXPECT_LE(a[i], std::log(16.0f) + 1e-6f);
  }
}

bool SameConstants(const Graph& a, const Graph& b) {
  if (a.tensors.size() != b.tensors.size()) return false;
  for (size_t i = 0; i < a.tensors.size(); ++i) {
    const auto& ca = a.tensors[i].constant;
    const auto& cb = b.tensors[i].constant;
    if (!ca != !cb) return false;
    if (ca && (ca->size != cb->size || std::memcmp(ca->data, cb->data, ca->size) != 0)) {
      return false;
    }
  }
  return true;
}

TEST(Examples, SeedDeterminesTheWeights) {
  auto a = MakeExample("attention-block-decode", 7);
  auto b = MakeExample("attention-block-decode", 7);
  auto c = MakeExample("attention-block-decode", 8);
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  EXPECT_TRUE(SameConstants(*a, *b));
  EXPECT_FALSE(SameConstants(*a, *c));
  EXPECT_EQ(c->metadata.at("seed"), "8");
}

}  // namespace
}  // namespace kiln
