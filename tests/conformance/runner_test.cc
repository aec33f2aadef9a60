// The runner catches every kind of wrong backend (values, NaN, writes outside
// the outputs or into inputs, claimed-but-failing nodes, swallowed errors),
// lists declined cases with their reason, and passes a correct one.
#include "conformance/runner.h"

#include <set>
#include <string>
#include <tuple>

#include "absl/strings/match.h"
#include "conformance/grids.h"
#include "conformance/report.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "backends/registry.h"
#include "ops/flash_attn.h"
#include "ops/gated_delta_net.h"
#include "tests/conformance/faulty_backend.h"

namespace kiln::conformance {
namespace {

using ::testing::HasSubstr;

Case AddCase() {
  return Case{.op = "add", .inputs = {In(DType::kF32, {3, 5, 33}), In(DType::kF32, {5, 1})}, .seed = 7};
}

// A small attention case with views, a tiled mask, sinks and flags.
Case FlashAttnCase() {
  InputSpec k = In(DType::kF16, {2, 70, 2, 64});
  InputSpec v = k;
  k.padded = v.padded = true;
  InputSpec q = In(DType::kF32, {2, 5, 4, 64});
  q.perm = {0, 2, 1, 3};
  return Case{.op = "flash_attn",
              .inputs = {q, k, v, In(DType::kF16, {1, 4, 5, 70}, Mask(MaskKind::kTiles, 32)),
                         In(DType::kF32, {4}, Uniform(-1, 1))},
              .attrs = {{"causal", true}, {"softcap", 2.0}},
              .seed = 11};
}

CaseResult RunWith(absl::string_view op, Fault fault, const Case& c) {
  auto backend = FaultyBackend::OnCpu(std::string(op), fault);
  EXPECT_NE(backend, nullptr);
  if (!backend) return {};
  return RunCase(*backend, c);
}

TEST(RunnerTest, CorrectBackendPasses) {
  for (const Case& c : {AddCase(), FlashAttnCase()}) {
    const CaseResult r = RunWith("none", Fault::kNone, c);
    EXPECT_EQ(r.verdict, Verdict::kPassed) << c.Describe() << ": " << r.error;
    EXPECT_GE(r.nmse, 0);
    EXPECT_LE(r.nmse, r.tolerance);
    EXPECT_GE(r.compile_ms, 0);
    EXPECT_GT(r.run_ms, 0);
  }
}

// Buffers start with garbage: the runner fills or uploads every byte it
// relies on.
TEST(RunnerTest, DoesNotAssumeZeroedBuffers) {
  const Case write{.op = "write_rows",
                   .inputs = {In(DType::kF16, {2, 10, 32}), In(DType::kF16, {2, 3, 32}),
                              In(DType::kI32, {3}, DistinctInts(0, 9))},
                   .inplace = {{0, 0}},
                   .seed = 5};
  for (const Case& c : {AddCase(), FlashAttnCase(), write}) {
    const CaseResult r = RunWith("none", Fault::kDirtyAllocate, c);
    EXPECT_EQ(r.verdict, Verdict::kPassed) << c.Describe() << ": " << r.error;
  }
}

// The front guard is a multiple of the backend's buffer alignment (at least
// kGuardFront), so every tensor the runner binds starts aligned.
TEST(RunnerTest, GuardFollowsTheBufferAlignment) {
  auto spy = FaultyBackend::OnCpu("none", Fault::kNone);
  ASSERT_NE(spy, nullptr);
  EXPECT_EQ(GuardFront(*spy), kGuardFront);
  spy->set_alignment(1024);
  EXPECT_EQ(GuardFront(*spy), 1024u);
  const CaseResult r = RunCase(*spy, AddCase());
  EXPECT_EQ(r.verdict, Verdict::kPassed) << r.error;
  for (const Binding& b : spy->last_bindings().tensors) {
    if (b.buffer) {
      EXPECT_EQ(b.offset, 1024u);
    }
  }
  spy->set_alignment(48);  // not a power of two: rounded up from 256
  EXPECT_EQ(GuardFront(*spy), 288u);
}

struct FaultCase {
  std::string name;
  Fault fault;
  std::string expected_error;
};

class FaultTest : public ::testing::TestWithParam<FaultCase> {};

TEST_P(FaultTest, IsAFailure) {
  for (const Case& c : {AddCase(), FlashAttnCase()}) {
    const CaseResult r = RunWith(c.op, GetParam().fault, c);
    EXPECT_EQ(r.verdict, Verdict::kFailed) << c.Describe();
    EXPECT_THAT(r.error, HasSubstr(GetParam().expected_error)) << c.Describe();
  }
}

INSTANTIATE_TEST_SUITE_P(
    Faults, FaultTest,
    ::testing::Values(FaultCase{"Perturb", Fault::kPerturb, "NMSE"}, FaultCase{"NaN", Fault::kNaN, "NaN at [0,0,0"},
                      FaultCase{"Overrun", Fault::kOverrun, "wrote past the end of output '"},
                      FaultCase{"Underrun", Fault::kUnderrun, "wrote before the start of output '"},
                      FaultCase{"WriteInput", Fault::kWriteInput, "modified input"},
                      FaultCase{"ClaimThenFail", Fault::kClaimThenFail, "Execute: INTERNAL: the kernel is missing"},
                      FaultCase{"SecondRunDiffers", Fault::kSecondRunDiffers, "run 2: output '"},
                      FaultCase{"SkipSecondRun", Fault::kSkipSecondRun, "run 2: output '"},
                      FaultCase{"NoTimings", Fault::kNoTimings, "ReadTimings gave 0 entries for a split of 1 node"},
                      FaultCase{"NegativeTimings", Fault::kNegativeTimings, "duration -1 us"}),
    [](const auto& info) { return info.param.name; });

TEST(RunnerTest, DeclinedCaseKeepsTheReason) {
  const CaseResult r = RunWith("add", Fault::kDecline, AddCase());
  EXPECT_EQ(r.verdict, Verdict::kDeclined);
  EXPECT_EQ(r.reason, "declined on purpose by the test");
  EXPECT_TRUE(r.error.empty());
}

Case BadGatherCase() {
  return Case{.op = "gather",
              .inputs = {In(DType::kF32, {10, 32}), In(DType::kI32, {6}, OneBadInt(0, 9))},
              .expect_error = true,
              .seed = 3};
}

TEST(RunnerTest, ExpectedErrorMustBeReported) {
  auto plain = FaultyBackend::OnCpu("none", Fault::kNone);
  ASSERT_NE(plain, nullptr);
  const CaseResult ok = RunCase(*plain, BadGatherCase());
  EXPECT_EQ(ok.verdict, Verdict::kPassed) << ok.error;

  const CaseResult swallowed = RunWith("gather", Fault::kSwallowErrors, BadGatherCase());
  EXPECT_EQ(swallowed.verdict, Verdict::kFailed);
  EXPECT_THAT(swallowed.error, HasSubstr("expected a run-time error"));

  const CaseResult anonymous = RunWith("gather", Fault::kAnonymousError, BadGatherCase());
  EXPECT_EQ(anonymous.verdict, Verdict::kFailed);
  EXPECT_THAT(anonymous.error, HasSubstr("does not name the node"));
}

TEST(RunnerTest, InvalidCaseIsAFailureNotACrash) {
  Case c = AddCase();
  c.inputs[1].dims = {4, 7};  // does not broadcast
  auto plain = FaultyBackend::OnCpu("none", Fault::kNone);
  ASSERT_NE(plain, nullptr);
  const CaseResult r = RunCase(*plain, c);
  EXPECT_EQ(r.verdict, Verdict::kFailed);
  EXPECT_THAT(r.error, HasSubstr("invalid case"));
}

TEST(RunnerTest, InPlaceOutputSharesTheInputsMemory) {
  const Case c{.op = "write_rows",
               .inputs = {In(DType::kF16, {2, 10, 32}), In(DType::kF16, {2, 3, 32}),
                          In(DType::kI32, {3}, DistinctInts(0, 9))},
               .inplace = {{0, 0}},
               .seed = 5};
  auto spy = FaultyBackend::OnCpu("none", Fault::kNone);
  ASSERT_NE(spy, nullptr);
  const CaseResult r = RunCase(*spy, c);
  EXPECT_EQ(r.verdict, Verdict::kPassed) << r.error;
  auto inst = Instantiate(c);
  ASSERT_TRUE(inst.ok());
  const Node& node = inst->graph.nodes[0];
  const Binding& dst = spy->last_bindings().tensors[node.inputs[0]];
  const Binding& out = spy->last_bindings().tensors[node.outputs[0]];
  EXPECT_NE(dst.buffer, nullptr);
  EXPECT_EQ(dst.buffer, out.buffer);
  EXPECT_EQ(dst.offset, out.offset);
  EXPECT_EQ(dst.offset, GuardFront(*spy));
}

TEST(RunnerTest, InPlaceNeedsAnAllowedPair) {
  Case c{.op = "add", .inputs = {In(DType::kF32, {4}), In(DType::kF32, {4})}, .inplace = {{0, 0}}};
  auto inst = Instantiate(c);
  EXPECT_FALSE(inst.ok());
  EXPECT_THAT(std::string(inst.status().message()), HasSubstr("does not allow input 0 -> output 0 in place"));
}

TEST(RunnerTest, InstanceLaysOutViews) {
  const Case c = FlashAttnCase();
  auto inst = Instantiate(c);
  ASSERT_TRUE(inst.ok()) << inst.status();
  const Graph& g = inst->graph;
  const Node& node = g.nodes[0];
  const TensorInfo& q = g.tensors[node.inputs[kFlashAttnQ]];
  const TensorInfo& k = g.tensors[node.inputs[kFlashAttnK]];
  ASSERT_TRUE(q.is_view());
  // q [2,5,4,64] stored head-major [2,4,5,64]: the head stride is one row.
  EXPECT_EQ(q.strides[2], 5 * 64 * 4);
  EXPECT_EQ(q.strides[1], 64 * 4);
  ASSERT_TRUE(k.is_view());
  EXPECT_GT(k.offset, 0);
  EXPECT_EQ(k.strides[2], (64 + 3) * 2);  // padded rows
  // Padding reads as NaN.
  const auto& base = inst->host[k.view_of];
  EXPECT_EQ(base[0], std::byte{0xff});
}

TEST(RunnerTest, SuiteAndReport) {
  auto declining = FaultyBackend::OnCpu("gather", Fault::kDecline);
  auto perturbing = FaultyBackend::OnCpu("add", Fault::kPerturb);
  ASSERT_TRUE(declining && perturbing);
  const std::vector<Case> cases = {AddCase(), BadGatherCase()};
  Report report;
  report.grid = "test";
  report.cases = cases;
  report.backends = {declining->device(), perturbing->device()};
  report.backends[0].backend = "declining";
  report.backends[1].backend = "perturbing";
  report.results = RunSuite(cases, {declining.get(), perturbing.get()}, {.threads = 2});
  ASSERT_EQ(report.results.size(), 2u);
  EXPECT_EQ(report.results[1][0].verdict, Verdict::kDeclined);
  EXPECT_EQ(report.results[0][0].verdict, Verdict::kPassed) << report.results[0][0].error;
  EXPECT_EQ(report.results[0][1].verdict, Verdict::kFailed);
  EXPECT_TRUE(AnyFailed(report));

  const std::string table = SummaryTable(report);
  EXPECT_THAT(table, HasSubstr("compile ms"));
  EXPECT_THAT(table, HasSubstr("run ms"));
  EXPECT_THAT(table, HasSubstr("declining"));
  EXPECT_THAT(table, HasSubstr("perturbing"));
  EXPECT_THAT(table, HasSubstr("add"));
  EXPECT_THAT(table, HasSubstr("gather"));
  EXPECT_THAT(FailureList(report), HasSubstr("FAILED perturbing  add("));
  EXPECT_THAT(DeclinedList(report), HasSubstr("declined declining  gather (1 case): declined on purpose by the test"));

  const nlohmann::json j = ReportJson(report);
  ASSERT_EQ(j["cases"].size(), 4u);  // every case on every backend
  bool saw_reason = false, saw_error = false;
  for (const auto& e : j["cases"]) {
    EXPECT_TRUE(e.contains("compile_ms") && e.contains("run_ms")) << e.dump();
    if (e["result"] == "declined") saw_reason |= e["reason"] == "declined on purpose by the test";
    if (e["result"] == "failed") saw_error |= absl::StrContains(e["error"].get<std::string>(), "NMSE");
  }
  EXPECT_TRUE(saw_reason);
  EXPECT_TRUE(saw_error);
}

std::vector<Case> ChainCases() { return MakeGrid(GridSize::kQuick, kChainOp); }

TEST(ChainTest, QuickChainsCoverTheLayers) {
  std::set<std::string> groups;
  for (const Case& c : ChainCases()) {
    EXPECT_TRUE(c.is_chain());
    EXPECT_EQ(c.op, "chain");
    groups.insert(c.group);
  }
  EXPECT_EQ(groups, (std::set<std::string>{"chain.mlp", "chain.rope_attn", "chain.conv_gdn", "chain.kv_attn"}));
}

TEST(ChainTest, PassOnTheCpu) {
  auto cpu = CreateBackend("cpu");
  ASSERT_TRUE(cpu.ok()) << cpu.status();
  auto dirty = FaultyBackend::OnCpu("none", Fault::kDirtyAllocate);
  ASSERT_NE(dirty, nullptr);
  for (const Case& c : ChainCases()) {
    for (Backend* b : {static_cast<Backend*>(cpu->get()), static_cast<Backend*>(dirty.get())}) {
      const CaseResult r = RunCase(*b, c);
      EXPECT_EQ(r.verdict, Verdict::kPassed) << c.Describe() << ": " << r.error;
      EXPECT_GE(r.nmse, 0);
    }
  }
}

// The mlp chain's intermediates share one arena: silu's output reuses the
// bytes of rms_norm's output, dead once the first linear has read it.
TEST(ChainTest, IntermediatesReuseDeadBytesInOneArena) {
  auto spy = FaultyBackend::OnCpu("none", Fault::kNone);
  ASSERT_NE(spy, nullptr);
  const Case* mlp = nullptr;
  const std::vector<Case> cases = ChainCases();
  for (const Case& c : cases) {
    if (c.group == "chain.mlp") mlp = &c;
  }
  ASSERT_NE(mlp, nullptr);
  const CaseResult r = RunCase(*spy, *mlp);
  ASSERT_EQ(r.verdict, Verdict::kPassed) << r.error;
  auto inst = Instantiate(*mlp);
  ASSERT_TRUE(inst.ok());
  const Graph& g = inst->graph;
  ASSERT_EQ(g.nodes.size(), 5u);
  const Bindings& b = spy->last_bindings();
  const Binding norm = b.tensors[g.nodes[0].outputs[0]], up = b.tensors[g.nodes[1].outputs[0]];
  const Binding act = b.tensors[g.nodes[2].outputs[0]], prod = b.tensors[g.nodes[3].outputs[0]];
  EXPECT_EQ(norm.buffer, up.buffer);
  EXPECT_EQ(norm.buffer, act.buffer);
  EXPECT_EQ(norm.buffer, prod.buffer);
  EXPECT_EQ(act.offset, norm.offset);  // reused
  EXPECT_NE(up.offset, norm.offset);
  EXPECT_NE(prod.offset, up.offset);
  EXPECT_NE(prod.offset, act.offset);
  for (const Binding& x : {norm, up, act, prod}) EXPECT_EQ(x.offset % spy->limits().buffer_alignment, 0u);
  EXPECT_EQ(g.outputs.size(), 1u);
}

// A backend that runs a split's nodes out of order fails every chain.
TEST(ChainTest, ReverseOrderFails) {
  auto reversing = FaultyBackend::OnCpu("none", Fault::kReverseOrder);
  ASSERT_NE(reversing, nullptr);
  EXPECT_EQ(RunCase(*reversing, AddCase()).verdict, Verdict::kPassed);  // one node: no order to get wrong
  for (const Case& c : ChainCases()) {
    const CaseResult r = RunCase(*reversing, c);
    EXPECT_EQ(r.verdict, Verdict::kFailed) << c.Describe();
    EXPECT_THAT(r.error, HasSubstr("output '")) << c.Describe();
  }
}

TEST(ChainTest, FaultsInsideAChainAreCaught) {
  for (const Case& c : ChainCases()) {
    for (auto [op, fault, error] : {std::tuple{"flash_attn", Fault::kSecondRunDiffers, "run 2: output '"},
                                    std::tuple{"linear", Fault::kSecondRunDiffers, "run 2: output '"},
                                    std::tuple{"l2_norm", Fault::kSkipSecondRun, "run 2: output '"},
                                    std::tuple{"write_rows", Fault::kNoTimings, "ReadTimings gave 0 entries"}}) {
      bool touches = false;
      for (const ChainNode& n : c.chain) touches |= n.op == op;
      if (!touches) continue;
      const CaseResult r = RunWith(op, fault, c);
      EXPECT_EQ(r.verdict, Verdict::kFailed) << op << " " << c.Describe();
      EXPECT_THAT(r.error, HasSubstr(error)) << op << " " << c.Describe();
    }
  }
}

TEST(ChainTest, DeclinedNodeDeclinesTheChain) {
  for (const Case& c : ChainCases()) {
    if (c.group != "chain.kv_attn") continue;
    const CaseResult r = RunWith("flash_attn", Fault::kDecline, c);
    EXPECT_EQ(r.verdict, Verdict::kDeclined);
    EXPECT_EQ(r.reason, "flash_attn: declined on purpose by the test");
  }
}

}  // namespace
}  // namespace kiln::conformance
