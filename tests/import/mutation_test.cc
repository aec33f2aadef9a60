// Mutated checkpoints: the readers either refuse a damaged file with an
// error or read only inside it. Each case flips bytes of a fixture's header
// (where every length, offset and count lives), rewrites its length fields
// or truncates it, then opens it and touches every byte of every tensor it
// reports (under AddressSanitizer a read past the mapping is caught; without
// it, a read past the end of the file faults).
#include <cstring>
#include <random>
#include <string>

#include "gtest/gtest.h"
#include "import/gguf.h"
#include "import/gguf_model.h"
#include "import/safetensors.h"
#include "tests/import/import_test_util.h"

namespace kiln::import {
namespace {

using testing::FixturesDir;
using testing::ReadBytes;
using testing::TempDir;
using testing::WriteBytes;

constexpr int kCases = 300;

uint64_t Touch(const ConstantData& c) {
  uint64_t sum = 0;
  for (size_t i = 0; i < c.size; ++i) sum += static_cast<uint8_t>(c.data[i]);
  return sum;
}

// A damaged copy of `original`: some bytes of its first `header` bytes
// changed, or the file cut short.
std::string Mutate(const std::string& original, size_t header, std::mt19937_64& rng) {
  std::string s = original;
  switch (rng() % 4) {
    case 0:  // a few random bytes
      for (int i = 0, n = 1 + rng() % 4; i < n; ++i) s[rng() % header] = static_cast<char>(rng());
      break;
    case 1:  // one byte off by one (a length, a digit, an offset)
      s[rng() % header] += (rng() % 2) ? 1 : -1;
      break;
    case 2:  // a random 64-bit value at a random place
      if (header >= 8) {
        const uint64_t v = rng() >> (rng() % 64);
        std::memcpy(s.data() + rng() % (header - 7), &v, 8);
      }
      break;
    default:  // truncated
      s.resize(rng() % s.size());
      break;
  }
  return s;
}

TEST(Mutation, SafetensorsReadsOnlyInsideTheFile) {
  const std::string original = ReadBytes(FixturesDir() + "/qwen3/model-00002-of-00002.safetensors");
  ASSERT_GT(original.size(), 8u);
  uint64_t n;
  std::memcpy(&n, original.data(), 8);
  ASSERT_LT(n, original.size());
  std::mt19937_64 rng(7);
  TempDir dir;
  int opened = 0;
  for (int i = 0; i < kCases; ++i) {
    const std::string path = dir.File("m.safetensors");
    WriteBytes(path, Mutate(original, 8 + n, rng));
    auto f = SafetensorsFile::Open(path);
    if (!f.ok()) {
      EXPECT_FALSE(f.status().message().empty());
      continue;
    }
    ++opened;
    for (const SafetensorsTensor& t : (*f)->tensors()) {
      (void)(*f)->KilnDType(t);
      Touch(*(*f)->Data(t));
    }
  }
  // Some mutations leave a valid file (a changed byte in a name or a dim
  // that keeps the sizes); most must not.
  EXPECT_LT(opened, kCases);
}

TEST(Mutation, GgufReadsOnlyInsideTheFile) {
  const std::string original = ReadBytes(FixturesDir() + "/llama/llama-q8_0.gguf");
  auto clean = GgufFile::Open(FixturesDir() + "/llama/llama-q8_0.gguf");
  ASSERT_TRUE(clean.ok()) << clean.status();
  uint64_t data_start = original.size();
  for (const GgufTensor& t : (*clean)->tensors()) data_start = std::min(data_start, t.offset);
  std::mt19937_64 rng(11);
  TempDir dir;
  int opened = 0;
  for (int i = 0; i < kCases; ++i) {
    const std::string path = dir.File("m.gguf");
    WriteBytes(path, Mutate(original, data_start, rng));
    auto f = GgufFile::Open(path);
    if (!f.ok()) {
      EXPECT_FALSE(f.status().message().empty());
      continue;
    }
    ++opened;
    (void)ModelConfigFromGguf(**f);
    for (const GgufTensor& t : (*f)->tensors()) Touch(*(*f)->Data(t));
  }
  EXPECT_LT(opened, kCases);
}

}  // namespace
}  // namespace kiln::import
