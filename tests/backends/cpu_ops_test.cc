// Every op of the CPU backend against its reference, over a small grid per op
// (odd sizes, broadcasting, f32/f16/bf16, views as inputs), run through the
// backend as the scheduler would (Allocate/Upload/Prepare/Execute/Download).
#include <cmath>
#include <limits>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "backends/cpu/cpu_backend.h"
#include "backends/cpu/kernel_table.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/backends/backend_test_util.h"

namespace kiln {
namespace {

using ::testing::HasSubstr;
using testing_util::Absent;
using testing_util::In;
using testing_util::MatchesReference;
using testing_util::OpCase;
using testing_util::TestInput;
using testing_util::ViewIn;

constexpr DType kF32 = DType::kF32, kF16 = DType::kF16, kBF16 = DType::kBF16, kI32 = DType::kI32,
                kQ8 = DType::kQ8_0;
constexpr DType kFloats[] = {kF32, kF16, kBF16};

class CpuOps : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto b = CreateCpuBackend(BackendOptions{});
    ASSERT_TRUE(b.ok()) << b.status();
    backend_ = b->release();
  }
  static void TearDownTestSuite() {
    delete backend_;
    backend_ = nullptr;
  }
  // Checks each case, seeded by its position.
  static void Check(const std::vector<OpCase>& cases) {
    uint32_t seed = 1;
    for (const OpCase& c : cases) EXPECT_TRUE(MatchesReference(*backend_, c, seed++));
  }
  static Backend* backend_;
};
Backend* CpuOps::backend_ = nullptr;

TestInput WithValues(TestInput t, std::vector<double> values) {
  t.values = std::move(values);
  return t;
}

// ---------------------------------------------------------------- elementwise

std::vector<OpCase> BinaryCases() {
  std::vector<OpCase> cases;
  for (const char* op : {"add", "sub", "mul", "div"}) {
    const double lo = std::string(op) == "div" ? 0.5 : -2;  // divisors away from 0
    for (DType t : kFloats) {
      cases.push_back({op, {In(t, {3, 37}), In(t, {3, 37}, lo, 2)}});
      cases.push_back({op, {In(t, {2, 3, 5, 33}), In(t, {3, 1, 33}, lo, 2)}});
      cases.push_back({op, {In(t, {5, 1}), In(t, {1, 7}, lo, 2)}});   // both broadcast
      cases.push_back({op, {In(t, {1}), In(t, {4, 9}, lo, 2)}});      // scalar a
      cases.push_back({op, {In(t, {4, 9}), In(t, {1}, lo, 2)}});      // scalar b
      cases.push_back({op, {ViewIn(t, {3, 4, 19}), ViewIn(t, {4, 19}, lo, 2)}});
      cases.push_back({op, {In(t, {7, 2100}), In(t, {2100}, lo, 2)}});  // rows > one chunk
    }
    cases.push_back({op, {In(kF32, {300, 301}), In(kF32, {300, 301}, lo, 2)}});  // threaded
  }
  for (const char* op : {"add", "sub", "mul"}) {
    cases.push_back({op, {In(kI32, {3, 17}, -1000, 1000), In(kI32, {17}, -1000, 1000)}});
    cases.push_back({op, {ViewIn(kI32, {5, 3}, -2e9, 2e9), In(kI32, {5, 3}, -2e9, 2e9)}});  // wraps
  }
  return cases;
}

std::vector<OpCase> UnaryCases() {
  struct U {
    const char* op;
    double lo, hi;
    Attrs attrs;
  };
  const std::vector<U> ops = {
      {"neg", -3, 3, {}},       {"abs", -3, 3, {}},          {"exp", -10, 10, {}},
      {"log", 0.01, 50, {}},    {"sqrt", 0, 50, {}},         {"rsqrt", 0.01, 50, {}},
      {"tanh", -5, 5, {}},      {"sigmoid", -12, 12, {}},    {"silu", -12, 12, {}},
      {"relu", -3, 3, {}},      {"softplus", -30, 30, {}},   {"gelu", -6, 6, {}},
      {"gelu", -6, 6, {{"approximate", std::string("none")}}},
      {"scale", -3, 3, {{"a", 2.5}, {"b", -0.75}}},
  };
  std::vector<OpCase> cases;
  for (const U& u : ops) {
    for (DType t : kFloats) {
      cases.push_back({u.op, {In(t, {5, 37}, u.lo, u.hi)}, u.attrs});
      cases.push_back({u.op, {ViewIn(t, {2, 3, 4, 11}, u.lo, u.hi)}, u.attrs});
    }
    cases.push_back({u.op, {In(kF32, {1, 5000}, u.lo, u.hi)}, u.attrs});
    cases.push_back({u.op, {In(kF32, {257, 513}, u.lo, u.hi)}, u.attrs});  // threaded
  }
  for (const char* op : {"neg", "abs"}) {
    cases.push_back({op, {In(kI32, {4, 9}, -2147483648.0, 2147483647.0)}});
    cases.push_back({op, {ViewIn(kI32, {4, 9}, -100, 100)}});
  }
  return cases;
}

