// PipelineCache: typed keys, once-per-key creation under concurrency,
// permanent vs transient failures, stats that tell compiles from disk loads,
// and the parallel batch of GetOrCreateAll.
#include "backends/pipeline_cache.h"

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace kiln {
namespace {

using Result = absl::StatusOr<std::unique_ptr<int>>;
using Cache = PipelineCache<int>;

PipelineKey Key(int64_t v, uint64_t source = 0) {
  return PipelineKey{.kernel = "fa", .source_hash = source, .values = {v, 64}, .workgroup = {64, 1, 1}};
}

TEST(PipelineKey, CanonicalIsReadableAndLeavesOutEmptyParts) {
  EXPECT_EQ(Key(128, 0xabc).Canonical(), "fa[128,64] wg=64x1x1 src=0000000000000abc");
  EXPECT_EQ(PipelineKey{.kernel = "add[f32]"}.Canonical(), "add[f32]");
}

TEST(PipelineKey, EveryFieldTellsKeysApart) {
  const PipelineKey k = Key(128, 7);
  PipelineKey other = k;
  other.kernel = "fb";
  EXPECT_NE(k, other);
  other = k;
  other.source_hash = 8;
  EXPECT_NE(k, other);
  other = k;
  other.values = {128, 65};
  EXPECT_NE(k, other);
  other = k;
  other.workgroup = {32, 1, 1};
  EXPECT_NE(k, other);
  EXPECT_EQ(k, Key(128, 7));
  EXPECT_EQ(absl::HashOf(k), absl::HashOf(Key(128, 7)));
}

TEST(PipelineCache, ManyThreadsSameAndDifferentKeysEachCreatedOnce) {
  Cache cache;
  constexpr int kKeys = 5, kThreads = 16, kRounds = 20;
  std::atomic<int> calls[kKeys] = {};
  std::vector<std::vector<const int*>> got(kThreads, std::vector<const int*>(kKeys, nullptr));
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int r = 0; r < kRounds; ++r) {
        const int k = (t + r) % kKeys;
        auto p = cache.GetOrCreate(Key(k), [&, k]() -> Result {
          ++calls[k];
          std::this_thread::sleep_for(std::chrono::milliseconds(5));
          return std::make_unique<int>(k);
        });
        ASSERT_TRUE(p.ok()) << p.status();
        EXPECT_EQ(**p, k);
        if (got[t][k]) {
          EXPECT_EQ(got[t][k], *p);
        }
        got[t][k] = *p;
      }
    });
  }
  for (auto& t : threads) t.join();
  for (int k = 0; k < kKeys; ++k) EXPECT_EQ(calls[k].load(), 1) << "key " << k;
  for (int t = 1; t < kThreads; ++t) EXPECT_EQ(got[t], got[0]);
  const PipelineStats s = cache.stats();
  EXPECT_EQ(s.created, kKeys);
  EXPECT_EQ(s.cache_hits, kThreads * kRounds - kKeys);
  EXPECT_EQ(s.disk_hits, 0);
  EXPECT_EQ(cache.size(), kKeys);
}

TEST(PipelineCache, PermanentFailureIsRemembered) {
  Cache cache;
  int calls = 0;
  auto make = [&]() -> Result {
    ++calls;
    return absl::InvalidArgumentError("bad shader");
  };
  EXPECT_EQ(cache.GetOrCreate(Key(1), make).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(cache.GetOrCreate(Key(1), make).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(cache.stats().created, 0);
  EXPECT_EQ(cache.failed(), 1);
}

TEST(PipelineCache, TransientFailuresAreRetried) {
  for (absl::StatusCode code : {absl::StatusCode::kResourceExhausted, absl::StatusCode::kUnavailable,
                                absl::StatusCode::kDeadlineExceeded, absl::StatusCode::kAborted}) {
    Cache cache;
    int calls = 0;
    auto make = [&]() -> Result {
      if (++calls < 3) return absl::Status(code, "out of device memory");
      return std::make_unique<int>(7);
    };
    EXPECT_EQ(cache.GetOrCreate(Key(1), make).status().code(), code);
    EXPECT_EQ(cache.GetOrCreate(Key(1), make).status().code(), code);
    auto p = cache.GetOrCreate(Key(1), make);
    ASSERT_TRUE(p.ok()) << p.status();
    EXPECT_EQ(**p, 7);
    EXPECT_EQ(*cache.GetOrCreate(Key(1), make), *p);
    EXPECT_EQ(calls, 3);
    const PipelineStats s = cache.stats();
    EXPECT_EQ(s.created, 1);
    EXPECT_EQ(cache.failed(), 2);
    EXPECT_EQ(s.cache_hits, 1);
  }
}

TEST(PipelineCache, WaitersShareATransientFailureThenTheNextRequestRetries) {
  Cache cache;
  std::atomic<int> calls{0};
  auto make = [&]() -> Result {
    if (++calls == 1) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));  // let the others wait on it
      return absl::ResourceExhaustedError("oom");
    }
    return std::make_unique<int>(1);
  };
  std::vector<std::thread> threads;
  std::atomic<int> failed{0};
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&] { failed += !cache.GetOrCreate(Key(1), make).ok(); });
    if (i == 0) std::this_thread::sleep_for(std::chrono::milliseconds(10));  // the first one creates
  }
  for (auto& t : threads) t.join();
  EXPECT_GE(failed.load(), 1);
  EXPECT_TRUE(cache.GetOrCreate(Key(1), make).ok());
  EXPECT_EQ(calls.load(), 2);  // the failed attempt, then one that worked
  EXPECT_EQ(cache.stats().created, 1);
}

