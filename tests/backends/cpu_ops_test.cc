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
using testing_util::RepeatedRowIn;
using testing_util::SwappedIn;
using testing_util::TestInput;
using testing_util::ViewIn;

constexpr DType kF32 = DType::kF32, kF16 = DType::kF16, kBF16 = DType::kBF16, kI32 = DType::kI32,
                kQ8 = DType::kQ8_0;
constexpr DType kFloats[] = {kF32, kF16, kBF16};

class CpuOps : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    // More threads than this machine may have: the parallel paths run too.
    auto b = CreateCpuBackend(BackendOptions{3});
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

// ---------------------------------------------------------------- matmul

std::vector<OpCase> MatmulCases() {
  std::vector<OpCase> cases;
  for (DType t : kFloats) {
    cases.push_back({"matmul", {In(t, {5, 7}), In(t, {7, 3})}});
    cases.push_back({"matmul", {In(t, {2, 3, 4, 5}), In(kF32, {5, 6})}});        // b broadcast
    cases.push_back({"matmul", {In(kF32, {2, 1, 4, 5}), In(t, {3, 5, 6})}});     // both broadcast
    cases.push_back({"matmul", {ViewIn(t, {3, 9, 11}), ViewIn(t, {3, 11, 2})}});
    cases.push_back({"matmul", {In(t, {65, 70}), In(t, {70, 67})}});             // packed GEMM
    cases.push_back({"matmul", {ViewIn(t, {2, 70, 80}), In(t, {80, 90})}});      // packed GEMM, batched
    cases.push_back({"matmul", {In(t, {151, 300}), ViewIn(t, {300, 37})}});      // > MC rows, > KC depth
  }
  cases.push_back({"matmul", {In(kF32, {1, 33}), In(kF32, {33, 5})}});
  cases.push_back({"matmul", {In(kF32, {4, 3, 40, 50}), In(kF32, {3, 50, 60})}});  // many small
  cases.push_back({"matmul", {In(kF32, {3, 0}), In(kF32, {0, 4})}});              // K = 0
  cases.push_back({"matmul", {In(kF32, {2, 3, 0}), In(kF32, {0, 4})}});
  return cases;
}

std::vector<OpCase> LinearCases() {
  std::vector<OpCase> cases;
  for (DType w : {kF32, kF16, kBF16, kQ8}) {
    for (int64_t rows : {1, 3, 20}) {  // dot products (decode) and GEMM
      cases.push_back({"linear", {In(kF32, {rows, 64}), In(w, {37, 64})}});
      cases.push_back({"linear", {In(kF32, {2, rows, 96}), In(w, {37, 96}), In(kF32, {37})}});
      cases.push_back({"linear", {ViewIn(kF32, {rows, 2, 64}), ViewIn(w, {21, 64}), ViewIn(kF32, {21})}});
    }
    cases.push_back({"linear", {In(kF16, {5, 64}), In(w, {9, 64})}});
    cases.push_back({"linear", {In(kBF16, {1, 32}), In(w, {9, 32}), In(kF32, {9})}});
  }
  for (DType w : {kF32, kF16}) cases.push_back({"linear", {In(kF32, {4, 33}), In(w, {7, 33})}});  // odd K
  // GEMM tile edges: rows around the 6-row tile and the 144-row block, depth
  // across the 256 block, columns around the 16/32-column panels.
  for (DType w : {kF32, kF16, kBF16}) {
    cases.push_back({"linear", {In(kF32, {5, 7}), In(w, {17, 7})}});
    cases.push_back({"linear", {In(kF32, {13, 300}), In(w, {33, 300}), In(kF32, {33})}});
    cases.push_back({"linear", {ViewIn(kF32, {150, 40}), ViewIn(w, {100, 40})}});
    cases.push_back({"linear", {In(kF32, {7, 1}), In(w, {2100, 1})}});
  }
  cases.push_back({"linear", {In(kF32, {7, 288}), In(kQ8, {19, 288})}});
  cases.push_back({"linear", {In(kF32, {9, 16384}), In(kQ8, {150, 16384}), In(kF32, {150})}});  // 2 blocks
  cases.push_back({"linear", {In(kF32, {3, 0}), In(kF32, {5, 0}), In(kF32, {5})}});               // K = 0
  cases.push_back({"linear", {In(kF32, {30, 0}), In(kF16, {5, 0})}});
  return cases;
}

// ---------------------------------------------------------------- norms, softmax

