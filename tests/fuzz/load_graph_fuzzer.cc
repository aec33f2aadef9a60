// libFuzzer target: arbitrary bytes as a graph file. Loading must give an
// error or a graph that passes validation; the sanitizers catch any crash,
// overflow or out-of-bounds read on the way.
//
//   load_graph_fuzzer CORPUS_DIR -max_total_time=60
//
// External data in the inputs resolves inside a fixture folder made at start:
// it holds the seed graphs' weights files, a symlink that escapes the folder
// and a subfolder. An empty CORPUS_DIR is first filled with the seed graphs,
// so the fuzzer starts from valid files rather than from nothing.
#include <stdlib.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "google/protobuf/stubs/logging.h"
#include "graph/builder.h"
#include "graph/validate.h"
#include "proto/graph_io.h"

namespace {

namespace fs = std::filesystem;

std::string* g_folder = nullptr;

std::shared_ptr<const kiln::ConstantData> Bytes(size_t n, uint8_t seed) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<uint8_t>(seed + 3 * i);
  return kiln::ConstantData::Copy(v.data(), n);
}

// A few valid graphs covering the format's features.
std::vector<kiln::Graph> SeedGraphs() {
  using kiln::DType;
  using kiln::Tensor;
  std::vector<kiln::Graph> graphs;
  {
    kiln::GraphBuilder b("norm_residual");
    Tensor x = b.Input("x", DType::kF32, {2, 3, 8});
    Tensor w = b.Constant("w", DType::kF32, {8}, Bytes(32, 1));
    Tensor big = b.Constant("big", DType::kF16, {16, 8}, Bytes(256, 2));
    Tensor h = b.Op1("rms_norm", {x, w, Tensor{}}, {{"eps", 1e-5}});
    Tensor y = b.Op1("add", {b.Op1("scale", {h}, {{"a", 0.5}}), x});
    Tensor r = b.Op1("reshape", {b.Op1("mul", {y, y})}, {{"shape", std::vector<int64_t>{6, 8}}});
    b.Output(b.Op1("cast", {r}, {{"dtype", std::string("f16")}}));
    Tensor odd = b.View(big, {8, 8}, {32, 2}, 16);
    b.Output(b.Op1("mul", {odd, odd}));
    b.SetMetadata("input_range.x", "-1,1");
    if (auto g = b.Build(); g.ok()) graphs.push_back(*std::move(g));
  }
  {
    kiln::GraphBuilder b("state");
    Tensor cache = b.Input("cache", DType::kF32, {4, 8});
    Tensor src = b.Input("src", DType::kF32, {2, 8});
    Tensor rows = b.Constant("rows", DType::kI32, {2}, kiln::ConstantData::Copy(std::vector<int32_t>{0, 2}.data(), 8));
    Tensor next = b.Op1("write_rows", {cache, src, rows});
    b.Output(next);
    b.State(cache, next);
    Tensor q = b.Input("q", DType::kF32, {1, 2, 1, 4});
    Tensor g = b.Input("g", DType::kF32, {1, 2, 1});
    auto gdn = b.Op("gated_delta_net", {q, q, q, g, g}, {{"l2norm_qk", true}});
    for (Tensor t : gdn) b.Output(t);
    Tensor q8 = b.Constant("q8", DType::kQ8_0, {2, 32}, Bytes(68, 3));
    b.Output(q8);
    if (auto built = b.Build(); built.ok()) graphs.push_back(*std::move(built));
  }
  return graphs;
}

// Saves the seeds into the fixture folder (inline and with external
// weights) and returns the graph files' bytes.
std::vector<std::string> MakeFixture(const std::string& folder) {
  std::vector<std::string> seeds;
  std::vector<kiln::Graph> graphs = SeedGraphs();
  for (size_t i = 0; i < graphs.size(); ++i) {
    for (bool external : {false, true}) {
      kiln::SaveOptions options;
      options.external_weights = external;
      options.external_min_bytes = 64;
      const std::string path = folder + "/seed" + std::to_string(i) + (external ? "x" : "") + ".kgraph";
      if (!kiln::SaveGraph(graphs[i], path, options).ok()) continue;
      std::ifstream in(path, std::ios::binary);
      seeds.emplace_back(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    }
  }
  std::error_code ec;
  fs::create_symlink("/etc/passwd", folder + "/escape", ec);
  fs::create_directory(folder + "/sub", ec);
  return seeds;
}

void RemoveFixture() {
  std::error_code ec;
  if (g_folder) fs::remove_all(*g_folder, ec);
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int* argc, char*** argv) {
  // Mutants often hold invalid UTF-8, which protobuf logs: keep quiet.
  static auto* quiet = new google::protobuf::LogSilencer();
  (void)quiet;
  std::string tmpl = (fs::temp_directory_path() / "kiln_fuzz_XXXXXX").string();
  if (::mkdtemp(tmpl.data()) == nullptr) std::abort();
  g_folder = new std::string(tmpl);
  std::atexit(RemoveFixture);
  const std::vector<std::string> seeds = MakeFixture(*g_folder);
  // Seed the first corpus folder named on the command line, if it is empty.
  for (int i = 1; i < *argc; ++i) {
    const std::string arg = (*argv)[i];
    if (arg.empty() || arg[0] == '-') continue;
    std::error_code ec;
    if (fs::is_directory(arg, ec) && fs::is_empty(arg, ec)) {
      for (size_t s = 0; s < seeds.size(); ++s) {
        std::ofstream(arg + "/seed" + std::to_string(s), std::ios::binary) << seeds[s];
      }
    }
    break;
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto graph = kiln::ParseGraph(absl::string_view(reinterpret_cast<const char*>(data), size), *g_folder);
  if (!graph.ok()) return 0;
  // A loaded graph is valid, and its constants are readable to the last byte.
  if (!kiln::ValidateGraph(*graph).ok()) __builtin_trap();
  uint64_t sum = 0;
  for (const kiln::TensorInfo& t : graph->tensors) {
    if (!t.constant) continue;
    for (size_t i = 0; i < t.constant->size; ++i) sum += static_cast<uint8_t>(t.constant->data[i]);
  }
  volatile uint64_t sink = sum;
  (void)sink;
  return 0;
}
