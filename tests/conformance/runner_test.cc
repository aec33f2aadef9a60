// The runner catches every kind of wrong backend (values, NaN, writes outside
// the outputs or into inputs, claimed-but-failing nodes, swallowed errors),
// lists declined cases with their reason, and passes a correct one.
#include "conformance/runner.h"

#include <string>

#include "absl/strings/match.h"
#include "conformance/report.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
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
  }
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
                      FaultCase{"ClaimThenFail", Fault::kClaimThenFail, "Execute: INTERNAL: the kernel is missing"}),
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
  EXPECT_EQ(dst.offset, kGuardFront);
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
    if (e["result"] == "declined") saw_reason |= e["reason"] == "declined on purpose by the test";
    if (e["result"] == "failed") saw_error |= absl::StrContains(e["error"].get<std::string>(), "NMSE");
  }
  EXPECT_TRUE(saw_reason);
  EXPECT_TRUE(saw_error);
}

}  // namespace
}  // namespace kiln::conformance