std::vector<OpCase> NormCases() {
  std::vector<OpCase> cases;
  for (const char* op : {"rms_norm", "layer_norm"}) {
    for (DType t : kFloats) {
      cases.push_back({op, {In(t, {4, 37})}});
      cases.push_back({op, {In(t, {2, 3, 37}), In(t, {37}), In(kF32, {37})}});
      cases.push_back({op, {ViewIn(t, {3, 5, 19}), ViewIn(kF16, {19}), Absent()}, {{"eps", 1e-3}}});
      cases.push_back({op, {In(t, {3, 19}), Absent(), In(kBF16, {19})}});
    }
    cases.push_back({op, {In(kF32, {300, 4099}, -3, 5), In(kF32, {4099})}});  // threaded, long rows
    cases.push_back({op, {In(kF32, {5, 1})}});
  }
  for (DType t : kFloats) {
    cases.push_back({"l2_norm", {In(t, {4, 37})}});
    cases.push_back({"l2_norm", {ViewIn(t, {2, 3, 4, 9})}, {{"eps", 0.5}}});
  }
  cases.push_back({"l2_norm", {In(kF32, {3, 0})}});
  return cases;
}

std::vector<OpCase> SoftmaxCases() {
  const double inf = std::numeric_limits<double>::infinity();
  std::vector<OpCase> cases;
  for (DType t : kFloats) {
    cases.push_back({"softmax", {In(t, {4, 37}, -5, 5)}});
    cases.push_back({"softmax", {In(t, {2, 4, 5, 37}, -5, 5), In(kF32, {1, 4, 1, 37}, -2, 2)}, {{"scale", 0.125}}});
    cases.push_back({"softmax", {ViewIn(t, {3, 5, 11}, -5, 5), ViewIn(kF16, {5, 11}, -2, 2)}});
  }
  // -inf in the mask, a fully masked row (zeros) and a per-row scalar mask.
  cases.push_back({"softmax", {In(kF32, {3, 21}), WithValues(In(kF16, {3, 21}), {0, -inf, 1, -inf, -inf, 0.5, 0})}});
  cases.push_back({"softmax", {In(kF32, {3, 21}), WithValues(In(kF32, {3, 1}), {0, -inf, 1.5})}});
  cases.push_back({"softmax", {WithValues(In(kF32, {2, 5}), {1, std::nan(""), -inf, inf, 2})}});
  cases.push_back({"softmax", {In(kF32, {64, 5000}, -30, 30)}, {{"scale", -0.5}}});  // threaded, long rows
  return cases;
}

// ---------------------------------------------------------------- reduce

std::vector<OpCase> ReduceCases() {
  std::vector<OpCase> cases;
  for (const char* op : {"sum", "mean", "max"}) {
    for (DType t : kFloats) {
      for (int64_t axis : {0, 1, -1}) {
        cases.push_back({op, {In(t, {3, 5, 37})}, {{"axis", axis}}});
        cases.push_back({op, {ViewIn(t, {2, 4, 3, 9})}, {{"axis", axis}, {"keepdims", true}}});
      }
    }
    cases.push_back({op, {In(kF32, {41})}});
    cases.push_back({op, {In(kF32, {3, 2100})}, {{"axis", 0}}});   // output rows in chunks
    cases.push_back({op, {In(kF32, {300, 400})}, {{"axis", -1}}});  // threaded
    cases.push_back({op, {In(kF32, {300, 400})}, {{"axis", 0}}});
    cases.push_back({op, {In(kF32, {3, 0})}, {{"axis", -1}}});     // empty axis: 0, NaN, -inf
    cases.push_back({op, {In(kF32, {0, 3})}, {{"axis", 0}, {"keepdims", true}}});
    cases.push_back({op, {WithValues(In(kF32, {4, 20}), {1, std::nan(""), 2, 3, 4})}, {{"axis", 0}}});
    cases.push_back({op, {WithValues(In(kF32, {4, 20}), {1, 2, std::nan(""), 3, 4})}, {{"axis", 1}}});
  }
  return cases;
}

// ---------------------------------------------------------------- rope

std::vector<OpCase> RopeCases() {
  std::vector<OpCase> cases;
  for (const char* mode : {"neox", "interleaved"}) {
    for (DType t : kFloats) {
      cases.push_back({"rope", {In(t, {2, 5, 3, 16}), In(kI32, {5}, 0, 5000)}, {{"mode", std::string(mode)}}});
      cases.push_back({"rope", {ViewIn(t, {2, 5, 3, 16}), ViewIn(kI32, {2, 5}, 0, 100000)},
                       {{"mode", std::string(mode)}, {"rotary_dim", int64_t{8}}, {"theta", 1e6}}});
    }
    cases.push_back({"rope", {In(kF32, {1, 300, 8, 64}), In(kI32, {1, 300}, 0, 40000)}, {{"mode", std::string(mode)}}});
    cases.push_back({"rope", {In(kF32, {1, 2, 2, 6}), In(kI32, {2}, -10, 10)},
                     {{"mode", std::string(mode)}, {"rotary_dim", int64_t{2}}}});
  }
  return cases;
}

