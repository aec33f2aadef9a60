// The CPU backend: host buffers, the kernel table behind supports(), pipelines
// (kernel specializations) through a PipelineCache, and in-order execution.
#include "backends/cpu/cpu_backend.h"

#include <omp.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <string_view>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "backends/cpu/cpu_features.h"
#include "backends/cpu/cpu_kernel.h"
#include "backends/cpu/kernel_table.h"
#include "backends/cpu/kernel_util.h"
#include "backends/pipeline_cache.h"
#include "hwy/targets.h"
#include "ops/op_schema.h"


namespace kiln {
namespace {

using cpu::CpuPipeline;

constexpr size_t kAlignment = 64;
// From this size on, memory comes from mmap: page aligned, and zeroed by the
// kernel page by page on first touch instead of by a memset up front.
constexpr size_t kMapThreshold = size_t{1} << 20;
// KILN_CPU_HUGEPAGES=0: plain 4 KiB pages (to compare).
bool HugePagesWanted() {
  static const bool on = [] {
    const char* e = std::getenv("KILN_CPU_HUGEPAGES");
    return !(e && std::string_view(e) == "0");
  }();
  return on;
}

// Host memory: owned (64-byte aligned, zeroed) or wrapped caller memory.
class CpuBuffer : public Buffer {
 public:
  enum class Owner { kHeap, kMapped, kCaller };
  CpuBuffer(std::byte* data, size_t size, size_t mapped_bytes, Owner owner)
      : data_(data), size_(size), mapped_bytes_(mapped_bytes), owner_(owner) {}
  ~CpuBuffer() override {
    if (owner_ == Owner::kHeap) std::free(data_);
    if (owner_ == Owner::kMapped) munmap(data_, mapped_bytes_);
  }
  size_t size() const override { return size_; }
  std::byte* host_data() const override { return data_; }

 private:
  std::byte* data_;
  size_t size_;
  size_t mapped_bytes_;
  Owner owner_;
};

// One node made ready: its pipeline and the views of its tensors.
struct Step {
  int node = -1;
  const Node* n = nullptr;
  const CpuPipeline* pipeline = nullptr;
  std::vector<TensorView> inputs, outputs;
};

class CpuPreparedSplit : public PreparedSplit {
 public:
  std::vector<Step> steps;
  std::vector<NodeTiming> timings;  // of the last timed Execute
};

const CpuBuffer* AsCpu(const Buffer& b) { return dynamic_cast<const CpuBuffer*>(&b); }

std::string CpuModelName() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (absl::StartsWith(line, "model name")) {
      const size_t colon = line.find(':');
      if (colon != std::string::npos) {
        return std::string(absl::StripAsciiWhitespace(absl::string_view(line).substr(colon + 1)));
      }
    }
  }
  return "unknown CPU";
}

DeviceInfo MakeDeviceInfo(int threads) {
  DeviceInfo d;
  d.backend = "cpu";
  d.kind = "cpu";
  d.name = CpuModelName();
  d.id = absl::StrCat("cpu:", d.name);
  const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGE_SIZE);
  if (pages > 0 && page > 0) d.memory_bytes = static_cast<uint64_t>(pages) * page;
  const long cores = sysconf(_SC_NPROCESSORS_ONLN);
  d.compute_units = cores > 0 ? static_cast<int>(cores) : 1;
  d.subgroup_size = cpu::SimdF32Lanes();
  d.driver = absl::StrCat("kiln GEMM (Highway), OpenMP ", _OPENMP);
  std::string simd = "simd:";
  for (int64_t bit = 1; bit != 0 && bit <= hwy::SupportedTargets(); bit <<= 1) {
    if (hwy::SupportedTargets() & bit) absl::StrAppend(&simd, simd.size() > 5 ? "," : "", hwy::TargetName(bit));
  }
  d.features.push_back(simd);
  d.features.push_back(absl::StrCat("threads:", threads));
  d.features.push_back(absl::StrCat("openmp:", _OPENMP));
  return d;
}

class CpuBackend : public Backend {
 public:
  explicit CpuBackend(int threads) : threads_(threads), device_(MakeDeviceInfo(threads)) {}

