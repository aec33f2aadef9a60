#include "graph/builder.h"

#include <vector>

#include "gmock/gmock.h"
#include "graph/validate.h"
#include "gtest/gtest.h"

namespace kiln {
namespace {

using ::testing::HasSubstr;

std::shared_ptr<const ConstantData> Zeros(size_t n) {
  std::vector<std::byte> b(n);
  return ConstantData::Copy(b.data(), n);
}

TEST(GraphBuilder, BuildsAValidGraph) {
  GraphBuilder b("g");
  Tensor x = b.Input("x", DType::kF32, {2, 8});
  Tensor w = b.Constant("w", DType::kF32, {8}, Zeros(32));
  Tensor y = b.Op1("rms_norm", {x, w}, {}, "norm");
  Tensor z = b.Op1("add", {y, x}, {}, "residual");
  b.Output(z);
  auto g = b.Build();
  ASSERT_TRUE(g.ok()) << g.status();
  EXPECT_EQ(g->nodes.size(), 2u);
  EXPECT_EQ(g->tensor(g->outputs[0]).name, "residual");
  EXPECT_EQ(g->tensor(g->outputs[0]).dims, (std::vector<int64_t>{2, 8}));
  // Defaults were filled in.
  EXPECT_TRUE(g->nodes[0].attrs.count("eps"));
  EXPECT_EQ(g->tensor(g->outputs[0]).producer, 1);
}

TEST(GraphBuilder, ErrorNamesNodeAndTensor) {
  GraphBuilder b("g");
  Tensor x = b.Input("x", DType::kF32, {2, 8});
  Tensor y = b.Input("y", DType::kF32, {3, 5});
  b.Op1("add", {x, y}, {}, "bad_add");
  ASSERT_FALSE(b.status().ok());
  EXPECT_THAT(b.status().message(), HasSubstr("bad_add"));
  EXPECT_THAT(b.status().message(), HasSubstr("'y'"));
  // The first error sticks.
  b.Op1("add", {x, x});
  EXPECT_THAT(b.Build().status().message(), HasSubstr("bad_add"));
}

TEST(GraphBuilder, UnknownOpAndAttribute) {
  GraphBuilder b("g");
  Tensor x = b.Input("x", DType::kF32, {4});
  b.Op1("frobnicate", {x}, {}, "n1");
  EXPECT_THAT(b.status().message(), HasSubstr("unknown op 'frobnicate'"));

  GraphBuilder b2("g");
  Tensor x2 = b2.Input("x", DType::kF32, {4});
  b2.Op1("rms_norm", {x2}, {{"epsilon", 1e-5}}, "n2");
  EXPECT_THAT(b2.status().message(), HasSubstr("unknown attribute 'epsilon'"));

  GraphBuilder b3("g");
  Tensor x3 = b3.Input("x", DType::kF32, {4});
  b3.Op1("rms_norm", {x3}, {{"eps", std::string("big")}}, "n3");
  EXPECT_THAT(b3.status().message(), HasSubstr("'eps' must be float"));

  GraphBuilder b4("g");
  Tensor x4 = b4.Input("x", DType::kF32, {4});
  b4.Op1("rms_norm", {x4}, {{"eps", -1.0}}, "n4");
  EXPECT_THAT(b4.status().message(), HasSubstr("out of range"));
}

TEST(GraphBuilder, ViewsMustStayInsideTheirBase) {
  GraphBuilder b("g");
  Tensor x = b.Input("x", DType::kF32, {4, 8});
  Tensor v = b.View(x, {4, 4}, {32, 4}, 16);  // right half of each row
  EXPECT_TRUE(v.valid()) << b.status();
  Tensor vv = b.View(v, {2, 4}, {64, 4}, 0);  // a view of a view flattens
  ASSERT_TRUE(vv.valid());
  EXPECT_EQ(b.info(vv).view_of, x.id);
  EXPECT_EQ(b.info(vv).offset, 16);
  b.View(x, {4, 8}, {32, 4}, 4);  // one element past the end
  EXPECT_THAT(b.status().message(), HasSubstr("view reads bytes"));
}

TEST(GraphBuilder, RankAndDimsAreChecked) {
  GraphBuilder b("g");
  b.Input("x", DType::kF32, {1, 2, 3, 4, 5});
  EXPECT_THAT(b.status().message(), HasSubstr("rank 5"));
  GraphBuilder b2("g");
  b2.Input("x", DType::kF32, {-1});
  EXPECT_THAT(b2.status().message(), HasSubstr("out of range"));
  GraphBuilder b3("g");
  b3.Input("x", DType::kQ8_0, {2, 30});
  EXPECT_THAT(b3.status().message(), HasSubstr("multiple of 32"));
  GraphBuilder b4("g");
  b4.Input("x", DType::kF32, {int64_t{1} << 40, int64_t{1} << 40});
  EXPECT_THAT(b4.status().message(), HasSubstr("too many elements"));
}

TEST(GraphBuilder, StatesMustMatch) {
  GraphBuilder b("g");
  Tensor s = b.Input("s", DType::kF32, {4});
  Tensor x = b.Input("x", DType::kF32, {2, 4});
  Tensor y = b.Op1("add", {s, x}, {}, "sum");
  b.Output(y);
  b.State(s, y);
  EXPECT_THAT(b.Build().status().message(), HasSubstr("next value of state"));
}

}  // namespace
}  // namespace kiln