// ---------------------------------------------------------------- layout

std::vector<OpCase> LayoutCases() {
  std::vector<OpCase> cases;
  const DType all[] = {kF32, kF16, kBF16, kI32};
  for (DType t : all) {
    // gather
    cases.push_back({"gather", {In(t, {50, 33}), In(kI32, {7}, 0, 49)}});
    cases.push_back({"gather", {ViewIn(t, {50, 33}), ViewIn(kI32, {2, 3}, 0, 49)}});
    cases.push_back({"gather", {In(t, {5, 8}), In(kI32, {2, 3, 4}, 0, 4)}});
    // concat
    for (int64_t axis : {0, 1, -1}) {
      cases.push_back({"concat", {In(t, {2, 3, 5}), ViewIn(t, {2, 3, 5}), In(t, {2, 3, 5})}, {{"axis", axis}}});
    }
    cases.push_back({"concat", {In(t, {4, 3}), In(t, {1, 3})}});
    // slice
    cases.push_back({"slice", {In(t, {6, 7})}, {{"axis", int64_t{0}}, {"start", int64_t{1}}, {"end", int64_t{5}}}});
    cases.push_back({"slice", {ViewIn(t, {3, 6, 9})},
                     {{"axis", int64_t{-1}}, {"start", int64_t{-8}}, {"step", int64_t{3}}}});
    cases.push_back({"slice", {In(t, {3, 6, 9})},
                     {{"axis", int64_t{1}}, {"start", int64_t{1}}, {"end", int64_t{-1}}, {"step", int64_t{2}}}});
    cases.push_back({"slice", {In(t, {3, 4})}, {{"axis", int64_t{1}}, {"start", int64_t{3}}, {"end", int64_t{1}}}});
    // reshape
    cases.push_back({"reshape", {In(t, {2, 3, 4})}, {{"shape", std::vector<int64_t>{6, -1}}}});
    cases.push_back({"reshape", {ViewIn(t, {2, 3, 4})}, {{"shape", std::vector<int64_t>{4, 3, 2}}}});
    cases.push_back({"reshape", {ViewIn(t, {5, 7})}, {{"shape", std::vector<int64_t>{35}}}});
    // permute, transpose, contiguous
    cases.push_back({"permute", {In(t, {2, 3, 4, 5})}, {{"perm", std::vector<int64_t>{0, 2, 1, 3}}}});
    cases.push_back({"permute", {ViewIn(t, {2, 3, 4, 5})}, {{"perm", std::vector<int64_t>{3, 2, 0, 1}}}});
    cases.push_back({"transpose", {In(t, {3, 4, 5})}});
    cases.push_back({"transpose", {ViewIn(t, {3, 4, 5})}, {{"dim0", int64_t{0}}, {"dim1", int64_t{1}}}});
    cases.push_back({"contiguous", {ViewIn(t, {2, 3, 4, 5})}});
    cases.push_back({"contiguous", {In(t, {7})}});
  }
  cases.push_back({"gather", {In(kQ8, {20, 64}), In(kI32, {2, 5}, 0, 19)}});  // dequantized to f32
  cases.push_back({"gather", {ViewIn(kQ8, {20, 64}), ViewIn(kI32, {6}, 0, 19)}});
  cases.push_back({"gather", {In(kF32, {300, 513}), In(kI32, {400}, 0, 299)}});      // threaded
  cases.push_back({"transpose", {In(kF32, {300, 301})}});                            // threaded, elementwise
  cases.push_back({"contiguous", {ViewIn(kF32, {4, 200, 301})}});
  return cases;
}

// ---------------------------------------------------------------- conv1d_causal, write_rows

