#include <cmath>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "ops/rope.h"
#include "tests/ops/op_test_util.h"

namespace kiln {
namespace {

using ::testing::ElementsAreArray;
using ::testing::HasSubstr;
using ::testing::Pointwise;
using ::testing::DoubleNear;

// out_a = a cos - b sin, out_b = a sin + b cos.
std::pair<double, double> Rotate(double a, double b, double angle) {
  return {a * std::cos(angle) - b * std::sin(angle), a * std::sin(angle) + b * std::cos(angle)};
}

std::vector<double> RunRope(const TestTensor& x, const TestTensor& pos, Attrs attrs = {}) {
  auto out = RunReference("rope", {&x, &pos}, std::move(attrs));
  EXPECT_TRUE(out.ok()) << out.status();
  if (!out.ok()) return {};
  EXPECT_EQ(out->at(0).view.dtype, x.view.dtype);
  EXPECT_EQ(Dims(out->at(0).view), Dims(x.view));
  return Values(out->at(0));
}

TEST(Rope, NeoxPairsHalves) {
  // theta 100, D 4: pair 0 turns by p, pair 1 by p * 100^(-1/2) = p / 10.
  const TestTensor x = MakeTensor(DType::kF32, {1, 1, 1, 4}, {1, 2, 3, 4});
  const TestTensor pos = MakeTensor(DType::kI32, {1}, {3});
  const auto [o0, o2] = Rotate(1, 3, 3.0);
  const auto [o1, o3] = Rotate(2, 4, 0.3);
  EXPECT_THAT(RunRope(x, pos, {{"theta", 100.0}}),
              Pointwise(DoubleNear(1e-6), std::vector<double>{o0, o1, o2, o3}));
}

TEST(Rope, InterleavedPairsNeighbours) {
  const TestTensor x = MakeTensor(DType::kF32, {1, 1, 1, 4}, {1, 2, 3, 4});
  const TestTensor pos = MakeTensor(DType::kI32, {1}, {3});
  const auto [o0, o1] = Rotate(1, 2, 3.0);
  const auto [o2, o3] = Rotate(3, 4, 0.3);
  EXPECT_THAT(RunRope(x, pos, {{"theta", 100.0}, {"mode", std::string("interleaved")}}),
              Pointwise(DoubleNear(1e-6), std::vector<double>{o0, o1, o2, o3}));
}

TEST(Rope, DefaultThetaIsTenThousand) {
  // D 4: pair 1 turns by p * 10000^(-1/2) = p / 100.
  const TestTensor x = MakeTensor(DType::kF32, {1, 1, 1, 4}, {1, 2, 3, 4});
  const TestTensor pos = MakeTensor(DType::kI32, {1}, {5});
  const auto [o0, o2] = Rotate(1, 3, 5.0);
  const auto [o1, o3] = Rotate(2, 4, 0.05);
  EXPECT_THAT(RunRope(x, pos), Pointwise(DoubleNear(1e-6), std::vector<double>{o0, o1, o2, o3}));
}

TEST(Rope, PartialRotaryPassesTheRestThrough) {
  // D 6, rotary_dim 4: pairs as for D 4 with theta^(-2i/4); dims 4, 5 untouched.
  const TestTensor x = MakeTensor(DType::kF32, {1, 1, 1, 6}, {1, 2, 3, 4, 5, 6});
  const TestTensor pos = MakeTensor(DType::kI32, {1}, {2});
  {
    const auto [o0, o2] = Rotate(1, 3, 2.0);
    const auto [o1, o3] = Rotate(2, 4, 0.2);
    EXPECT_THAT(RunRope(x, pos, {{"theta", 100.0}, {"rotary_dim", int64_t{4}}}),
                Pointwise(DoubleNear(1e-6), std::vector<double>{o0, o1, o2, o3, 5, 6}));
  }
  {
    const auto [o0, o1] = Rotate(1, 2, 2.0);
    const auto [o2, o3] = Rotate(3, 4, 0.2);
    EXPECT_THAT(RunRope(x, pos, {{"theta", 100.0}, {"rotary_dim", int64_t{4}},
                                 {"mode", std::string("interleaved")}}),
                Pointwise(DoubleNear(1e-6), std::vector<double>{o0, o1, o2, o3, 5, 6}));
  }
}

TEST(Rope, PositionZeroIsIdentityAndEveryHeadTurnsAlike) {
  // [B=1, T=2, H=2, D=2]: token 0 at position 0, token 1 at position 1.
  const TestTensor x = MakeTensor(DType::kF32, {1, 2, 2, 2}, {1, 2, 3, 4, 5, 6, 7, 8});
  const TestTensor pos = MakeTensor(DType::kI32, {2}, {0, 1});
  const auto [a0, a1] = Rotate(5, 6, 1.0);
  const auto [b0, b1] = Rotate(7, 8, 1.0);
  EXPECT_THAT(RunRope(x, pos),
              Pointwise(DoubleNear(1e-6), std::vector<double>{1, 2, 3, 4, a0, a1, b0, b1}));
}

TEST(Rope, PositionsPerBatchRowOrShared) {
  // [B=2, T=1, H=1, D=2] with the same x in both batch rows.
  const TestTensor x = MakeTensor(DType::kF32, {2, 1, 1, 2}, {1, 2, 1, 2});
  const auto [p0, p1] = Rotate(1, 2, 4.0);
  const auto [q0, q1] = Rotate(1, 2, 7.0);
  const TestTensor shared = MakeTensor(DType::kI32, {1}, {4});
  EXPECT_THAT(RunRope(x, shared), Pointwise(DoubleNear(1e-6), std::vector<double>{p0, p1, p0, p1}));
  const TestTensor per_batch = MakeTensor(DType::kI32, {2, 1}, {4, 7});
  EXPECT_THAT(RunRope(x, per_batch), Pointwise(DoubleNear(1e-6), std::vector<double>{p0, p1, q0, q1}));
}

TEST(Rope, StridedViewsGiveTheSameAsContiguous) {
  std::vector<double> xs;
  for (int i = 0; i < 2 * 3 * 2 * 8; ++i) xs.push_back(std::sin(0.7 * i));
  const std::vector<double> ps = {0, 5, 9, 1, 2, 300};
  for (const char* mode : {"neox", "interleaved"}) {
    const Attrs attrs = {{"mode", std::string(mode)}, {"rotary_dim", int64_t{6}}};
    const auto want = RunRope(MakeTensor(DType::kF32, {2, 3, 2, 8}, xs), MakeTensor(DType::kI32, {2, 3}, ps), attrs);
    const auto got = RunRope(MakePaddedTensor(DType::kF32, {2, 3, 2, 8}, xs),
                             MakePaddedTensor(DType::kI32, {2, 3}, ps), attrs);
    EXPECT_THAT(got, ElementsAreArray(want)) << mode;
  }
}

TEST(Rope, HalfPrecisionKeepsItsDtype) {
  const TestTensor x = MakeTensor(DType::kF16, {1, 1, 1, 2}, {1, 0});
  const TestTensor pos = MakeTensor(DType::kI32, {1}, {1});
  const std::vector<double> got = RunRope(x, pos);  // checks the dtype too
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0], RoundTo(DType::kF16, std::cos(1.0)));
  EXPECT_EQ(got[1], RoundTo(DType::kF16, std::sin(1.0)));
}