  absl::string_view name() const override { return "cpu"; }
  const DeviceInfo& device() const override { return device_; }
  BackendLimits limits() const override {
    BackendLimits l;
    l.buffer_alignment = kAlignment;
    // Kernels index by element and load unaligned: malloc's alignment is plenty.
    l.host_import_alignment = 16;
    return l;
  }

  Support supports(const Graph& graph, const Node& node) const override {
    const cpu::CpuKernelEntry* entry = cpu::FindCpuKernel(node.op);
    if (!entry) return Support::No(absl::StrCat("no CPU kernel for op ", node.op));
    // Kernels index f32/f16/bf16/i32 data by element: views must stay aligned.
    for (const std::vector<int>* ids : {&node.inputs, &node.outputs}) {
      for (int id : *ids) {
        if (id < 0 || id >= static_cast<int>(graph.tensors.size())) continue;
        const TensorInfo& t = graph.tensors[id];
        const int es = ElementSize(t.dtype);
        if (es <= 1) continue;
        bool aligned = t.offset % es == 0;
        for (int64_t s : t.strides) aligned &= s % es == 0;
        if (!aligned) {
          return Support::No(absl::StrCat("tensor ", Describe(t),
                                          " has an offset or stride that is not a multiple of its ",
                                          es, "-byte element"));
        }
      }
    }
    return entry->supports ? entry->supports(graph, node) : Support::Yes();
  }

