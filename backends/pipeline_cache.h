// PipelineCache: the in-memory layer of a backend's pipelines. It creates the
// pipeline for a key once, on first use, even with several threads asking at
// once; later requests get the same pipeline. The on-disk layer (shared by
// the GPU backends) is DiskCache in disk_cache.h; a backend's factory
// consults it and says, through PipelineOrigin, when it found the pipeline
// there, so the stats tell compiles from disk loads.
#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/hash/hash.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/types/span.h"
#include "backends/backend.h"

namespace kiln {

// What makes one pipeline different from another.
struct PipelineKey {
  std::string kernel;            // kernel / shader / CPU specialization name
  uint64_t source_hash = 0;      // StableHash64 of the source or SPIR-V; 0: none (CPU)
  std::vector<int64_t> values;   // specialization constants / -D values, in the kernel's fixed order
  std::array<int, 3> workgroup{0, 0, 0};  // local size; zeros when the kernel has none

  // A readable, unique form for logs and traces:
  // "flash_attn[128,64,1] wg=64x1x1 src=0123456789abcdef"; the parts that are
  // empty or zero are left out, so a CPU key is its kernel name.
  std::string Canonical() const {
    std::string s = kernel;
    if (!values.empty()) absl::StrAppend(&s, "[", absl::StrJoin(values, ","), "]");
    if (workgroup != std::array<int, 3>{0, 0, 0}) {
      absl::StrAppend(&s, " wg=", workgroup[0], "x", workgroup[1], "x", workgroup[2]);
    }
    if (source_hash) absl::StrAppend(&s, " src=", absl::StrFormat("%016x", source_hash));
    return s;
  }

  friend bool operator==(const PipelineKey&, const PipelineKey&) = default;
  template <typename H>
  friend H AbslHashValue(H h, const PipelineKey& k) {
    return H::combine(std::move(h), k.kernel, k.source_hash, k.values, k.workgroup);
  }
};

// Filled in by a factory: whether the pipeline came from the on-disk cache
// rather than a real compile.
struct PipelineOrigin {
  bool from_disk = false;
};

// Failures that may pass (out of memory, a busy or lost device, a timeout):
// not remembered, the next request for the key tries again. Every other
// error (InvalidArgument, Unimplemented, Internal, ...) is permanent and
// returned again for the key without a new attempt.
inline bool IsTransientPipelineError(const absl::Status& s) {
  switch (s.code()) {
    case absl::StatusCode::kResourceExhausted:
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kDeadlineExceeded:
    case absl::StatusCode::kAborted:
      return true;
    default:
      return false;
  }
}

template <typename Pipeline>
class PipelineCache {
 public:
  using Factory = std::function<absl::StatusOr<std::unique_ptr<Pipeline>>(PipelineOrigin& origin)>;
  struct Request {
    PipelineKey key;
    Factory make;
  };

  // The pipeline for `key`, made by `make` if no earlier request made it.
  // Callers asking for a key while it is being made wait for that attempt
  // and share its result (a transient failure included).
  absl::StatusOr<const Pipeline*> GetOrCreate(const PipelineKey& key, const Factory& make) {
    std::shared_ptr<Entry> entry = EntryFor(key);
    std::unique_lock<std::mutex> lock(entry->mu);
    if (entry->creating) {
      entry->cv.wait(lock, [&] { return !entry->creating; });
      if (!entry->value) return entry->last_transient;  // the attempt we waited on may pass later
    }
    if (entry->value) {
      CountHit();
      return Result(*entry->value);
    }
    entry->creating = true;
    lock.unlock();

    PipelineOrigin origin;
    const auto t0 = std::chrono::steady_clock::now();
    absl::StatusOr<std::unique_ptr<Pipeline>> made = make(origin);
    const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    if (made.ok() && !*made) made = absl::InternalError(absl::StrCat(key.Canonical(), ": the factory made nothing"));
    CountCreation(made.ok(), origin.from_disk, ms);

    lock.lock();
    entry->creating = false;
    absl::StatusOr<const Pipeline*> result = Result(made);
    if (!made.ok() && IsTransientPipelineError(made.status())) {
      entry->last_transient = made.status();
    } else {
      entry->value = std::move(made);
    }
    entry->cv.notify_all();
    return result;
  }

