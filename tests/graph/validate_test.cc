#include "graph/validate.h"

#include "gmock/gmock.h"
#include "graph/builder.h"
#include "gtest/gtest.h"

namespace kiln {
namespace {

using ::testing::HasSubstr;

// x -> neg -> exp -> out, built then edited into broken forms.
Graph Chain() {
  GraphBuilder b("chain");
  Tensor x = b.Input("x", DType::kF32, {3});
  Tensor y = b.Op1("neg", {x}, {}, "n0");
  Tensor z = b.Op1("exp", {y}, {}, "n1");
  b.Output(z);
  auto g = b.Build();
  EXPECT_TRUE(g.ok()) << g.status();
  return *std::move(g);
}

TEST(ValidateGraph, AcceptsTheChain) {
  Graph g = Chain();
  EXPECT_TRUE(ValidateGraph(g).ok());
}

TEST(ValidateGraph, NodesOutOfOrder) {
  Graph g = Chain();
  std::swap(g.nodes[0], g.nodes[1]);
  EXPECT_THAT(ValidateGraph(g).message(), HasSubstr("cycle or nodes out of order"));
}

TEST(ValidateGraph, DanglingInput) {
  Graph g = Chain();
  g.inputs.clear();
  EXPECT_THAT(ValidateGraph(g).message(), HasSubstr("dangling"));
}

TEST(ValidateGraph, BadIdsAndDuplicates) {
  Graph g = Chain();
  g.nodes[1].inputs[0] = 99;
  EXPECT_THAT(ValidateGraph(g).message(), HasSubstr("does not exist"));
  g = Chain();
  g.nodes[1].outputs[0] = g.nodes[0].outputs[0];
  EXPECT_FALSE(ValidateGraph(g).ok());
  g = Chain();
  g.tensors[1].name = "x";
  EXPECT_THAT(ValidateGraph(g).message(), HasSubstr("used twice"));
  g = Chain();
  g.outputs = {-4};
  EXPECT_THAT(ValidateGraph(g).message(), HasSubstr("does not exist"));
}

TEST(ValidateGraph, DeclaredOutputTypeMustMatchInference) {
  Graph g = Chain();
  g.tensors[g.outputs[0]].dims = {4};
  g.tensors[g.outputs[0]].strides = {4};
  EXPECT_THAT(ValidateGraph(g).message(), HasSubstr("does not match the inferred"));
}

TEST(ValidateGraph, ConstantSizeMustMatch) {
  Graph g = Chain();
  TensorInfo c;
  c.name = "c";
  c.dims = {4};
  c.strides = {4};
  std::vector<float> v(3);
  c.constant = ConstantData::Copy(v.data(), 12);
  g.tensors.push_back(c);
  EXPECT_THAT(ValidateGraph(g).message(), HasSubstr("constant has 12 bytes, expected 16"));
}

TEST(ValidateGraph, StridesOverflowIsAnError) {
  Graph g = Chain();
  TensorInfo v;
  v.name = "v";
  v.dims = {int64_t{1} << 39, 2};
  v.strides = {int64_t{1} << 45, 4};
  v.view_of = 0;
  g.tensors.push_back(v);
  EXPECT_FALSE(ValidateGraph(g).ok());
}

}  // namespace
}  // namespace kiln
