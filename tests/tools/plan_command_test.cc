// `kiln plan` and the scheduler flags of `kiln run` (--strict, --profile),
// through the built binary (path from CMake: KILN_BINARY).

#include <cstdlib>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "graph/builder.h"
#include "gtest/gtest.h"
#include "tests/tools/kiln_cli_fixture.h"
#include "nlohmann/json.hpp"
#include "proto/graph_io.h"

namespace kiln {
namespace {

namespace fs = std::filesystem;
using testing_cli::Result;
using testing_cli::Slurp;
using ::testing::HasSubstr;

nlohmann::json ParseJson(const fs::path& p) {
  return nlohmann::json::parse(Slurp(p), nullptr, /*allow_exceptions=*/false);
}

class PlanCommandTest : public testing_cli::KilnCliFixture {
 protected:
  std::string Example(const std::string& name) {
    const std::string path = (dir_ / (name + ".kgraph")).string();
    EXPECT_EQ(Kiln({"make-example", name, "-o", path}).code, 0);
    return path;
  }
};

TEST_F(PlanCommandTest, PrintsAndWritesWhereEachNodeRuns) {
  const std::string graph = Example("hybrid-block-decode");
  auto g = LoadGraph(graph);
  ASSERT_TRUE(g.ok()) << g.status();
  const fs::path json_file = dir_ / "plan.json";
  Result r = Kiln({"plan", graph, "--backend", "cpu", "--json", json_file.string()});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(r.err.empty()) << r.err;
  EXPECT_THAT(r.out, HasSubstr("1 splits, 0 transfers per run"));
  EXPECT_THAT(r.out, HasSubstr("gated_delta_net"));
  EXPECT_THAT(r.out, HasSubstr("first choice"));
  EXPECT_THAT(r.out, HasSubstr("arena peak"));

  const auto plan = ParseJson(json_file);
  ASSERT_FALSE(plan.is_discarded());
  ASSERT_EQ(plan["nodes"].size(), g->nodes.size());
  for (size_t i = 0; i < g->nodes.size(); ++i) {
    EXPECT_EQ(plan["nodes"][i]["name"], g->nodes[i].name);
    EXPECT_EQ(plan["nodes"][i]["backend"], "cpu");
    EXPECT_EQ(plan["nodes"][i]["reason"], "first choice");
  }
  ASSERT_EQ(plan["splits"].size(), 1u);
  EXPECT_EQ(plan["splits"][0]["nodes"].size(), g->nodes.size());
  EXPECT_EQ(plan["transfers"]["count"], 0);
  EXPECT_EQ(plan["transfers"]["bytes_per_run"], 0);
  ASSERT_EQ(plan["backends"].size(), 1u);
  const auto& cpu = plan["backends"][0];
  EXPECT_EQ(cpu["name"], "cpu");
  EXPECT_GT(cpu["arena_peak_bytes"].get<int64_t>(), 0);
  EXPECT_LE(cpu["arena_peak_bytes"].get<int64_t>(), cpu["arena_naive_bytes"].get<int64_t>());
  EXPECT_GT(cpu["state_bytes"].get<int64_t>(), 0);
  EXPECT_GT(cpu["constant_bytes"].get<int64_t>(), 0);
  EXPECT_EQ(cpu["peak_bytes"].get<int64_t>(),
            cpu["arena_peak_bytes"].get<int64_t>() + cpu["input_bytes"].get<int64_t>() +
                cpu["state_bytes"].get<int64_t>() + cpu["constant_bytes"].get<int64_t>());
}

TEST_F(PlanCommandTest, UsageAndRunErrors) {
  Result r = Kiln({"plan", "--help"});
  EXPECT_EQ(r.code, 0);
  EXPECT_THAT(r.out, HasSubstr("usage: kiln plan"));
  EXPECT_THAT(Kiln({"--help"}).out, HasSubstr("plan"));
  ExpectOneErrorLine(Kiln({"plan"}), 2);
  ExpectOneErrorLine(Kiln({"plan", "a.kgraph", "b.kgraph"}), 2);
  ExpectOneErrorLine(Kiln({"plan", "a.kgraph", "--bogus"}), 2);
  r = Kiln({"plan", (dir_ / "missing.kgraph").string()});
  ExpectOneErrorLine(r, 1);
  EXPECT_THAT(r.err, HasSubstr("missing.kgraph"));
  ExpectOneErrorLine(Kiln({"plan", Example("attention-block-decode"), "--backend", "nosuchbackend"}), 1);
}

// A view at a byte offset that splits its floats: the CPU backend declines
// the node reading it, with a reason.
std::string MisalignedGraph(const fs::path& dir) {
  GraphBuilder b("misaligned");
  Tensor x = b.Input("x", DType::kF32, {8});
  Tensor v = b.View(x, {3}, {4}, 2, "x_odd");
  b.Output(b.Op1("neg", {v}, {}, "y"));
  auto g = b.Build();
  EXPECT_TRUE(g.ok()) << g.status();
  const std::string path = (dir / "misaligned.kgraph").string();
  EXPECT_TRUE(g.ok() && SaveGraph(*g, path).ok());
  return path;
}

TEST_F(PlanCommandTest, StrictModeNamesTheNodesAndReasons) {
  const std::string graph = MisalignedGraph(dir_);
  for (const char* cmd : {"plan", "run"}) {
    Result r = Kiln({cmd, graph, "--backend", "cpu", "--strict"});
    ExpectOneErrorLine(r, 1);
    EXPECT_THAT(r.err, HasSubstr("strict mode: 1 node would not run on cpu: node 'y' (neg)")) << cmd;
    EXPECT_THAT(r.err, HasSubstr("not a multiple of its 4-byte element")) << cmd;
    // Without --strict, the same node still has no backend.
    r = Kiln({cmd, graph, "--backend", "cpu"});
    ExpectOneErrorLine(r, 1);
    EXPECT_THAT(r.err, HasSubstr("no backend runs 1 node: node 'y' (neg)")) << cmd;
  }
  // A graph the first backend runs whole passes.
  EXPECT_EQ(Kiln({"plan", Example("attention-block-decode"), "--strict"}).code, 0);
}

TEST_F(PlanCommandTest, RunWritesAChromeTrace) {
  const std::string graph = Example("attention-block-decode");
  auto g = LoadGraph(graph);
  ASSERT_TRUE(g.ok()) << g.status();
  const fs::path trace_file = dir_ / "trace.json";
  Result r = Kiln({"run", graph, "--iters", "3", "--warmup", "1", "--threads", "1", "--profile",
                   trace_file.string()});
  ASSERT_EQ(r.code, 0) << r.err;
  const auto trace = ParseJson(trace_file);
  ASSERT_FALSE(trace.is_discarded());
  std::map<std::string, int> by_category;
  std::map<std::string, std::string> track_names;
  for (const auto& e : trace["traceEvents"]) {
    if (e["ph"] == "M" && e["name"] == "thread_name") {
      track_names[std::to_string(e["tid"].get<int>())] = e["args"]["name"];
    }
    if (e["ph"] != "X") continue;
    ++by_category[e["cat"].get<std::string>()];
    EXPECT_GE(e["dur"].get<double>(), 0);
  }
  // The timed runs only; one prepare (compile) event for the one split.
  EXPECT_EQ(by_category["split"], 3);
  EXPECT_EQ(by_category["node"], 3 * static_cast<int>(g->nodes.size()));
  EXPECT_EQ(by_category["compile"], 1);
  EXPECT_EQ(track_names["1"], "cpu");
  EXPECT_FALSE(fs::exists(trace_file.string() + ".tmp"));
}

}  // namespace
}  // namespace kiln