// NaN, infinities, huge and tiny values: the SIMD math must agree with the
// reference on every one (Compare requires inf/NaN positions to agree).
std::vector<OpCase> UnarySpecialValueCases() {
  const double inf = std::numeric_limits<double>::infinity(), nan = std::nan("");
  const std::vector<double> values = {nan, inf, -inf, 0.0, -0.0, 1e-40, -1e-40, 88.7, 88.8, 89.5, 100,
                                      200, 1e30, -1e30, -88, -100, -200, 3.4e38, -3.4e38, 1, -1, 0.5};
  std::vector<OpCase> cases;
  for (const char* op : {"neg", "abs", "exp", "log", "sqrt", "rsqrt", "tanh", "sigmoid", "silu",
                         "relu", "softplus", "gelu"}) {
    cases.push_back({op, {WithValues(In(kF32, {22}), values)}});
    cases.push_back({op, {WithValues(In(kF32, {2, 33}), values)}});  // vector body and tail
  }
  cases.push_back({"gelu", {WithValues(In(kF32, {22}), values)}, {{"approximate", std::string("none")}}});
  for (const char* op : {"add", "div", "mul", "sub"}) {
    cases.push_back({op, {WithValues(In(kF32, {22}), values), WithValues(In(kF32, {22}), {inf, 0.0, -inf, nan, 2})}});
  }
  return cases;
}

std::vector<OpCase> CastCases() {
  std::vector<OpCase> cases;
  const DType all[] = {kF32, kF16, kBF16, kI32};
  for (DType from : all) {
    for (DType to : all) {
      const Attrs attrs = {{"dtype", std::string(DTypeName(to))}};
      cases.push_back({"cast", {In(from, {3, 45}, -300, 300)}, attrs});
      cases.push_back({"cast", {ViewIn(from, {2, 3, 17}, -300, 300)}, attrs});
    }
  }
  // Truncation toward zero, saturation and NaN -> 0 when casting to i32.
  const double inf = std::numeric_limits<double>::infinity();
  cases.push_back({"cast", {WithValues(In(kF32, {12}), {-2.7, -2.5, -0.5, 0.5, 2.5, 2.7, 3e9, -3e9, inf, -inf,
                                                      std::nan(""), 16777217})},
                   {{"dtype", std::string("i32")}}});
  cases.push_back({"cast", {In(kI32, {40}, -2147483648.0, 2147483647.0)}, {{"dtype", std::string("i32")}}});
  for (DType to : kFloats) {
    const Attrs attrs = {{"dtype", std::string(DTypeName(to))}};
    cases.push_back({"cast", {In(kQ8, {3, 64})}, attrs});
    cases.push_back({"cast", {ViewIn(kQ8, {2, 96})}, attrs});
    cases.push_back({"cast", {In(kQ8, {2, 4096 + 32})}, attrs});  // crosses a chunk
  }
  return cases;
}

TEST_F(CpuOps, Binary) { Check(BinaryCases()); }
TEST_F(CpuOps, Unary) { Check(UnaryCases()); }
TEST_F(CpuOps, UnarySpecialValues) { Check(UnarySpecialValueCases()); }
TEST_F(CpuOps, Cast) { Check(CastCases()); }

// Every op with a CPU kernel has cases here (flash_attn and gated_delta_net
// have their own test files).
TEST(CpuOpsCoverage, EveryKernelHasCases) {
  std::set<std::string> covered;
  for (auto cases : {BinaryCases, UnaryCases, UnarySpecialValueCases, CastCases}) {
    for (const OpCase& c : cases()) covered.insert(c.op);
  }
  for (const cpu::CpuKernelEntry& e : cpu::CpuKernels()) {
    if (e.op == "flash_attn" || e.op == "gated_delta_net") continue;
    EXPECT_TRUE(covered.count(e.op)) << "no test cases for CPU kernel '" << e.op << "'";
  }
}

}  // namespace
}  // namespace kiln
