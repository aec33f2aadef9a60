// PipelineCache: creates the pipeline for a key once, on first use, even with
// several threads asking at once; later requests get the same pipeline.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include "absl/base/call_once.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "backends/backend.h"

namespace kiln {

// (kernel, specialization values) -> "kernel[v0,v1,...]".
inline std::string PipelineKey(absl::string_view kernel, std::initializer_list<int64_t> values) {
  return absl::StrCat(kernel, "[", absl::StrJoin(values, ","), "]");
}

template <typename Pipeline>
class PipelineCache {
 public:
  using Factory = std::function<absl::StatusOr<std::unique_ptr<Pipeline>>()>;

  // The pipeline for `key`, made by `make` if this is the first request.
  // A failed creation is remembered: the same error is returned again.
  absl::StatusOr<const Pipeline*> GetOrCreate(const std::string& key, const Factory& make) {
    std::shared_ptr<Entry> entry;
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto& slot = entries_[key];
      if (!slot) slot = std::make_shared<Entry>();
      entry = slot;
    }
    bool made = false;
    absl::call_once(entry->once, [&] {
      const auto t0 = std::chrono::steady_clock::now();
      entry->value = make();
      const double ms =
          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
      std::lock_guard<std::mutex> lock(mu_);
      ++stats_.created;
      stats_.compile_ms += ms;
      made = true;
    });
    if (!made) {
      std::lock_guard<std::mutex> lock(mu_);
      ++stats_.cache_hits;
    }
    if (!entry->value.ok()) return entry->value.status();
    return entry->value->get();
  }

  // For backends whose factory found the pipeline in the on-disk cache.
  void RecordDiskHit() {
    std::lock_guard<std::mutex> lock(mu_);
    ++stats_.disk_hits;
  }

  PipelineStats stats() const {
    std::lock_guard<std::mutex> lock(mu_);
    return stats_;
  }

  size_t size() const {
    std::lock_guard<std::mutex> lock(mu_);
    return entries_.size();
  }

 private:
  struct Entry {
    absl::once_flag once;
    absl::StatusOr<std::unique_ptr<Pipeline>> value = absl::UnknownError("not created");
  };
  mutable std::mutex mu_;
  absl::flat_hash_map<std::string, std::shared_ptr<Entry>> entries_;
  PipelineStats stats_;
};

}  // namespace kiln
