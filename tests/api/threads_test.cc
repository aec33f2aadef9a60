// What kiln.h promises about threads: backends shared by models running on
// several threads; one entry's calls serialized; runs of one model's entries
// (which share its states) excluding each other; read-only queries of a
// prepared model from any thread; Wait on another thread than Submit.
//
// Each check counts something that a missing or wrong lock loses: runs that
// fail or are not counted, state updates that are lost (a state's next value
// here is computed into the arena and copied into the state after the node,
// so two unlocked runs on one state read the same old value).
#include <atomic>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kiln/kiln.h"
#include "tests/api/api_test_util.h"

namespace kiln::api {
namespace {

using test::AddConstant;
using test::Counter;
using test::Cpu;
using test::Floats;

constexpr int kThreads = 4;

// y = x @ w^T, with w seeded per model: each thread's results differ.
GraphBuilder Linear(int64_t n, float seed) {
  GraphBuilder b("linear");
  Tensor x = b.Input("x", DType::kF32, {1, n});
  std::vector<float> w(n * n);
  for (int64_t i = 0; i < n * n; ++i) w[i] = static_cast<float>((i * 7 + static_cast<int64_t>(seed * 13)) % 11) - 5;
  Tensor wt = b.Constant("w", DType::kF32, {n, n}, w.data(), w.size() * 4);
  Tensor y = b.Op1("linear", {x, wt});
  b.Rename(y, "y");
  b.Output(y);
  return b;
}

TEST(ApiThreadsTest, ModelsOnSharedBackendsRunConcurrently) {
  constexpr int64_t n = 256;
  constexpr int kRuns = 30;
  Backend cpu = Cpu();
  // What each thread's model must give, computed alone first.
  std::vector<std::vector<float>> expected(kThreads);
  std::vector<float> x(n);
  for (int64_t i = 0; i < n; ++i) x[i] = static_cast<float>(i % 5) - 2;
  for (int t = 0; t < kThreads; ++t) {
    auto m = Model::FromBuilder(Linear(n, static_cast<float>(t)));
    ASSERT_TRUE(m.ok() && m->Prepare({cpu}).ok());
    Entry& e = **m->entry();
    ASSERT_TRUE(e.SetInput("x", DType::kF32, {1, n}, x.data(), n * 4).ok());
    ASSERT_TRUE(e.Run().ok());
    expected[t] = Floats(*e.GetOutput("y"));
  }
  std::atomic<int> mismatches{0}, failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      // Each thread loads and prepares its own model on the shared backend.
      auto m = Model::FromBuilder(Linear(n, static_cast<float>(t)));
      if (!m.ok() || !m->Prepare({cpu}).ok()) {
        ++failures;
        return;
      }
      Entry& e = **m->entry();
      for (int r = 0; r < kRuns; ++r) {
        std::vector<float> y(n);
        if (!e.SetInput("x", DType::kF32, {1, n}, x.data(), n * 4).ok() || !e.Run().ok() ||
            !e.ReadOutput("y", y.data(), n * 4).ok()) {
          ++failures;
          continue;
        }
        if (y != expected[t]) ++mismatches;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures, 0);
  EXPECT_EQ(mismatches, 0);
  EXPECT_GT(cpu.pipeline_stats().reused + cpu.pipeline_stats().created, -1);  // readable while shared
}

TEST(ApiThreadsTest, OneEntryFromSeveralThreadsIsSerialized) {
  constexpr int kRuns = 50;
  constexpr int64_t n = 1 << 20;  // big enough that unlocked runs overlap
  auto m = Model::FromBuilder(AddConstant(n));
  ASSERT_TRUE(m.ok());
  PrepareOptions options;
  options.profile = true;
  ASSERT_TRUE(m->Prepare({Cpu()}, options).ok());
  Entry& e = **m->entry();
  std::vector<float> x(n, 1);
  ASSERT_TRUE(e.SetInput("x", DType::kF32, {n}, x.data(), x.size() * 4).ok());
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int r = 0; r < kRuns; ++r) {
        if (!e.Run().ok()) ++failures;
        if (r % 10 == 0 && !e.profile().ok()) ++failures;  // read while others run
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures, 0);
  EXPECT_EQ(e.runs(), kThreads * kRuns);
  EXPECT_EQ(e.profile()->nodes[0].count, kThreads * kRuns);
  EXPECT_EQ(Floats(*e.GetOutput("y"))[7], 8.0f);
}

TEST(ApiThreadsTest, RunsOfEntriesSharingStatesExcludeEachOther) {
  constexpr int kRuns = 150;
  constexpr int64_t n = 1 << 15;  // big enough that unlocked runs overlap
  auto m = Model::FromBuilder(Counter(n, 1, 1, "up"), "a");
  ASSERT_TRUE(m.ok());
  ASSERT_TRUE(m->AddEntry("b", Counter(n, 1, 1, "also_up")).ok());
  ASSERT_TRUE(m->Prepare({Cpu()}).ok());
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      Entry& e = **m->entry(t % 2 ? "a" : "b");
      for (int r = 0; r < kRuns; ++r) {
        // Alternate blocking runs and Submit + Wait.
        absl::Status st = r % 2 ? e.Run() : e.Submit();
        if (st.ok() && r % 2 == 0) st = e.Wait();
        if (!st.ok()) ++failures;
      }
    });
  }
  // Read-only queries and state reads meanwhile.
  std::thread reader([&] {
    for (int r = 0; r < 50; ++r) {
      if (m->entries().size() != 2 || m->states().size() != 1 || !(*m->entry("a"))->plan().ok() ||
          !m->ReadState("s").ok()) {
        ++failures;
      }
    }
  });
  for (auto& th : threads) th.join();
  reader.join();
  // Two threads share each entry here, so entry locks alone would not do:
  // every update must have read the one before.
  EXPECT_EQ(failures, 0);
  auto s = m->ReadState("s");
  ASSERT_TRUE(s.ok());
  const std::vector<float> v = Floats(*s);
  EXPECT_EQ(v.front(), static_cast<float>(kThreads * kRuns));
  EXPECT_EQ(v.back(), static_cast<float>(kThreads * kRuns));
}

TEST(ApiThreadsTest, WaitOnAnotherThread) {
  auto m = Model::FromBuilder(Counter(16, 1, 1));
  ASSERT_TRUE(m.ok() && m->Prepare({Cpu()}).ok());
  Entry& e = **m->entry();
  for (int r = 0; r < 20; ++r) {
    ASSERT_TRUE(e.Submit().ok());
    absl::Status waited;
    std::thread([&] { waited = e.Wait(); }).join();
    ASSERT_TRUE(waited.ok()) << waited;
  }
  EXPECT_EQ(Floats(*m->ReadState("s"))[0], 20.0f);
}

}  // namespace
}  // namespace kiln::api
