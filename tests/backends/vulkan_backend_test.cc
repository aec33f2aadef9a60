// The Vulkan backend: memory, ordering, fills, device errors and a sample of
// ops against their references (the conformance grid covers every op).
// Skipped where no Vulkan device is present.
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "backends/registry.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/backends/backend_test_util.h"

namespace kiln {
namespace {

using testing_util::In;
using testing_util::MatchesReference;
using testing_util::OpCase;

constexpr DType kF32 = DType::kF32, kF16 = DType::kF16, kBF16 = DType::kBF16, kQ8 = DType::kQ8_0;

class VulkanBackendTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    bool compiled = false;
    for (const std::string& n : BackendNames()) compiled |= n == "vulkan";
    if (!compiled) return;
    BackendOptions o;
    o.cache_dir = "off";
    auto b = CreateBackend("vulkan", o);
    if (b.ok()) backend_ = b->release();
  }
  static void TearDownTestSuite() {
    delete backend_;
    backend_ = nullptr;
  }
  void SetUp() override {
    if (!backend_) GTEST_SKIP() << "no Vulkan device here";
  }
  // A second backend with the specialized kernels, which CPU devices
  // (lavapipe, CI) do not build by default.
  static absl::StatusOr<std::unique_ptr<Backend>> Specialized() {
    BackendOptions o;
    o.cache_dir = "off";
    o.flags["specialize"] = "on";
    return CreateBackend("vulkan", o);
  }
  static Backend* backend_;
};
Backend* VulkanBackendTest::backend_ = nullptr;

TEST_F(VulkanBackendTest, DescribesTheDevice) {
  const DeviceInfo& d = backend_->device();
  EXPECT_EQ(d.backend, "vulkan");
  EXPECT_FALSE(d.name.empty());
  EXPECT_FALSE(d.id.empty());
  EXPECT_GT(d.subgroup_size, 0);
  bool coopmat = false;
  for (const std::string& f : d.features) coopmat |= absl::StartsWith(f, "coopmat:");
  EXPECT_TRUE(coopmat);
  EXPECT_GE(backend_->limits().buffer_alignment, 16u);
}

TEST_F(VulkanBackendTest, UploadCopyFillDownloadInOrder) {
  for (BufferUsage usage : {BufferUsage::kArena, BufferUsage::kInput, BufferUsage::kOutput}) {
    auto a = backend_->Allocate(1001, usage, "a");
    auto b = backend_->Allocate(1001, BufferUsage::kArena, "b");
    ASSERT_TRUE(a.ok()) << a.status();
    ASSERT_TRUE(b.ok()) << b.status();
    std::vector<uint8_t> src(1001);
    for (size_t i = 0; i < src.size(); ++i) src[i] = static_cast<uint8_t>(i * 7);
    ASSERT_TRUE(backend_->Upload(**a, 0, src.data(), src.size()).ok());
    ASSERT_TRUE(backend_->Copy(**a, 0, **b, 0, src.size()).ok());
    // Unaligned edges on both ends go through the fill shader.
    ASSERT_TRUE(backend_->Fill(**b, 3, 990, 0xab).ok());
    auto p1 = backend_->Flush();
    ASSERT_TRUE(p1.ok());
    ASSERT_TRUE(backend_->Wait(*p1).ok());
    std::vector<uint8_t> got(1001);
    ASSERT_TRUE(backend_->Download(**b, 0, got.data(), got.size()).ok());
    for (size_t i = 0; i < got.size(); ++i) {
      const uint8_t want = i >= 3 && i < 993 ? 0xab : src[i];
      ASSERT_EQ(got[i], want) << "byte " << i;
    }
    auto p2 = backend_->Flush();
    ASSERT_TRUE(p2.ok());
    EXPECT_GE(*p2, *p1);
  }
}

TEST_F(VulkanBackendTest, OutOfRangeIsAnError) {
  auto a = backend_->Allocate(64, BufferUsage::kArena, "small");
  ASSERT_TRUE(a.ok());
  std::vector<uint8_t> src(65);
  EXPECT_FALSE(backend_->Upload(**a, 0, src.data(), src.size()).ok());
  EXPECT_FALSE(backend_->Fill(**a, 60, 5, 0).ok());
}

TEST_F(VulkanBackendTest, HugeAllocationNamesTheLabelAndBytes) {
  auto a = backend_->Allocate(size_t{1} << 50, BufferUsage::kArena, "tensor 'huge'");
  ASSERT_FALSE(a.ok());
  EXPECT_THAT(a.status().message(), ::testing::HasSubstr("huge"));
}

TEST_F(VulkanBackendTest, Ops) {
  std::vector<OpCase> cases = {
      {"add", {In(kF32, {3, 4, 19}), In(kF32, {4, 19})}},
      {"silu", {In(kF16, {5, 33})}},
      {"gelu", {In(kF32, {7, 65}, -4, 4)}, {{"approximate", std::string("none")}}},
      {"rms_norm", {In(kF32, {3, 1024}), In(kF32, {1024})}},
      {"softmax", {In(kF32, {4, 300})}},
      {"linear", {In(kF32, {1, 256}), In(kF16, {96, 256})}},
      {"linear", {In(kF32, {1, 256}), In(kQ8, {64, 256})}},
      {"linear", {In(kF32, {70, 128}), In(kBF16, {65, 128}), In(kF32, {65})}},
      {"matmul", {In(kF32, {2, 33, 17}), In(kF32, {17, 9})}},
      {"flash_attn", {In(kF32, {1, 1, 8, 64}), In(kF16, {1, 300, 2, 64}), In(kF16, {1, 300, 2, 64})}},
      {"flash_attn",
       {In(kF32, {1, 40, 4, 32}), In(kF16, {1, 64, 2, 32}), In(kF16, {1, 64, 2, 32})},
       {{"causal", true}}},
      {"gated_delta_net",
       {In(kF32, {1, 4, 2, 32}), In(kF32, {1, 4, 2, 32}), In(kF32, {1, 4, 2, 32}), In(kF32, {1, 4, 2}, -2, -0.1),
        In(kF32, {1, 4, 2}, 0.1, 0.9)},
       {{"l2norm_qk", true}}},
  };
  uint32_t seed = 1;
  for (const OpCase& c : cases) EXPECT_TRUE(MatchesReference(*backend_, c, seed++));
}