TEST(Rope, InferenceErrorsNameNodeAndTensor) {
  const TestTensor x = MakeTensor(DType::kF32, {1, 2, 1, 6}, std::vector<double>(12, 1));
  const TestTensor pos = MakeTensor(DType::kI32, {2}, {0, 1});
  auto err = [&](const TestTensor& a, const TestTensor& b, Attrs attrs) {
    auto out = RunReference("rope", {&a, &b}, std::move(attrs));
    EXPECT_FALSE(out.ok());
    return out.ok() ? std::string() : std::string(out.status().message());
  };
  EXPECT_THAT(err(x, pos, {{"rotary_dim", int64_t{3}}}), HasSubstr("node 'test_node' (rope)"));
  EXPECT_THAT(err(x, pos, {{"rotary_dim", int64_t{3}}}), HasSubstr("even"));
  EXPECT_THAT(err(x, pos, {{"rotary_dim", int64_t{8}}}), HasSubstr("head dim D = 6"));
  EXPECT_THAT(err(x, pos, {{"theta", 0.0}}), HasSubstr("theta"));
  EXPECT_THAT(err(x, pos, {{"theta", -2.0}}), HasSubstr("theta"));
  EXPECT_THAT(err(x, pos, {{"mode", std::string("gptj")}}), HasSubstr("neox, interleaved"));

  const TestTensor odd = MakeTensor(DType::kF32, {1, 2, 1, 5}, std::vector<double>(10, 1));
  EXPECT_THAT(err(odd, pos, {}), HasSubstr("even"));  // rotary_dim 0 means D = 5
  const TestTensor pos3 = MakeTensor(DType::kI32, {3}, {0, 1, 2});
  EXPECT_THAT(err(x, pos3, {}), HasSubstr("input 'positions' (tensor 't1' i32 [3])"));
  const TestTensor posf = MakeTensor(DType::kF32, {2}, {0, 1});
  EXPECT_THAT(err(x, posf, {}), HasSubstr("must be i32"));
  const TestTensor x3 = MakeTensor(DType::kF32, {2, 1, 6}, std::vector<double>(12, 1));
  EXPECT_THAT(err(x3, pos, {}), HasSubstr("input 'x' (tensor 't0' f32 [2,1,6]): must be [B, T, H, D]"));
  const TestTensor xi = MakeTensor(DType::kI32, {1, 2, 1, 6}, std::vector<double>(12, 1));
  EXPECT_THAT(err(xi, pos, {}), HasSubstr("f32, f16 or bf16"));
}

}  // namespace
}  // namespace kiln