  absl::StatusOr<std::unique_ptr<Buffer>> Allocate(size_t bytes, BufferUsage usage,
                                                   absl::string_view label) override {
    if (bytes >= kMapThreshold) {
      // From a huge page's size on, mapped on a huge-page boundary with
      // transparent huge pages asked for (where the kernel grants them only
      // on request): the kernels walk weights, caches and token rows with
      // page-sized strides, and 4 KiB pages cost a TLB miss per row.
      constexpr size_t kHuge = cpu::kHugePageBytes;
      const bool huge = bytes >= kHuge && HugePagesWanted();
      const size_t span = huge ? bytes + kHuge : bytes;
      void* m = mmap(nullptr, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      if (m == MAP_FAILED) {
        return absl::ResourceExhaustedError(
            absl::StrCat("cpu: out of host memory mapping ", bytes, " bytes for ", label));
      }
      auto* p = static_cast<std::byte*>(m);
      size_t mapped = span;
      if (huge) {
        // Keep the aligned [p, p + bytes rounded to pages) and return the rest.
        const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
        const uintptr_t a = (reinterpret_cast<uintptr_t>(m) + kHuge - 1) & ~(uintptr_t{kHuge} - 1);
        mapped = (bytes + page - 1) / page * page;
        auto* start = reinterpret_cast<std::byte*>(a);
        if (start > p) munmap(p, static_cast<size_t>(start - p));
        std::byte* end = start + mapped;
        if (end < p + span) munmap(end, static_cast<size_t>(p + span - end));
        p = start;
        cpu::AdviseHugePages(p, mapped);
      }
      return std::unique_ptr<Buffer>(new CpuBuffer(p, bytes, mapped, CpuBuffer::Owner::kMapped));
    }
    // aligned_alloc wants whole alignment units; never 0 bytes.
    const size_t rounded = std::max(kAlignment, (bytes + kAlignment - 1) / kAlignment * kAlignment);
    void* p = std::aligned_alloc(kAlignment, rounded);
    if (!p) {
      return absl::ResourceExhaustedError(
          absl::StrCat("cpu: out of host memory allocating ", bytes, " bytes for ", label));
    }
    std::memset(p, 0, rounded);
    return std::unique_ptr<Buffer>(new CpuBuffer(static_cast<std::byte*>(p), bytes, 0, CpuBuffer::Owner::kHeap));
  }

  absl::StatusOr<std::unique_ptr<Buffer>> WrapHost(const void* data, size_t bytes) override {
    if (!data && bytes) return absl::InvalidArgumentError("WrapHost: null data");
    // Kernels only read inputs; the const is the caller's promise we keep.
    auto* p = static_cast<std::byte*>(const_cast<void*>(data));
    return std::unique_ptr<Buffer>(new CpuBuffer(p, bytes, 0, CpuBuffer::Owner::kCaller));
  }

  absl::Status Upload(Buffer& dst, size_t offset, const void* src, size_t n) override {
    const CpuBuffer* b = AsCpu(dst);
    if (!b) return absl::InvalidArgumentError("Upload: not a CPU buffer");
    if (auto st = CheckRange("Upload", b->size(), offset, n); !st.ok()) return st;
    if (n) std::memmove(b->host_data() + offset, src, n);
    return absl::OkStatus();
  }

  absl::Status Download(const Buffer& src, size_t offset, void* dst, size_t n) override {
    const CpuBuffer* b = AsCpu(src);
    if (!b) return absl::InvalidArgumentError("Download: not a CPU buffer");
    if (auto st = CheckRange("Download", b->size(), offset, n); !st.ok()) return st;
    if (n) std::memmove(dst, b->host_data() + offset, n);
    return absl::OkStatus();
  }

  absl::Status Copy(const Buffer& src, size_t src_offset, Buffer& dst, size_t dst_offset,
                    size_t n) override {
    const CpuBuffer* s = AsCpu(src);
    const CpuBuffer* d = AsCpu(dst);
    if (!s || !d) return absl::InvalidArgumentError("Copy: not a CPU buffer");
    if (auto st = CheckRange("Copy source", s->size(), src_offset, n); !st.ok()) return st;
    if (auto st = CheckRange("Copy destination", d->size(), dst_offset, n); !st.ok()) return st;
    if (n) std::memmove(d->host_data() + dst_offset, s->host_data() + src_offset, n);
    return absl::OkStatus();
  }

  absl::Status Fill(Buffer& dst, size_t offset, size_t n, uint8_t value) override {
    const CpuBuffer* b = AsCpu(dst);
    if (!b) return absl::InvalidArgumentError("Fill: not a CPU buffer");
    if (auto st = CheckRange("Fill", b->size(), offset, n); !st.ok()) return st;
    if (n) std::memset(b->host_data() + offset, value, n);
    return absl::OkStatus();
  }

  absl::StatusOr<std::unique_ptr<PreparedSplit>> Prepare(const Split& split, const Bindings& bindings,
                                                         const PrepareOptions& options) override {
    if (!split.graph) return absl::InvalidArgumentError("Prepare: the split has no graph");
    const Graph& graph = *split.graph;
    auto prepared = std::make_unique<CpuPreparedSplit>();
    for (int ni : split.nodes) {
      if (ni < 0 || ni >= static_cast<int>(graph.nodes.size())) {
        return absl::InvalidArgumentError(absl::StrCat("Prepare: node #", ni, " does not exist"));
      }
      const Node& node = graph.nodes[ni];
      Support s = supports(graph, node);
      if (!s.ok) return absl::UnimplementedError(absl::StrCat(NodeLabel(node), ": ", s.reason));
      const cpu::CpuKernelEntry* entry = cpu::FindCpuKernel(node.op);
      auto selected = entry->select(graph, node);
      if (!selected.ok()) return selected.status();
      auto pipeline = cache_.GetOrCreate(PipelineKey{.kernel = selected->key}, [&]() -> absl::StatusOr<std::unique_ptr<CpuPipeline>> {
        return std::make_unique<CpuPipeline>(*selected);
      });
      if (!pipeline.ok()) return pipeline.status();
      Step step;
      step.node = ni;
      step.n = &node;
      step.pipeline = *pipeline;
      for (int id : node.inputs) {
        auto v = Resolve(graph, node, bindings, id);
        if (!v.ok()) return v.status();
        step.inputs.push_back(*v);
      }
      for (int id : node.outputs) {
        auto v = Resolve(graph, node, bindings, id);
        if (!v.ok()) return v.status();
        step.outputs.push_back(*v);
      }
      prepared->steps.push_back(std::move(step));
    }
    return std::unique_ptr<PreparedSplit>(std::move(prepared));
  }

  // Synchronous: the work is done when Execute returns, so every point is
  // reached at once and kernel errors come from Execute itself.
  absl::StatusOr<SyncPoint> Execute(PreparedSplit& split, const ExecuteOptions& options) override {
    auto* prepared = dynamic_cast<CpuPreparedSplit*>(&split);
    if (!prepared) return absl::InvalidArgumentError("Execute: the split was not prepared by the CPU backend");
    std::vector<NodeTiming>* timings = options.timings ? &prepared->timings : nullptr;
    if (timings) timings->clear();
    using Clock = std::chrono::steady_clock;
    const auto t0 = Clock::now();
    auto us = [](Clock::duration d) { return std::chrono::duration<double, std::micro>(d).count(); };
    for (const Step& step : prepared->steps) {
      const auto start = Clock::now();
      cpu::KernelArgs args;
      args.node = step.n;
      args.inputs = step.inputs;
      args.outputs = step.outputs;
      args.threads = threads_;
      absl::Status st = step.pipeline->fn(args);
      if (!st.ok()) {
        // Kernel messages usually name the node already; add it when they do not.
        const std::string label = NodeLabel(*step.n);
        if (absl::StrContains(st.message(), label)) return st;
        return absl::Status(st.code(), absl::StrCat(label, ": ", st.message()));
      }
      if (timings) {
        const auto end = Clock::now();
        timings->push_back({step.node, us(start - t0), us(end - start)});
      }
    }
    return ++submitted_;
  }

  absl::Status ReadTimings(PreparedSplit& split, std::vector<NodeTiming>* out) override {
    auto* prepared = dynamic_cast<CpuPreparedSplit*>(&split);
    if (!prepared) return absl::InvalidArgumentError("ReadTimings: the split was not prepared by the CPU backend");
    out->insert(out->end(), prepared->timings.begin(), prepared->timings.end());
    return absl::OkStatus();
  }
  absl::StatusOr<SyncPoint> Flush() override { return ++submitted_; }
  absl::Status Wait(SyncPoint point) override { return absl::OkStatus(); }

  PipelineStats pipeline_stats() const override { return cache_.stats(); }

 private:
  // The view a kernel sees of tensor `id`: its binding's address, the graph's
  // dims and strides; checked to lie inside the bound buffer.
  absl::StatusOr<TensorView> Resolve(const Graph& graph, const Node& node, const Bindings& bindings,
                                     int id) const {
    auto b = ResolveBinding(graph, node, bindings, id);
    if (!b.ok()) return b.status();
    if (!b->buffer) return TensorView{};  // absent optional input
    const TensorInfo& info = graph.tensors[id];
    std::byte* base = b->buffer->host_data();
    if (!base || !AsCpu(*b->buffer)) {
      return absl::InvalidArgumentError(absl::StrCat(NodeLabel(node), ": tensor ", Describe(info),
                                                     " is bound to a buffer that is not CPU memory"));
    }
    const int es = ElementSize(info.dtype);
    if (es > 1 && reinterpret_cast<uintptr_t>(base + b->offset) % es != 0) {
      return absl::InvalidArgumentError(absl::StrCat(NodeLabel(node), ": tensor ", Describe(info),
                                                     " is at a host address that is not a multiple of its element size"));
    }
    return TensorView::Of(info, base + b->offset);
  }

  const int threads_;
  const DeviceInfo device_;
  std::atomic<SyncPoint> submitted_{0};
  PipelineCache<CpuPipeline> cache_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Backend>> CreateCpuBackend(const BackendOptions& options) {
  if (auto st = CheckBackendFlags("cpu", options.flags, {}); !st.ok()) return st;
  if (!options.device.empty() && options.device != "0") {
    return absl::NotFoundError(absl::StrCat("cpu: there is one device (0), not '",
                                            absl::CHexEscape(options.device), "'"));
  }
  if (options.threads < 0) {
    return absl::InvalidArgumentError(absl::StrCat("cpu backend: threads must be >= 0, got ", options.threads));
  }
  const int threads = options.threads > 0 ? options.threads : omp_get_max_threads();
  return std::unique_ptr<Backend>(new CpuBackend(threads));
}

BackendFactory CpuBackendFactory() {
  BackendFactory f;
  f.name = "cpu";
  f.list_devices = []() -> absl::StatusOr<std::vector<DeviceInfo>> {
    return std::vector<DeviceInfo>{MakeDeviceInfo(omp_get_max_threads())};
  };
  f.create = CreateCpuBackend;
  return f;
}

}  // namespace kiln
