// The Vulkan backend's barrier choice (backends/vulkan/vk_hazards.h): which
// nodes must wait for the ones before them, by the bytes they touch.
#include "backends/vulkan/vk_hazards.h"

#include "gtest/gtest.h"

namespace kiln::vk {
namespace {

int a_, b_;  // two allocations
const void* const A = &a_;
const void* const B = &b_;

TEST(HazardTrackerTest, ReadersOfOneInputRunSideBySide) {
  HazardTracker h;
  h.Add({{A, 0, 100}}, {{A, 1000, 1100}});  // q = x W_q
  EXPECT_FALSE(h.NeedsBarrier({{A, 0, 100}}, {{A, 2000, 2100}}));  // k = x W_k
  h.Add({{A, 0, 100}}, {{A, 2000, 2100}});
  EXPECT_FALSE(h.NeedsBarrier({{A, 0, 100}, {B, 0, 64}}, {{A, 3000, 3100}}));
}

TEST(HazardTrackerTest, ReadAfterWriteWriteAfterReadWriteAfterWrite) {
  HazardTracker h;
  h.Add({{A, 0, 100}}, {{A, 1000, 1100}});
  EXPECT_TRUE(h.NeedsBarrier({{A, 1099, 1200}}, {{A, 5000, 5100}}));  // reads its last byte
  EXPECT_TRUE(h.NeedsBarrier({{B, 0, 10}}, {{A, 50, 60}}));           // overwrites its input
  EXPECT_TRUE(h.NeedsBarrier({{B, 0, 10}}, {{A, 1050, 1060}}));       // overwrites its output
  EXPECT_FALSE(h.NeedsBarrier({{A, 1100, 1200}}, {{A, 100, 1000}}));  // touching, not overlapping
  EXPECT_FALSE(h.NeedsBarrier({{B, 1000, 1100}}, {{B, 0, 100}}));     // the same offsets elsewhere
}

TEST(HazardTrackerTest, ClearForgetsWhatABarrierOrdered) {
  HazardTracker h;
  h.Add({}, {{A, 0, 100}});
  ASSERT_TRUE(h.NeedsBarrier({{A, 0, 100}}, {}));
  h.Clear();
  EXPECT_FALSE(h.NeedsBarrier({{A, 0, 100}}, {{A, 0, 100}}));
}

TEST(OrderByLevelTest, IndependentNodesShareALevelAndDependentOnesKeepTheirOrder) {
  // 0: x = norm(in); 1: q = x Wq; 2: k = x Wk; 3: qn = norm(q); 4: kn = norm(k);
  // 5: attn(qn, kn); 6 overwrites x's memory (arena reuse) after 1 and 2 read it.
  struct N {
    std::vector<ByteRange> reads, writes;
  };
  const std::vector<N> g = {
      {{{A, 0, 10}}, {{A, 10, 20}}},  {{{A, 10, 20}}, {{A, 20, 30}}}, {{{A, 10, 20}}, {{A, 30, 40}}},
      {{{A, 20, 30}}, {{A, 40, 50}}}, {{{A, 30, 40}}, {{A, 50, 60}}}, {{{A, 40, 60}}, {{B, 0, 10}}},
      {{{B, 0, 10}}, {{A, 10, 20}}},
  };
  const std::vector<size_t> order = OrderByLevel(g.size(), [&](size_t later, size_t earlier) {
    return Conflict(g[later].reads, g[later].writes, g[earlier].reads, g[earlier].writes);
  });
  EXPECT_EQ(order, (std::vector<size_t>{0, 1, 2, 3, 4, 5, 6}));
  // Written in another valid order (k's chain first), the levels still pair q with k.
  const std::vector<N> h = {g[0], g[2], g[4], g[1], g[3], g[5], g[6]};
  const std::vector<size_t> order_h = OrderByLevel(h.size(), [&](size_t later, size_t earlier) {
    return Conflict(h[later].reads, h[later].writes, h[earlier].reads, h[earlier].writes);
  });
  EXPECT_EQ(order_h, (std::vector<size_t>{0, 1, 3, 2, 4, 5, 6}));
}

}  // namespace
}  // namespace kiln::vk