  // The same for a factory that never uses the disk (the CPU backend).
  template <typename F>
    requires std::is_invocable_r_v<absl::StatusOr<std::unique_ptr<Pipeline>>, F>
  absl::StatusOr<const Pipeline*> GetOrCreate(const PipelineKey& key, F&& make) {
    return GetOrCreate(key, Factory([&make](PipelineOrigin&) { return make(); }));
  }

  // Every request's pipeline, in the requests' order: the factories of keys
  // not in memory yet run in parallel on up to `max_threads` threads (the
  // caller's included; <= 0: one per hardware thread). A key asked several
  // times is made once; its repeats count as cache hits.
  std::vector<absl::StatusOr<const Pipeline*>> GetOrCreateAll(absl::Span<const Request> requests,
                                                              int max_threads) {
    std::vector<absl::StatusOr<const Pipeline*>> results(requests.size(), absl::UnknownError("not made"));
    absl::flat_hash_map<PipelineKey, size_t> first;
    std::vector<size_t> distinct;
    for (size_t i = 0; i < requests.size(); ++i) {
      if (first.emplace(requests[i].key, i).second) distinct.push_back(i);
    }
    if (max_threads <= 0) max_threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    const size_t threads = std::min(distinct.size(), static_cast<size_t>(max_threads));
    std::atomic<size_t> next{0};
    auto work = [&] {
      for (size_t j; (j = next.fetch_add(1)) < distinct.size();) {
        const Request& r = requests[distinct[j]];
        results[distinct[j]] = GetOrCreate(r.key, r.make);
      }
    };
    std::vector<std::thread> pool;
    for (size_t t = 1; t < threads; ++t) pool.emplace_back(work);
    work();
    for (std::thread& t : pool) t.join();
    for (size_t i = 0; i < requests.size(); ++i) {
      const size_t f = first.at(requests[i].key);
      if (f == i) continue;
      results[i] = results[f];
      if (results[i].ok()) CountHit();
    }
    return results;
  }

  PipelineStats stats() const {
    std::lock_guard<std::mutex> lock(mu_);
    return stats_;
  }

  // Creations that failed (each attempt of a transient failure counts).
  int64_t failed() const {
    std::lock_guard<std::mutex> lock(mu_);
    return failed_;
  }

  // Keys asked for so far (transiently failed ones included).
  size_t size() const {
    std::lock_guard<std::mutex> lock(mu_);
    return entries_.size();
  }

 private:
  struct Entry {
    std::mutex mu;
    std::condition_variable cv;
    bool creating = false;
    // Set once made, or once failed permanently; never changes after.
    std::optional<absl::StatusOr<std::unique_ptr<Pipeline>>> value;
    absl::Status last_transient;
  };

  static absl::StatusOr<const Pipeline*> Result(const absl::StatusOr<std::unique_ptr<Pipeline>>& v) {
    if (!v.ok()) return v.status();
    return v->get();
  }

  std::shared_ptr<Entry> EntryFor(const PipelineKey& key) {
    std::lock_guard<std::mutex> lock(mu_);
    auto& slot = entries_[key];
    if (!slot) slot = std::make_shared<Entry>();
    return slot;
  }

  void CountHit() {
    std::lock_guard<std::mutex> lock(mu_);
    ++stats_.cache_hits;
  }

  void CountCreation(bool ok, bool from_disk, double ms) {
    std::lock_guard<std::mutex> lock(mu_);
    if (!ok) ++failed_;
    if (from_disk) {
      stats_.disk_hits += ok;
      stats_.disk_ms += ms;
    } else {
      stats_.created += ok;
      stats_.compile_ms += ms;
    }
  }

  mutable std::mutex mu_;
  absl::flat_hash_map<PipelineKey, std::shared_ptr<Entry>> entries_;
  PipelineStats stats_;
  int64_t failed_ = 0;
};

}  // namespace kiln
