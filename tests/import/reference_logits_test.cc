// The proof against the reference: each tiny checkpoint that
// tests/models/make_fixtures.py made with the transformers library (Llama,
// Llama 3.1 rope scaling, Qwen3 in shards, Qwen3-Next, Qwen3.5; the Llama one
// also as GGUF f32, f16 and q8_0, Qwen3 as GGUF f16; two hybrids imported as
// bf16 / f16)
// is imported with `kiln import`'s code, loaded back from disk, and run as
// the reference ran it: a 7-token prompt (prefill entry), then 3 decode
// steps (decode entry, the same states) fed the reference's greedy tokens.
// Every backend in the build runs it (a device backend with the CPU after
// it; one that cannot be created here is skipped). The logits must match
// the reference's: NMSE within OPS.md's linear tolerance (1e-6 for f32
// weights and an f32 KV cache; 5e-4 for f16 / q8_0 weights), and the same
// top-1 token.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "backends/registry.h"
#include "gtest/gtest.h"
#include "import/model_import.h"
#include "proto/graph_io.h"
#include "scheduler/model.h"
#include "tests/import/import_test_util.h"
#include "scheduler/npy.h"

namespace kiln::import {
namespace {

using testing::FixturesDir;
using testing::TempDir;

constexpr int64_t kContext = 16;

struct Case {
  std::string name;       // the test's name
  std::string source;     // under FixturesDir()
  std::string reference;  // the fixture folder with the reference logits
  bool low_precision;     // f16 / bf16 / q8_0 weights
  std::optional<DType> dtype = std::nullopt;  // kiln import --dtype
};

const Case kCases[] = {
    {"llama", "llama", "llama", false},
    {"llama3_rope", "llama3_rope", "llama3_rope", false},
    {"qwen3_sharded", "qwen3", "qwen3", false},
    {"qwen3_next", "qwen3_next", "qwen3_next", false},
    {"qwen3_5", "qwen3_5", "qwen3_5", false},
    {"llama_gguf_f32", "llama/llama-f32.gguf", "llama", false},
    {"llama_gguf_f16", "llama/llama-f16.gguf", "llama", true},
    {"llama_gguf_q8_0", "llama/llama-q8_0.gguf", "llama", true},
    {"qwen3_gguf_f16", "qwen3/qwen3-f16.gguf", "qwen3", true},
    {"qwen3_5_as_bf16", "qwen3_5", "qwen3_5", true, DType::kBF16},
    {"qwen3_next_as_f16", "qwen3_next", "qwen3_next", true, DType::kF16},
};

void PrintTo(const Case& c, std::ostream* os) { *os << c.name; }

HostTensor Load(const std::string& path) {
  auto t = ReadNpy(path);
  EXPECT_TRUE(t.ok()) << t.status();
  return t.ok() ? *std::move(t) : HostTensor{};
}

HostTensor I32(std::vector<int64_t> dims, const std::vector<int32_t>& values) {
  HostTensor t = HostTensor::Zeros(DType::kI32, std::move(dims));
  std::memcpy(t.data.data(), values.data(), values.size() * 4);
  return t;
}

// mask [1, 1, T, kContext]: token i (at position first + i) sees cells 0..first+i.
HostTensor CausalMask(int64_t first, int64_t T) {
  HostTensor t = HostTensor::Zeros(DType::kF32, {1, 1, T, kContext});
  float* m = reinterpret_cast<float*>(t.data.data());
  for (int64_t i = 0; i < T; ++i) {
    for (int64_t j = 0; j < kContext; ++j) m[i * kContext + j] = j <= first + i ? 0.f : -INFINITY;
  }
  return t;
}

const float* F32(const HostTensor& t) { return reinterpret_cast<const float*>(t.data.data()); }

// Compares `rows` rows of `vocab` logits with the reference's.
void ExpectLogitsMatch(const float* got, const float* want, int64_t rows, int64_t vocab, bool low_precision,
                       const std::string& what) {
  double num = 0, den = 0;
  for (int64_t i = 0; i < rows * vocab; ++i) {
    ASSERT_TRUE(std::isfinite(got[i])) << what << ": logit " << i << " is " << got[i];
    num += (double{got[i]} - want[i]) * (double{got[i]} - want[i]);
    den += double{want[i]} * want[i];
  }
  const double nmse = num / den;
  std::printf("  %s: NMSE %.3g\n", what.c_str(), nmse);
  EXPECT_LT(nmse, low_precision ? 5e-4 : 1e-6) << what;
  for (int64_t r = 0; r < rows; ++r) {
    const float* g = got + r * vocab;
    const float* w = want + r * vocab;
    const int64_t top_want = std::max_element(w, w + vocab) - w;
    const int64_t top_got = std::max_element(g, g + vocab) - g;
    // With f16 / q8_0 weights a near tie may flip: rows whose reference
    // margin is under 0.1 (the logits' std is about 3) are not held to it.
    std::vector<float> sorted(w, w + vocab);
    std::nth_element(sorted.begin(), sorted.end() - 2, sorted.end());
    const float margin = sorted[vocab - 1] - sorted[vocab - 2];
    if (low_precision && margin < 0.1f) continue;
    EXPECT_EQ(top_got, top_want) << what << " row " << r << " (reference margin " << margin << ")";
  }
}

class ReferenceLogits : public ::testing::TestWithParam<std::tuple<Case, std::string>> {};

TEST_P(ReferenceLogits, PromptAndDecodeStepsMatchTransformers) {
  const auto& [c, backend] = GetParam();
  {
    auto probe = CreateBackend(backend);
    if (!probe.ok()) GTEST_SKIP() << "backend " << backend << " is not available here: " << probe.status().message();
  }
  const std::string ref = FixturesDir() + "/" + c.reference;
  const HostTensor prompt = Load(ref + "/prompt.npy");
  const HostTensor decode_tokens = Load(ref + "/decode_tokens.npy");
  const HostTensor prompt_logits = Load(ref + "/prompt_logits.npy");
  const HostTensor decode_logits = Load(ref + "/decode_logits.npy");
  ASSERT_EQ(prompt.dims.size(), 1u);
  const int64_t T = prompt.dims[0], steps = decode_tokens.dims[0], vocab = prompt_logits.dims[1];

  TempDir dir;
  ImportOptions options;
  options.context = kContext;
  options.tokens = T;
  options.cache_dtype = DType::kF32;  // the reference's cache is f32
  options.dtype = c.dtype;
  auto imported = ImportModel(FixturesDir() + "/" + c.source, dir.File("model.kgraph"), options);
  ASSERT_TRUE(imported.ok()) << imported.status();
  auto prefill_graph = LoadGraph(imported->prefill_path);
  ASSERT_TRUE(prefill_graph.ok()) << prefill_graph.status();
  ASSERT_EQ(prefill_graph->metadata["model.entry.decode"], "model.decode.kgraph");
  auto decode_graph = LoadGraph(dir.File("model.decode.kgraph"));
  ASSERT_TRUE(decode_graph.ok()) << decode_graph.status();

  std::vector<std::shared_ptr<Backend>> backends;
  for (const std::string& name : backend == "cpu" ? std::vector<std::string>{"cpu"}
                                                  : std::vector<std::string>{backend, "cpu"}) {
    auto b = CreateBackend(name);
    ASSERT_TRUE(b.ok()) << b.status();
    backends.push_back(std::shared_ptr<Backend>(*std::move(b)));
  }
  Model model(backends);
  auto prefill = model.Add("prefill", *std::move(prefill_graph));
  ASSERT_TRUE(prefill.ok()) << prefill.status();
  auto decode = model.Add("decode", *std::move(decode_graph));
  ASSERT_TRUE(decode.ok()) << decode.status();

  const int32_t* ids = reinterpret_cast<const int32_t*>(prompt.data.data());
  std::vector<int32_t> positions(T);
  for (int64_t i = 0; i < T; ++i) positions[i] = static_cast<int32_t>(i);
  ASSERT_TRUE((*prefill)->SetInput("tokens", I32({1, T}, std::vector<int32_t>(ids, ids + T))).ok());
  ASSERT_TRUE((*prefill)->SetInput("pos", I32({T}, positions)).ok());
  ASSERT_TRUE((*prefill)->SetInput("mask", CausalMask(0, T)).ok());
  ASSERT_TRUE((*prefill)->Run().ok());
  auto logits = (*prefill)->GetOutput("logits");
  ASSERT_TRUE(logits.ok()) << logits.status();
  ASSERT_EQ(logits->dims, (std::vector<int64_t>{1, T, vocab}));
  ExpectLogitsMatch(F32(*logits), F32(prompt_logits), T, vocab, c.low_precision, c.name + " prompt");

  const int32_t* next = reinterpret_cast<const int32_t*>(decode_tokens.data.data());
  for (int64_t s = 0; s < steps; ++s) {
    ASSERT_TRUE((*decode)->SetInput("tokens", I32({1, 1}, {next[s]})).ok());
    ASSERT_TRUE((*decode)->SetInput("pos", I32({1}, {static_cast<int32_t>(T + s)})).ok());
    ASSERT_TRUE((*decode)->SetInput("mask", CausalMask(T + s, 1)).ok());
    auto st = (*decode)->Run();
    ASSERT_TRUE(st.ok()) << st;
    auto step = (*decode)->GetOutput("logits");
    ASSERT_TRUE(step.ok()) << step.status();
    ExpectLogitsMatch(F32(*step), F32(decode_logits) + s * vocab, 1, vocab, c.low_precision,
                      c.name + " decode step " + std::to_string(s));
  }
}

INSTANTIATE_TEST_SUITE_P(Fixtures, ReferenceLogits,
                         ::testing::Combine(::testing::ValuesIn(kCases), ::testing::ValuesIn(BackendNames())),
                         [](const auto& info) {
                           return std::get<0>(info.param).name + "_" + std::get<1>(info.param);
                         });

}  // namespace
}  // namespace kiln::import
