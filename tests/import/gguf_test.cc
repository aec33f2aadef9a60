// The GGUF reader on the gguf package's files (tests/models/fixtures) and
// on hostile ones built here byte by byte: bad magic and versions, counts
// and lengths past the file or the caps, bad alignment, tensors out of
// bounds, misaligned or overlapping, unsupported tensor types.
#include "import/gguf.h"

#include <cstring>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "import/gguf_model.h"
#include "tests/import/import_test_util.h"

namespace kiln::import {
namespace {

using testing::FixturesDir;
using testing::TempDir;
using testing::WriteBytes;
using ::testing::HasSubstr;

// Little-endian GGUF bytes, written field by field.
class Bytes {
 public:
  template <typename T>
  Bytes& Put(T v) {
    s_.append(reinterpret_cast<const char*>(&v), sizeof v);
    return *this;
  }
  Bytes& Str(const std::string& v) {
    Put<uint64_t>(v.size());
    s_ += v;
    return *this;
  }
  Bytes& Raw(const std::string& v) {
    s_ += v;
    return *this;
  }
  Bytes& PadTo(size_t alignment) {
    s_.resize((s_.size() + alignment - 1) / alignment * alignment, '\0');
    return *this;
  }
  const std::string& str() const { return s_; }

 private:
  std::string s_;
};

Bytes Header(uint64_t tensors, uint64_t kvs, uint32_t version = 3) {
  Bytes b;
  b.Raw("GGUF").Put<uint32_t>(version).Put<uint64_t>(tensors).Put<uint64_t>(kvs);
  return b;
}

// One tensor info: name, dims (innermost first), type, offset.
void TensorInfo(Bytes& b, const std::string& name, std::vector<uint64_t> ne, uint32_t type, uint64_t offset) {
  b.Str(name).Put<uint32_t>(ne.size());
  for (uint64_t n : ne) b.Put<uint64_t>(n);
  b.Put<uint32_t>(type).Put<uint64_t>(offset);
}

std::string OpenError(const std::string& bytes, const GgufLimits& limits = {}) {
  TempDir dir;
  WriteBytes(dir.File("m.gguf"), bytes);
  auto f = GgufFile::Open(dir.File("m.gguf"), limits);
  return f.ok() ? "" : std::string(f.status().message());
}

TEST(Gguf, ReadsTheGgufPackagesFiles) {
  for (const char* variant : {"f32", "f16", "q8_0"}) {
    SCOPED_TRACE(variant);
    auto f = GgufFile::Open(FixturesDir() + "/llama/llama-" + variant + ".gguf");
    ASSERT_TRUE(f.ok()) << f.status();
    EXPECT_EQ((*f)->version(), 3u);
    EXPECT_EQ(**(*f)->GetString("general.architecture"), "llama");
    EXPECT_EQ(**(*f)->GetInt("llama.embedding_length"), 64);
    const GgufTensor* q = (*f)->Find("blk.0.attn_q.weight");
    ASSERT_NE(q, nullptr);
    EXPECT_EQ(q->dims, (std::vector<int64_t>{128, 64}));  // outermost first, as Hugging Face's
    const DType expected = std::string(variant) == "f32"   ? DType::kF32
                           : std::string(variant) == "f16" ? DType::kF16
                                                           : DType::kQ8_0;
    EXPECT_EQ(q->dtype, expected);
    EXPECT_EQ(q->size, static_cast<uint64_t>(ContiguousBytes(expected, q->dims)));
    EXPECT_EQ((*f)->Find("blk.0.attn_norm.weight")->dtype, DType::kF32);
    EXPECT_EQ(q->offset % (*f)->alignment(), 0u);
    auto config = ModelConfigFromGguf(**f);
    ASSERT_TRUE(config.ok()) << config.status();
    EXPECT_EQ(config->num_layers, 2);
    EXPECT_EQ(config->num_kv_heads, 2);
    EXPECT_EQ(config->head_dim, 32);
    EXPECT_EQ(config->vocab_size, 256);
    EXPECT_TRUE(config->rope_interleaved);
    EXPECT_FALSE(config->tie_embeddings);
  }
}

TEST(Gguf, ReadsMetadataAndATensor) {
  Bytes b = Header(1, 3);
  b.Str("general.architecture").Put<uint32_t>(8).Str("llama");
  b.Str("general.alignment").Put<uint32_t>(4).Put<uint32_t>(64);
  b.Str("tokens").Put<uint32_t>(9).Put<uint32_t>(8).Put<uint64_t>(2).Str("a").Str("bc");
  TensorInfo(b, "w", {4, 2}, 1, 0);
  b.PadTo(64).Raw(std::string(16, '\x02'));
  TempDir dir;
  WriteBytes(dir.File("m.gguf"), b.str());
  auto f = GgufFile::Open(dir.File("m.gguf"));
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ((*f)->alignment(), 64u);
  EXPECT_EQ((*f)->metadata().at("tokens").array_count, 2u);
  const GgufTensor* w = (*f)->Find("w");
  ASSERT_NE(w, nullptr);
  EXPECT_EQ(w->dims, (std::vector<int64_t>{2, 4}));
  EXPECT_EQ(w->dtype, DType::kF16);
  EXPECT_EQ(w->offset % 64, 0u);
  EXPECT_EQ(static_cast<uint8_t>((*f)->Data(*w)->data[0]), 2);
  EXPECT_FALSE((*f)->GetInt("general.architecture").ok());  // a string, not an integer
}

TEST(Gguf, RefusesBadMagicVersionsAndTruncation) {
  EXPECT_THAT(OpenError(""), HasSubstr("does not start with"));
  EXPECT_THAT(OpenError("GGML" + std::string(20, '\0')), HasSubstr("does not start with"));
  EXPECT_THAT(OpenError(Header(0, 0, 1).str()), HasSubstr("version 1"));
  EXPECT_THAT(OpenError(Header(0, 0, 0x03000000).str()), HasSubstr("version"));  // big-endian v3
  EXPECT_THAT(OpenError(Header(0, 0).str().substr(0, 12)), HasSubstr("ends inside the header"));
  EXPECT_EQ(OpenError(Header(0, 0).str()), "");
  EXPECT_THAT(OpenError(Header(0, 1).str()), HasSubstr("metadata key #0"));
  EXPECT_THAT(OpenError(Header(1, 0).str()), HasSubstr("tensor #0"));
}

TEST(Gguf, RefusesCountsAndLengthsPastTheCaps) {
  EXPECT_THAT(OpenError(Header(uint64_t{1} << 40, 0).str()), HasSubstr("tensors, more than the cap"));
  EXPECT_THAT(OpenError(Header(0, ~uint64_t{0}).str()), HasSubstr("metadata entries, more than the cap"));
  Bytes key = Header(0, 1);
  key.Put<uint64_t>(~uint64_t{0});
  EXPECT_THAT(OpenError(key.str()), HasSubstr("more than the cap"));
  Bytes past = Header(0, 1);
  past.Put<uint64_t>(1000).Raw("abc");
  EXPECT_THAT(OpenError(past.str()), HasSubstr("ends inside metadata key #0"));
  Bytes array = Header(0, 1);
  array.Str("a").Put<uint32_t>(9).Put<uint32_t>(4).Put<uint64_t>(uint64_t{1} << 60);
  EXPECT_THAT(OpenError(array.str()), HasSubstr("more than the cap"));
  Bytes short_array = Header(0, 1);
  short_array.Str("a").Put<uint32_t>(9).Put<uint32_t>(4).Put<uint64_t>(1000).Put<uint32_t>(1);
  EXPECT_THAT(OpenError(short_array.str()), HasSubstr("ends inside metadata 'a'"));
  Bytes nested = Header(0, 1);
  nested.Str("a").Put<uint32_t>(9).Put<uint32_t>(9).Put<uint64_t>(1);
  EXPECT_THAT(OpenError(nested.str()), HasSubstr("nested arrays"));
  Bytes type = Header(0, 1);
  type.Str("a").Put<uint32_t>(13);
  EXPECT_THAT(OpenError(type.str()), HasSubstr("unknown value type 13"));
  Bytes boolean = Header(0, 1);
  boolean.Str("a").Put<uint32_t>(7).Put<uint8_t>(2);
  EXPECT_THAT(OpenError(boolean.str()), HasSubstr("bool of value 2"));
  Bytes twice = Header(0, 2);
  twice.Str("a").Put<uint32_t>(4).Put<uint32_t>(1).Str("a").Put<uint32_t>(4).Put<uint32_t>(1);
  EXPECT_THAT(OpenError(twice.str()), HasSubstr("'a' twice"));
}

TEST(Gguf, RefusesBadAlignment) {
  for (uint32_t a : {0u, 3u, 48u, 1u << 20}) {
    Bytes b = Header(0, 1);
    b.Str("general.alignment").Put<uint32_t>(4).Put<uint32_t>(a);
    EXPECT_THAT(OpenError(b.str()), HasSubstr("not a power of two")) << a;
  }
}

TEST(Gguf, RefusesBadTensorInfos) {
  auto one = [](std::vector<uint64_t> ne, uint32_t type, uint64_t offset, size_t data_bytes) {
    Bytes b = Header(1, 0);
    TensorInfo(b, "w", std::move(ne), type, offset);
    b.PadTo(32).Raw(std::string(data_bytes, '\0'));
    return OpenError(b.str());
  };
  EXPECT_EQ(one({4}, 0, 0, 16), "");
  EXPECT_THAT(one({4}, 0, 0, 12), HasSubstr("beyond the end"));
  EXPECT_THAT(one({4}, 0, 32, 16), HasSubstr("beyond the end"));
  EXPECT_THAT(one({4}, 0, ~uint64_t{0} - 31, 16), HasSubstr("beyond the end"));  // offset + size overflows
  EXPECT_THAT(one({4}, 0, 4, 16), HasSubstr("not a multiple of the alignment 32"));
  EXPECT_THAT(one({}, 0, 0, 16), HasSubstr("0 dims"));
  EXPECT_THAT(one({1, 1, 1, 1, 1}, 0, 0, 16), HasSubstr("5 dims"));
  EXPECT_THAT(one({uint64_t{1} << 41}, 0, 0, 16), HasSubstr("dim of"));
  EXPECT_THAT(one({uint64_t{1} << 40, uint64_t{1} << 40}, 0, 0, 16), HasSubstr("too many elements"));
  EXPECT_THAT(one({16}, 8, 0, 34), HasSubstr("not a multiple of 32"));
  EXPECT_EQ(one({32}, 8, 0, 34), "");
  EXPECT_EQ(one({4}, 30, 0, 8), "");  // BF16
  const std::string q4k = one({256}, 12, 0, 144);
  EXPECT_THAT(q4k, HasSubstr("tensor 'w' has type Q4_K"));
  EXPECT_THAT(q4k, HasSubstr("F32, F16, BF16 and Q8_0"));
  EXPECT_THAT(one({4}, 200, 0, 16), HasSubstr("type 200"));
}

TEST(Gguf, RefusesOverlapsAndDuplicateNames) {
  Bytes b = Header(2, 0);
  TensorInfo(b, "a", {16}, 0, 0);
  TensorInfo(b, "b", {16}, 0, 32);
  b.PadTo(32).Raw(std::string(96, '\0'));
  EXPECT_THAT(OpenError(b.str()), HasSubstr("'a' and 'b' overlap"));
  Bytes d = Header(2, 0);
  TensorInfo(d, "a", {8}, 0, 0);
  TensorInfo(d, "a", {8}, 0, 32);
  d.PadTo(32).Raw(std::string(64, '\0'));
  EXPECT_THAT(OpenError(d.str()), HasSubstr("'a' appears twice"));
}

TEST(GgufModel, MapsLlamaCppNamesToHuggingFaces) {
  EXPECT_EQ(*GgufNameFor("model.embed_tokens.weight"), "token_embd.weight");
  EXPECT_EQ(*GgufNameFor("lm_head.weight"), "output.weight");
  EXPECT_EQ(*GgufNameFor("model.layers.11.self_attn.k_norm.weight"), "blk.11.attn_k_norm.weight");
  EXPECT_EQ(*GgufNameFor("model.layers.0.mlp.down_proj.weight"), "blk.0.ffn_down.weight");
  EXPECT_FALSE(GgufNameFor("model.layers.x.mlp.down_proj.weight"));
  EXPECT_FALSE(GgufNameFor("model.layers.0.linear_attn.A_log"));
}

TEST(GgufModel, UnsupportedArchitecturesAreErrors) {
  Bytes b = Header(0, 1);
  b.Str("general.architecture").Put<uint32_t>(8).Str("qwen3next");
  TempDir dir;
  WriteBytes(dir.File("m.gguf"), b.str());
  auto f = GgufFile::Open(dir.File("m.gguf"));
  ASSERT_TRUE(f.ok()) << f.status();
  auto c = ModelConfigFromGguf(**f);
  ASSERT_FALSE(c.ok());
  EXPECT_THAT(c.status().message(), HasSubstr("'qwen3next'"));
}

}  // namespace
}  // namespace kiln::import
