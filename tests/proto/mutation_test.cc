// Random corruption of valid graph files: every mutant must load as an error
// or as a graph that passes validation, and never crash or read out of
// bounds (run under -DKILN_SANITIZE=ON to check the latter).
#include <cstdint>
#include <random>
#include <string>

#include "google/protobuf/stubs/logging.h"
#include "graph/validate.h"
#include "gtest/gtest.h"
#include "proto/graph_io.h"
#include "tests/proto/proto_test_util.h"

namespace kiln {
namespace {

using ::kiln::testing::ReadBytes;
using ::kiln::testing::TempDir;

// Applies 1..4 random edits: bit flips, byte overwrites with boundary values,
// inserted or deleted bytes, and truncation.
std::string Mutate(std::string bytes, std::mt19937_64& rng) {
  static const uint8_t kInteresting[] = {0x00, 0x01, 0x7f, 0x80, 0xff, 0xfe, 0x40, 0x3f};
  const int edits = 1 + static_cast<int>(rng() % 4);
  for (int e = 0; e < edits && !bytes.empty(); ++e) {
    const size_t at = rng() % bytes.size();
    switch (rng() % 6) {
      case 0: bytes[at] ^= static_cast<char>(1u << (rng() % 8)); break;
      case 1: bytes[at] = static_cast<char>(rng()); break;
      case 2: bytes[at] = static_cast<char>(kInteresting[rng() % sizeof(kInteresting)]); break;
      case 3: bytes.insert(bytes.begin() + at, static_cast<char>(rng())); break;
      case 4: bytes.erase(bytes.begin() + at); break;
      case 5: if (rng() % 4 == 0) bytes.resize(at); break;
    }
  }
  return bytes;
}

// Reads every byte of every constant, so ASan sees any out-of-bounds span.
uint64_t TouchConstants(const Graph& g) {
  uint64_t sum = 0;
  for (const TensorInfo& t : g.tensors) {
    if (!t.constant) continue;
    for (size_t i = 0; i < t.constant->size; ++i) sum += static_cast<uint8_t>(t.constant->data[i]);
  }
  return sum;
}

void MutateMany(const std::string& valid, const std::string& folder, uint64_t seed, int rounds) {
  google::protobuf::LogSilencer quiet;  // mutants often hold invalid UTF-8 strings
  std::mt19937_64 rng(seed);
  int loaded = 0;
  for (int i = 0; i < rounds; ++i) {
    const std::string mutant = Mutate(valid, rng);
    auto graph = ParseGraph(mutant, folder);
    if (!graph.ok()) {
      EXPECT_FALSE(graph.status().message().empty());
      continue;
    }
    ++loaded;
    TouchConstants(*graph);
    EXPECT_TRUE(ValidateGraph(*graph).ok()) << "mutant " << i << " loaded but is invalid";
  }
  // Some mutants (in names, metadata, constant bytes) stay valid: the test
  // exercised both outcomes.
  EXPECT_GT(loaded, 0);
  EXPECT_LT(loaded, rounds);
}

TEST(GraphMutation, InlineWeights) {
  TempDir dir;
  ASSERT_TRUE(SaveGraph(testing::MakeRichGraph(), dir.File("g.kgraph")).ok());
  MutateMany(ReadBytes(dir.File("g.kgraph")), dir.path(), 42, 20000);
}

TEST(GraphMutation, ExternalWeights) {
  TempDir dir;
  SaveOptions options;
  options.external_weights = true;
  options.external_min_bytes = 64;
  ASSERT_TRUE(SaveGraph(testing::MakeRichGraph(), dir.File("g.kgraph"), options).ok());
  MutateMany(ReadBytes(dir.File("g.kgraph")), dir.path(), 7, 20000);
}

}  // namespace
}  // namespace kiln