std::vector<OpCase> ConvCases() {
  std::vector<OpCase> cases;
  for (DType t : kFloats) {
    for (bool silu : {false, true}) {
      const Attrs attrs = {{"silu", silu}};
      cases.push_back({"conv1d_causal", {In(t, {2, 7, 37}), In(t, {37, 4}), In(t, {2, 3, 37})}, attrs});
      cases.push_back({"conv1d_causal", {In(t, {2, 7, 37}), In(kF32, {37, 4})}, attrs});  // no state
      cases.push_back({"conv1d_causal", {ViewIn(t, {2, 5, 19}), ViewIn(t, {19, 3}), ViewIn(kF32, {2, 2, 19})}, attrs});
    }
  }
  cases.push_back({"conv1d_causal", {In(kF32, {3, 2, 16}), In(kF32, {16, 4}), In(kF32, {3, 3, 16})}});  // T < K-1
  cases.push_back({"conv1d_causal", {In(kF32, {1, 1, 40}), In(kF32, {40, 4}), In(kF16, {1, 3, 40})}});  // decode
  cases.push_back({"conv1d_causal", {In(kF32, {2, 5, 8}), In(kF32, {8, 1}), In(kF32, {2, 0, 8})}});     // K = 1
  cases.push_back({"conv1d_causal", {In(kF32, {1, 300, 512}), In(kF32, {512, 4}), In(kF32, {1, 3, 512})},
                   {{"silu", true}}});  // threaded
  // new_state written over state (in place).
  for (DType t : kFloats) {
    OpCase c{"conv1d_causal", {In(kF32, {2, 6, 24}), In(kF32, {24, 4}), In(t, {2, 3, 24})}, {{"silu", true}}};
    c.alias = {{2, 1}};
    cases.push_back(c);
    c.inputs[0].dims = {2, 1, 24};  // T < K-1 reads the old state after the first rows
    cases.push_back(c);
  }
  return cases;
}

std::vector<OpCase> WriteRowsCases() {
  std::vector<OpCase> cases;
  for (DType t : {kF32, kF16, kBF16, kI32, kQ8}) {
    const int64_t C = t == kQ8 ? 64 : 33;
    cases.push_back({"write_rows", {In(t, {10, C}), In(t, {3, C}), In(kI32, {3}, 0, 9)}});
    cases.push_back({"write_rows", {ViewIn(t, {2, 3, 10, C}), ViewIn(t, {2, 3, 4, C}), ViewIn(kI32, {4}, 0, 9)}});
    OpCase in_place{"write_rows", {In(t, {2, 10, C}), In(t, {2, 3, C}), In(kI32, {3}, 0, 9)}};
    in_place.alias = {{0, 0}};
    cases.push_back(in_place);
  }
  for (DType from : kFloats) {
    for (DType to : kFloats) {
      cases.push_back({"write_rows", {In(to, {6, 17}), In(from, {2, 17}), In(kI32, {2}, 0, 5)}});
    }
  }
  // Repeated rows: the last write wins.
  cases.push_back({"write_rows", {In(kF32, {6, 5}), In(kF32, {4, 5}), WithValues(In(kI32, {4}), {2, 2, 5, 2})}});
  cases.push_back({"write_rows", {In(kF32, {6, 5}), In(kF32, {0, 5}), In(kI32, {0})}});  // no rows
  return cases;
}

// ---------------------------------------------------------------- odd strides

// Views with permuted outer dims and with a repeated (stride 0) row, for the
// kernels' strided paths.
std::vector<OpCase> StridedViewCases() {
  std::vector<OpCase> cases;
  for (DType t : {kF32, kF16}) {
    cases.push_back({"add", {SwappedIn(t, {3, 4, 9}), RepeatedRowIn(t, 4, 9)}});
    cases.push_back({"exp", {SwappedIn(t, {3, 4, 9})}});
    cases.push_back({"matmul", {SwappedIn(t, {2, 5, 6}), RepeatedRowIn(t, 6, 3)}});
    cases.push_back({"matmul", {RepeatedRowIn(t, 70, 80), In(t, {80, 90})}});
    cases.push_back({"linear", {SwappedIn(t, {2, 3, 64}), In(kF32, {5, 64})}});
    cases.push_back({"linear", {SwappedIn(kF32, {20, 3, 64}), In(t, {5, 64})}});
    cases.push_back({"linear", {RepeatedRowIn(kF32, 30, 64), RepeatedRowIn(t, 7, 64)}});
    cases.push_back({"rms_norm", {SwappedIn(t, {3, 4, 9}), In(t, {9})}});
    cases.push_back({"layer_norm", {RepeatedRowIn(t, 6, 9)}});
    cases.push_back({"softmax", {SwappedIn(t, {2, 5, 9}), RepeatedRowIn(kF32, 5, 9)}});
    cases.push_back({"sum", {SwappedIn(t, {3, 4, 9})}, {{"axis", int64_t{1}}}});
    cases.push_back({"max", {RepeatedRowIn(t, 5, 9)}, {{"axis", int64_t{0}}}});
    cases.push_back({"cast", {SwappedIn(t, {3, 4, 9})}, {{"dtype", std::string("bf16")}}});
    cases.push_back({"permute", {SwappedIn(t, {3, 4, 9})}, {{"perm", std::vector<int64_t>{2, 0, 1}}}});
    cases.push_back({"reshape", {RepeatedRowIn(t, 4, 6)}, {{"shape", std::vector<int64_t>{3, 8}}}});
    cases.push_back({"concat", {SwappedIn(t, {3, 4, 9}), SwappedIn(t, {2, 4, 9})}, {{"axis", int64_t{0}}}});
    cases.push_back({"concat", {RepeatedRowIn(t, 4, 9), In(t, {4, 2})}, {{"axis", int64_t{1}}}});
    cases.push_back({"gather", {RepeatedRowIn(t, 4, 9), In(kI32, {5}, 0, 3)}});
    cases.push_back({"rope", {SwappedIn(t, {2, 3, 2, 8}), In(kI32, {3}, 0, 50)}});
    cases.push_back({"conv1d_causal", {SwappedIn(t, {2, 5, 8}), RepeatedRowIn(t, 8, 4)}});
    cases.push_back({"write_rows", {SwappedIn(t, {3, 4, 9}), SwappedIn(t, {3, 2, 9}), In(kI32, {2}, 0, 3)}});
  }
  return cases;
}

