// Sorting loaded nodes into topological order.
#include "proto/topo_sort.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace kiln {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// Tensor i is written by the node that lists it; names are "t<i>".
Graph Chain(int num_tensors, std::vector<std::pair<std::vector<int>, int>> nodes) {
  Graph g;
  for (int i = 0; i < num_tensors; ++i) {
    TensorInfo t;
    t.name = absl::StrCat("t", i);
    t.dims = {1};
    g.tensors.push_back(t);
  }
  for (size_t i = 0; i < nodes.size(); ++i) {
    Node n;
    n.name = absl::StrCat("n", i);
    n.op = "add";
    n.inputs = nodes[i].first;
    n.outputs = {nodes[i].second};
    g.nodes.push_back(n);
  }
  return g;
}

std::vector<std::string> Names(const Graph& g) {
  std::vector<std::string> names;
  for (const Node& n : g.nodes) names.push_back(n.name);
  return names;
}

TEST(TopoSort, OrderedGraphIsUnchanged) {
  Graph g = Chain(4, {{{0, 0}, 1}, {{1, -1}, 2}, {{2, 1}, 3}});
  ASSERT_TRUE(SortNodesTopologically(g).ok());
  EXPECT_THAT(Names(g), ElementsAre("n0", "n1", "n2"));
}

TEST(TopoSort, ReversedChainIsSorted) {
  Graph g = Chain(4, {{{2, 1}, 3}, {{1, 1}, 2}, {{0, 0}, 1}});
  ASSERT_TRUE(SortNodesTopologically(g).ok());
  EXPECT_THAT(Names(g), ElementsAre("n2", "n1", "n0"));
}

TEST(TopoSort, KeepsFileOrderWhereFree) {
  // n0 needs n3; n1 and n2 are independent of everything.
  Graph g = Chain(5, {{{4, 4}, 1}, {{0, 0}, 2}, {{0, 0}, 3}, {{0, 0}, 4}});
  ASSERT_TRUE(SortNodesTopologically(g).ok());
  EXPECT_THAT(Names(g), ElementsAre("n1", "n2", "n3", "n0"));
}

TEST(TopoSort, ViewsDependOnTheirBase) {
  Graph g = Chain(4, {{{3, 3}, 2}, {{0, 0}, 1}});
  g.tensors[3].view_of = 1;  // n0 reads a view of n1's output
  ASSERT_TRUE(SortNodesTopologically(g).ok());
  EXPECT_THAT(Names(g), ElementsAre("n1", "n0"));
}

TEST(TopoSort, CycleIsNamed) {
  Graph g = Chain(4, {{{0, 0}, 1}, {{1, 3}, 2}, {{2, 2}, 3}});
  const absl::Status st = SortNodesTopologically(g);
  EXPECT_THAT(std::string(st.message()), HasSubstr("node 'n1' (add) is on a cycle: 'n1' -> 'n2' -> 'n1'"));
  EXPECT_THAT(Names(g), ElementsAre("n0", "n1", "n2"));  // untouched on error
}

TEST(TopoSort, NodesDownstreamOfACycleAreNotBlamed) {
  // n0 reads the cycle n1 <-> n2 but is not on it.
  Graph g = Chain(4, {{{2, 2}, 1}, {{3, 3}, 2}, {{2, 2}, 3}});
  EXPECT_THAT(std::string(SortNodesTopologically(g).message()), HasSubstr("is on a cycle: 'n1' -> 'n2' -> 'n1'"));
}

TEST(TopoSort, SelfLoop) {
  Graph g = Chain(2, {{{0, 1}, 1}});
  EXPECT_THAT(std::string(SortNodesTopologically(g).message()), HasSubstr("node 'n0' (add) is on a cycle: 'n0' -> 'n0'"));
}

TEST(TopoSort, LongCycleIsSummarized) {
  std::vector<std::pair<std::vector<int>, int>> nodes;
  const int n = 20;
  for (int i = 0; i < n; ++i) nodes.push_back({{(i + n - 1) % n, 0}, i});
  Graph g = Chain(n, nodes);
  const absl::Status st = SortNodesTopologically(g);
  EXPECT_THAT(std::string(st.message()), HasSubstr("is on a cycle"));
  EXPECT_THAT(std::string(st.message()), HasSubstr("... (20 nodes)"));
}

TEST(TopoSort, TwoWritersAreAnError) {
  Graph g = Chain(3, {{{0, 0}, 1}, {{0, 0}, 1}});
  EXPECT_THAT(std::string(SortNodesTopologically(g).message()),
              HasSubstr("tensor 't1' is written by two nodes: 'n0' and 'n1'"));
}

}  // namespace
}  // namespace kiln