// CPU devices (lavapipe, CI) run FA decode unsplit; KILN_VULKAN_FA_SPLIT_KEYS
// splits it there too, so the split path and flash_attn_merge.comp (a
// partial last split, two head groups, the mask, the sinks) are checked.
TEST_F(VulkanBackendTest, SplitKvDecode) {
  ::setenv("KILN_VULKAN_FA_SPLIT_KEYS", "128", 1);
  std::vector<OpCase> cases = {
      {"flash_attn", {In(kF32, {1, 1, 8, 64}), In(kF16, {1, 300, 1, 64}), In(kF16, {1, 300, 1, 64})}},
      {"flash_attn",
       {In(kF32, {1, 3, 4, 32}), In(kF16, {1, 260, 2, 32}), In(kF16, {1, 260, 2, 32}), In(kF16, {1, 1, 3, 260}),
        In(kF32, {4})}},
  };
  uint32_t seed = 100;
  for (const OpCase& c : cases) EXPECT_TRUE(MatchesReference(*backend_, c, seed++));
  ::unsetenv("KILN_VULKAN_FA_SPLIT_KEYS");
}

// The specialized decode kernel (the H200's), split on lavapipe too: a
// partial last split, the causal limit of 3 rows over 2 batch rows, two
// head groups, a mask with sinks, and more splits than the merge loads at
// once.
TEST_F(VulkanBackendTest, SpecializedSplitKvDecode) {
  ::setenv("KILN_VULKAN_FA_SPLIT_KEYS", "128", 1);
  auto be = Specialized();
  ASSERT_TRUE(be.ok()) << be.status();
  std::vector<OpCase> cases = {
      {"flash_attn", {In(kF32, {1, 1, 8, 64}), In(kF16, {1, 700, 1, 64}), In(kF16, {1, 700, 1, 64})}},
      {"flash_attn",
       {In(kF32, {2, 3, 4, 32}), In(kF16, {2, 530, 2, 32}), In(kF16, {2, 530, 2, 32})},
       {{"causal", true}}},
      {"flash_attn",
       {In(kF32, {1, 3, 4, 32}), In(kF16, {1, 260, 2, 32}), In(kF16, {1, 260, 2, 32}), In(kF16, {1, 1, 3, 260}),
        In(kF32, {4})}},
      // 70 splits: the merge's splits past the 64 it loads up front.
      {"flash_attn", {In(kF32, {1, 1, 2, 32}), In(kF16, {1, 8960, 1, 32}), In(kF16, {1, 8960, 1, 32})}},
  };
  uint32_t seed = 300;
  for (const OpCase& c : cases) EXPECT_TRUE(MatchesReference(**be, c, seed++));
  ::unsetenv("KILN_VULKAN_FA_SPLIT_KEYS");
}

// gated_delta_net_decode.comp runs only in specialized builds, which CPU
// devices (lavapipe, CI) do not use by default: one backend with
// specialize=on checks it there (state in and out, KDA, a column block
// past V, f16 q/k, grouped and tiled head maps, several tokens).
TEST_F(VulkanBackendTest, SpecializedGdnDecode) {
  auto be = Specialized();
  ASSERT_TRUE(be.ok()) << be.status();
  std::vector<OpCase> cases = {
      {"gated_delta_net",
       {In(kF32, {1, 1, 2, 32}), In(kF32, {1, 1, 2, 32}), In(kF32, {1, 1, 4, 20}), In(kF32, {1, 1, 4}, -2, -0.1),
        In(kF32, {1, 1, 4}, 0.1, 0.9), In(kF32, {1, 4, 32, 20})},
       {{"l2norm_qk", true}}},
      {"gated_delta_net",
       {In(kF16, {2, 3, 1, 16}), In(kF16, {2, 3, 1, 16}), In(kF32, {2, 3, 2, 24}), In(kF32, {2, 3, 2, 16}, -2, -0.1),
        In(kF32, {2, 3, 2}, 0.1, 0.9), In(kF32, {2, 2, 16, 24})}},
      {"gated_delta_net",
       {In(kF32, {1, 2, 2, 24}), In(kF32, {1, 2, 2, 24}), In(kF32, {1, 2, 4, 8}), In(kF32, {1, 2, 4}, -2, -0.1),
        In(kF32, {1, 2, 4}, 0.1, 0.9)},
       {{"l2norm_qk", true}, {"head_map", std::string("tiled")}}},
  };
  uint32_t seed = 200;
  for (const OpCase& c : cases) EXPECT_TRUE(MatchesReference(**be, c, seed++));
}

}  // namespace
}  // namespace kiln
