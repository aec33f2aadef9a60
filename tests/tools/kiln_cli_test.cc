// Runs the built `kiln` binary (path from CMake: KILN_BINARY) as a user would.

#include <sys/stat.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/tools/kiln_cli_fixture.h"
#include "nlohmann/json.hpp"
#include "proto/graph_io.h"
#include "scheduler/npy.h"

namespace kiln {
namespace {

namespace fs = std::filesystem;
using testing_cli::Result;
using testing_cli::Slurp;
using ::testing::HasSubstr;
using ::testing::Not;

using KilnCliTest = testing_cli::KilnCliFixture;

TEST_F(KilnCliTest, HelpAndUsageErrors) {
  Result r = Kiln({"--help"});
  EXPECT_EQ(r.code, 0);
  EXPECT_THAT(r.out, HasSubstr("make-example"));
  for (const char* cmd : {"run", "info", "make-example"}) {
    r = Kiln({cmd, "--help"});
    EXPECT_EQ(r.code, 0) << cmd;
    EXPECT_THAT(r.out, HasSubstr(absl::StrCat("usage: kiln ", cmd))) << cmd;
  }
  ExpectOneErrorLine(Kiln({}), 2);
  ExpectOneErrorLine(Kiln({"frobnicate"}), 2);
  ExpectOneErrorLine(Kiln({"run"}), 2);
  ExpectOneErrorLine(Kiln({"run", "x.kgraph", "--iters", "many"}), 2);
  ExpectOneErrorLine(Kiln({"run", "x.kgraph", "--bogus"}), 2);
  ExpectOneErrorLine(Kiln({"make-example", "no-such-example", "-o", (dir_ / "g").string()}), 2);
  ExpectOneErrorLine(Kiln({"make-example", "attention-block-decode"}), 2);
}

TEST_F(KilnCliTest, BadGraphFilesAreRunErrors) {
  Result r = Kiln({"run", (dir_ / "missing.kgraph").string()});
  ExpectOneErrorLine(r, 1);
  EXPECT_THAT(r.err, HasSubstr("missing.kgraph"));
  std::ofstream(dir_ / "junk.kgraph") << "this is not a graph\n";
  ExpectOneErrorLine(Kiln({"run", (dir_ / "junk.kgraph").string()}), 1);
}

TEST_F(KilnCliTest, InfoListsTheCpuBackendAndTheCacheFolder) {
  Result r = Kiln({"info"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("backend cpu"));
  EXPECT_THAT(r.out, HasSubstr("pipeline cache"));
}

TEST_F(KilnCliTest, MakeExampleThenRunWritesEveryOutput) {
  const std::string graph = (dir_ / "decode.kgraph").string();
  Result r = Kiln({"make-example", "attention-block-decode", "-o", graph});
  ASSERT_EQ(r.code, 0) << r.err;
  auto g = LoadGraph(graph);
  ASSERT_TRUE(g.ok()) << g.status();

  const fs::path out = dir_ / "out";
  const fs::path json_file = dir_ / "report.json";
  r = Kiln({"run", graph, "--output-dir", out.string(), "--iters", "2", "--warmup", "1", "--threads", "1",
            "--json", json_file.string()});
  ASSERT_EQ(r.code, 0) << r.err;
  const auto report = nlohmann::json::parse(Slurp(json_file), nullptr, /*allow_exceptions=*/false);
  ASSERT_FALSE(report.is_discarded());
  EXPECT_EQ(report["time_ms"]["runs"].size(), 2u);
  EXPECT_EQ(report["nodes"].size(), g->nodes.size());
  EXPECT_EQ(report["outputs"].size(), g->outputs.size());
  EXPECT_EQ(report["memory"]["states_in_place"], 2);
  EXPECT_TRUE(r.err.empty()) << r.err;
  EXPECT_THAT(r.out, HasSubstr("p50"));
  EXPECT_THAT(r.out, HasSubstr("p90"));
  EXPECT_THAT(r.out, HasSubstr("flash_attn"));  // in the profile table
  EXPECT_THAT(r.out, HasSubstr("pipelines"));
  for (int id : g->outputs) {
    const TensorInfo& t = g->tensors[id];
    auto npy = ReadNpy((out / (t.name + ".npy")).string());
    ASSERT_TRUE(npy.ok()) << npy.status();
    EXPECT_EQ(npy->dims, t.dims) << t.name;
  }

  // The same seed gives the same outputs; the outputs can be fed back in.
  const fs::path out2 = dir_ / "out2";
  const TensorInfo& x = g->tensors[g->FindTensor("x")];
  const std::string x_file = (dir_ / "x.npy").string();
  ASSERT_TRUE(WriteNpy(x_file, HostTensor::Zeros(x.dtype, x.dims)).ok());
  for (const fs::path& o : {out, out2}) {
    // The second without node timings: the same outputs, no per-op table.
    std::vector<std::string> args = {"run", graph, "--output-dir", o.string(), "--iters", "1", "--seed", "5",
                                     "--input", absl::StrCat("x=", x_file)};
    if (o == out2) args.push_back("--no-profile");
    r = Kiln(args);
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_THAT(r.out, HasSubstr("p50"));
    if (o == out2) {
      EXPECT_THAT(r.out, Not(HasSubstr("% of run")));
    }
  }
  for (int id : g->outputs) {
    const std::string name = g->tensors[id].name + ".npy";
    EXPECT_TRUE(Slurp(out / name) == Slurp(out2 / name)) << name << " differs";
  }
}

TEST_F(KilnCliTest, BadInputsAreErrors) {
  const std::string graph = (dir_ / "decode.kgraph").string();
  ASSERT_EQ(Kiln({"make-example", "attention-block-decode", "-o", graph}).code, 0);
  Result r = Kiln({"run", graph, "--input", "nosuch=zeros"});
  ExpectOneErrorLine(r, 2);
  EXPECT_THAT(r.err, HasSubstr("nosuch"));
  ExpectOneErrorLine(Kiln({"run", graph, "--input", "x"}), 2);
  // A file of the wrong shape, and one that is not .npy.
  const std::string bad = (dir_ / "bad.npy").string();
  ASSERT_TRUE(WriteNpy(bad, HostTensor::Zeros(DType::kF32, {3})).ok());
  r = Kiln({"run", graph, "--input", absl::StrCat("x=", bad)});
  ExpectOneErrorLine(r, 1);
  EXPECT_THAT(r.err, HasSubstr("'x'"));
  std::ofstream(dir_ / "junk.npy") << "junk";
  ExpectOneErrorLine(Kiln({"run", graph, "--input", absl::StrCat("x=", (dir_ / "junk.npy").string())}), 1);
  ExpectOneErrorLine(Kiln({"run", graph, "--backend", "nosuchbackend"}), 1);
  // Over the cap on made-up inputs (the KV caches alone are 16 MiB).
  r = Kiln({"run", graph, "--max-generated-bytes", "1000000"});
  ExpectOneErrorLine(r, 1);
  EXPECT_THAT(r.err, HasSubstr("--max-generated-bytes"));
  // A FIFO: an error at once, not a wait for a writer.
  const fs::path fifo = dir_ / "fifo.npy";
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  r = Kiln({"run", graph, "--input", absl::StrCat("x=", fifo.string())});
  ExpectOneErrorLine(r, 1);
  EXPECT_THAT(r.err, HasSubstr("not a regular file"));
}

// Inputs not given are named as random; conversions made reading a file are
// reported, one line each.
TEST_F(KilnCliTest, RunSaysWhichInputsAreRandomAndWhatWasConverted) {
  const std::string graph = (dir_ / "decode.kgraph").string();
  ASSERT_EQ(Kiln({"make-example", "attention-block-decode", "-o", graph}).code, 0);
  const std::string x_file = (dir_ / "x.npy").string();
  ASSERT_TRUE(WriteNpy(x_file, HostTensor::Zeros(DType::kF16, {1, 1, 1024})).ok());
  Result r = Kiln({"run", graph, "--iters", "1", "--warmup", "0", "--threads", "1", "--input",
                   absl::StrCat("x=", x_file), "--input", "pos=zeros"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("random values (no --input given) for 'mask', "));
  EXPECT_THAT(r.out, ::testing::Not(HasSubstr("for 'x'")));
  EXPECT_THAT(r.out, HasSubstr("converted 'x' float16 read as f32"));
}

}  // namespace
}  // namespace kiln
