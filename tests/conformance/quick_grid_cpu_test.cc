// The quick conformance grid passes on the CPU backend, op by op: every case
// it claims matches the reference; declined cases carry a reason.
#include <string>
#include <vector>

#include "backends/registry.h"
#include "conformance/grids.h"
#include "conformance/runner.h"
#include "gtest/gtest.h"
#include "ops/registry.h"

namespace kiln::conformance {
namespace {

std::vector<std::string> OpNames() {
  std::vector<std::string> names;
  for (const OpSchema* s : AllOps()) names.push_back(s->name);
  names.push_back(kChainOp);  // the chained cases
  return names;
}

class QuickGridCpuTest : public ::testing::TestWithParam<std::string> {};

TEST_P(QuickGridCpuTest, Passes) {
  auto cpu = CreateBackend("cpu");
  ASSERT_TRUE(cpu.ok()) << cpu.status();
  const std::vector<Case> cases = MakeGrid(GridSize::kQuick, GetParam());
  ASSERT_FALSE(cases.empty());
  const auto results = RunSuite(cases, {cpu->get()}, {.threads = 2});
  int passed = 0, declined = 0;
  for (size_t i = 0; i < cases.size(); ++i) {
    const CaseResult& r = results[i][0];
    EXPECT_NE(r.verdict, Verdict::kFailed) << cases[i].Describe() << "\n  " << r.error;
    if (r.verdict == Verdict::kDeclined) {
      EXPECT_FALSE(r.reason.empty()) << cases[i].Describe();
    }
    passed += r.verdict == Verdict::kPassed;
    declined += r.verdict == Verdict::kDeclined;
  }
  std::cout << GetParam() << ": " << cases.size() << " cases, " << passed << " passed, " << declined
            << " declined\n";
}

INSTANTIATE_TEST_SUITE_P(Ops, QuickGridCpuTest, ::testing::ValuesIn(OpNames()),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace kiln::conformance