TEST_F(CpuOps, Binary) { Check(BinaryCases()); }
TEST_F(CpuOps, Unary) { Check(UnaryCases()); }
TEST_F(CpuOps, UnarySpecialValues) { Check(UnarySpecialValueCases()); }
TEST_F(CpuOps, Cast) { Check(CastCases()); }
TEST_F(CpuOps, Matmul) { Check(MatmulCases()); }
TEST_F(CpuOps, Linear) { Check(LinearCases()); }
TEST_F(CpuOps, Norms) { Check(NormCases()); }
TEST_F(CpuOps, Softmax) { Check(SoftmaxCases()); }
TEST_F(CpuOps, Reduce) { Check(ReduceCases()); }
TEST_F(CpuOps, Rope) { Check(RopeCases()); }
TEST_F(CpuOps, Layout) { Check(LayoutCases()); }
TEST_F(CpuOps, Conv1dCausal) { Check(ConvCases()); }
TEST_F(CpuOps, WriteRows) { Check(WriteRowsCases()); }
TEST_F(CpuOps, StridedViews) { Check(StridedViewCases()); }

// Ids and rows out of range are run-time errors that name the node.
TEST_F(CpuOps, OutOfRangeIndicesNameTheNode) {
  for (const OpCase& c : {OpCase{"gather", {In(kF32, {5, 8}), WithValues(In(kI32, {3}), {0, 4, 5})}},
                          OpCase{"gather", {In(kQ8, {5, 32}), WithValues(In(kI32, {2}), {-1, 0})}},
                          OpCase{"write_rows", {In(kF32, {6, 4}), In(kF32, {2, 4}), WithValues(In(kI32, {2}), {1, 6})}},
                          OpCase{"write_rows", {In(kF16, {6, 4}), In(kF16, {1, 4}),
                                                WithValues(In(kI32, {1}), {-3})}}}) {
    auto inst = testing_util::MakeInstance(c, 7);
    ASSERT_TRUE(inst.ok()) << inst.status();
    auto got = testing_util::RunOnBackend(*backend_, *inst);
    ASSERT_FALSE(got.ok()) << testing_util::Describe(c);
    EXPECT_EQ(got.status().code(), absl::StatusCode::kOutOfRange);
    EXPECT_THAT(got.status().message(), HasSubstr("node 'node' (" + c.op + ")"));
    EXPECT_THAT(got.status().message(), HasSubstr("outside"));
  }
}

// Every op with a CPU kernel has cases here (flash_attn and gated_delta_net
// have their own test files).
TEST(CpuOpsCoverage, EveryKernelHasCases) {
  std::set<std::string> covered;
  for (auto cases : {BinaryCases, UnaryCases, UnarySpecialValueCases, CastCases, MatmulCases, LinearCases,
                     NormCases, SoftmaxCases, ReduceCases, RopeCases, LayoutCases, ConvCases,
                     WriteRowsCases, StridedViewCases}) {
    for (const OpCase& c : cases()) covered.insert(c.op);
  }
  for (const cpu::CpuKernelEntry& e : cpu::CpuKernels()) {
    if (e.op == "flash_attn" || e.op == "gated_delta_net") continue;
    EXPECT_TRUE(covered.count(e.op)) << "no test cases for CPU kernel '" << e.op << "'";
  }
}

}  // namespace
}  // namespace kiln
