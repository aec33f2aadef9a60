// A prepared graph re-runs without allocating: Run() does no placement,
// allocation or pipeline lookup. Checked by counting every operator new
// while Run() is called (this file replaces the global operator new of the
// scheduler test binary; it only counts, then mallocs as usual).
// GCC inlines the replacement below and then mistakes its free() for a
// mismatch with the malloc() it pairs with.
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

#include <atomic>
#include <cstdlib>
#include <map>
#include <memory>
#include <new>
#include <string>

#include "backends/registry.h"
#include "graph/builder.h"
#include "gtest/gtest.h"
#include "tests/scheduler/scheduler_test_util.h"
#include "scheduler/executor.h"
#include "tests/scheduler/partial_backend.h"

namespace {
std::atomic<bool> counting{false};
std::atomic<int64_t> allocations{0};
}  // namespace

// Sanitizers bring their own operator new; there, this test is skipped.
#if defined(__SANITIZE_ADDRESS__)
#define KILN_COUNTS_ALLOCATIONS 0
#else
#define KILN_COUNTS_ALLOCATIONS 1
void* operator new(std::size_t n) {
  if (counting.load(std::memory_order_relaxed)) allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t n) { return ::operator new(n); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
#endif

namespace kiln {
namespace {

using test::Cpu;
// neg -> add -> neg -> mul: on {partial(add, mul), cpu} without merging, four
// splits and three transfers.
absl::StatusOr<Graph> SmallGraph() {
  GraphBuilder b("small");
  Tensor x = b.Input("x", DType::kF32, {4, 16});
  Tensor t = b.Op1("neg", {x});
  t = b.Op1("add", {t, x});
  t = b.Op1("neg", {t});
  b.Output(b.Op1("mul", {t, t}, {}, "y"));
  return b.Build();
}

int64_t AllocationsInRuns(Executable& e, int runs) {
  allocations = 0;
  counting = true;
  for (int i = 0; i < runs; ++i) {
    if (!e.Run().ok()) {
      counting = false;
      ADD_FAILURE() << "run failed";
      return -1;
    }
  }
  counting = false;
  return allocations.load();
}

TEST(RunOverheadTest, RepeatRunsDoNotAllocate) {
  if (!KILN_COUNTS_ALLOCATIONS) GTEST_SKIP() << "allocations are not counted in sanitizer builds";
  auto g = SmallGraph();
  ASSERT_TRUE(g.ok()) << g.status();
  ExecutableOptions options;
  options.placement.merge_islands = false;
  for (bool two : {false, true}) {
    SCOPED_TRACE(two ? "partial + cpu" : "cpu");
    std::vector<std::shared_ptr<Backend>> backends;
    // Run at once (not queued): the test backend's queue would allocate.
    test::PartialBackend::Options immediate;
    immediate.deferred = false;
    if (two) backends.push_back(test::PartialBackend::Create({"add", "mul"}, "partial", immediate));
    backends.push_back(Cpu());
    auto e = Executable::Create(*g, backends, options);
    ASSERT_TRUE(e.ok()) << e.status();
    EXPECT_EQ((*e)->placement().splits.size(), two ? 4u : 1u);
    std::vector<float> x(64, 0.5f);
    ASSERT_TRUE((*e)->SetInputBytes("x", x.data(), x.size() * 4).ok());
    ASSERT_TRUE((*e)->Run().ok());  // the first run may set up threads
    EXPECT_EQ(AllocationsInRuns(**e, 10), 0);
    // Profiling reuses its buffers too.
    (*e)->set_profiling(true);
    ASSERT_TRUE((*e)->Run().ok());
    EXPECT_EQ(AllocationsInRuns(**e, 10), 0);
    // The counter works: a traced run records events.
    (*e)->set_tracing(true);
    EXPECT_GT(AllocationsInRuns(**e, 10), 0);
  }
}

}  // namespace
}  // namespace kiln