TEST(PipelineCache, CreatedCountsOnlyCompilesNotDiskLoads) {
  Cache cache;
  auto from_disk = [](PipelineOrigin& origin) -> Result {
    origin.from_disk = true;
    return std::make_unique<int>(1);
  };
  auto compiled = [](PipelineOrigin&) -> Result { return std::make_unique<int>(2); };
  ASSERT_TRUE(cache.GetOrCreate(Key(1), from_disk).ok());
  ASSERT_TRUE(cache.GetOrCreate(Key(2), compiled).ok());
  ASSERT_TRUE(cache.GetOrCreate(Key(1), compiled).ok());  // in memory now
  const PipelineStats s = cache.stats();
  EXPECT_EQ(s.created, 1);
  EXPECT_EQ(s.disk_hits, 1);
  EXPECT_EQ(s.cache_hits, 1);
  EXPECT_GE(s.compile_ms, 0);
  EXPECT_GE(s.disk_ms, 0);
}

TEST(PipelineCache, GetOrCreateAllCompilesDistinctKeysInParallel) {
  Cache cache;
  constexpr int kKeys = 8;
  std::atomic<int> running{0}, most{0};
  std::atomic<int> calls[kKeys] = {};
  std::vector<Cache::Request> requests;
  for (int rep = 0; rep < 3; ++rep) {
    for (int k = 0; k < kKeys; ++k) {
      requests.push_back({Key(k), [&, k](PipelineOrigin&) -> Result {
                            ++calls[k];
                            const int now = ++running;
                            for (int m = most; m < now && !most.compare_exchange_weak(m, now);) {
                            }
                            std::this_thread::sleep_for(std::chrono::milliseconds(30));
                            --running;
                            return std::make_unique<int>(k);
                          }});
    }
  }
  auto results = cache.GetOrCreateAll(requests, 4);
  ASSERT_EQ(results.size(), requests.size());
  for (size_t i = 0; i < results.size(); ++i) {
    ASSERT_TRUE(results[i].ok()) << results[i].status();
    EXPECT_EQ(**results[i], static_cast<int>(i % kKeys));
    EXPECT_EQ(*results[i], *results[i % kKeys]);
  }
  for (int k = 0; k < kKeys; ++k) EXPECT_EQ(calls[k].load(), 1);
  EXPECT_GT(most.load(), 1);   // ran side by side
  EXPECT_LE(most.load(), 4);   // within max_threads
  PipelineStats s = cache.stats();
  EXPECT_EQ(s.created, kKeys);
  EXPECT_EQ(s.cache_hits, 2 * kKeys);

  // A second batch finds everything in memory.
  results = cache.GetOrCreateAll(requests, 4);
  for (auto& r : results) EXPECT_TRUE(r.ok());
  s = cache.stats();
  EXPECT_EQ(s.created, kKeys);
  EXPECT_EQ(s.cache_hits, 2 * kKeys + 3 * kKeys);
}

TEST(PipelineCache, GetOrCreateAllReportsEachKeysOwnError) {
  Cache cache;
  std::vector<Cache::Request> requests = {
      {Key(1), [](PipelineOrigin&) -> Result { return std::make_unique<int>(1); }},
      {Key(2), [](PipelineOrigin&) -> Result { return absl::UnimplementedError("no"); }},
      {Key(2), [](PipelineOrigin&) -> Result { return std::make_unique<int>(2); }},  // a repeat
  };
  auto results = cache.GetOrCreateAll(requests, 0);
  ASSERT_EQ(results.size(), 3u);
  EXPECT_TRUE(results[0].ok());
  EXPECT_EQ(results[1].status().code(), absl::StatusCode::kUnimplemented);
  EXPECT_EQ(results[2].status().code(), absl::StatusCode::kUnimplemented);
  EXPECT_TRUE(cache.GetOrCreateAll({}, 4).empty());
}

TEST(PipelineCache, AFactoryThatMakesNothingIsAnError) {
  Cache cache;
  auto p = cache.GetOrCreate(Key(1), []() -> Result { return std::unique_ptr<int>(); });
  EXPECT_EQ(p.status().code(), absl::StatusCode::kInternal);
  EXPECT_THAT(p.status().message(), ::testing::HasSubstr("fa[1,64]"));
}

}  // namespace
}  // namespace kiln
