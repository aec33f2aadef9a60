// The Vulkan backend: buffers, one queue ordered by a timeline semaphore, a
// command buffer per prepared split (re-submitted on every Execute, a full
// barrier between dependent dispatches), pipelines through a PipelineCache
// over a VkPipelineCache kept on disk, device errors and timestamps.
#include "backends/vulkan/vulkan_backend.h"

#include <algorithm>
#include <cstdlib>
#include <atomic>
#include <cstring>
#include <deque>
#include <functional>
#include <numeric>
#include <mutex>
#include <set>
#include <thread>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "backends/cache_dir.h"
#include "backends/device_error.h"
#include "backends/pipeline_cache.h"
#include "backends/vulkan/vk_device.h"
#include "backends/vulkan/vk_hazards.h"
#include "backends/vulkan/vk_kernels.h"
#include "backends/vulkan/vk_memory.h"
#include "backends/vulkan/vk_pipelines.h"
#include "ops/op_schema.h"

namespace kiln {
namespace {

using vk::Device;
using vk::DeviceFacts;
using vk::Dispatch;
using vk::Instance;
using vk::KernelContext;
using vk::Slot;
using vk::TensorArg;
using vk::VkBuf;
using vk::VkError;

void FullBarrier(VkCommandBuffer cb) {
  VkMemoryBarrier mb{VK_STRUCTURE_TYPE_MEMORY_BARRIER};
  mb.srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_WRITE_BIT | VK_ACCESS_HOST_WRITE_BIT;
  mb.dstAccessMask = VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_READ_BIT |
                     VK_ACCESS_TRANSFER_WRITE_BIT | VK_ACCESS_HOST_READ_BIT;
  vkCmdPipelineBarrier(cb, VK_PIPELINE_STAGE_ALL_COMMANDS_BIT, VK_PIPELINE_STAGE_ALL_COMMANDS_BIT, 0, 1, &mb, 0,
                       nullptr, 0, nullptr);
}

class VulkanBackend;

class VkPreparedSplit : public PreparedSplit {
 public:
  explicit VkPreparedSplit(VulkanBackend* backend) : backend_(backend) {}
  ~VkPreparedSplit() override;

  VulkanBackend* backend_;
  const Graph* graph = nullptr;
  std::vector<int> nodes;
  VkCommandPool pool = VK_NULL_HANDLE;
  VkCommandBuffer cb = VK_NULL_HANDLE;        // plain runs: barriers where memory is shared
  VkCommandBuffer cb_timed = VK_NULL_HANDLE;  // timed runs: timestamps, a barrier before every node
  VkDescriptorPool descriptors = VK_NULL_HANDLE;
  VkQueryPool queries = VK_NULL_HANDLE;
  std::vector<std::pair<int, int>> node_queries;  // (node, first query)
  std::unique_ptr<VkBuf> params, error, error_host;
  std::vector<std::unique_ptr<VkBuf>> scratch;
  SyncPoint last_point = 0;     // of the last Execute
  SyncPoint checked_point = 0;  // errors read up to here
  bool timed = false;           // the last Execute asked for timings
};

class VulkanBackend : public Backend {
 public:
  VulkanBackend(std::shared_ptr<Instance> instance, std::unique_ptr<Device> device, DiskCacheOptions disk)
      : instance_(std::move(instance)), device_(std::move(device)), pipelines_(*device_, std::move(disk)) {}

  absl::Status Init() {
    if (auto st = pipelines_.Init(); !st.ok()) return st;
    VkDevice d = device_->handle();
    VkSemaphoreTypeCreateInfo ti{VK_STRUCTURE_TYPE_SEMAPHORE_TYPE_CREATE_INFO};
    ti.semaphoreType = VK_SEMAPHORE_TYPE_TIMELINE;
    ti.initialValue = 0;
    VkSemaphoreCreateInfo sci{VK_STRUCTURE_TYPE_SEMAPHORE_CREATE_INFO};
    sci.pNext = &ti;
    if (VkResult r = vkCreateSemaphore(d, &sci, nullptr, &timeline_); r != VK_SUCCESS) {
      return VkError(r, "vkCreateSemaphore(timeline)");
    }
    VkCommandPoolCreateInfo pci{VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO};
    pci.flags = VK_COMMAND_POOL_CREATE_RESET_COMMAND_BUFFER_BIT;
    pci.queueFamilyIndex = device_->facts().queue_family;
    if (VkResult r = vkCreateCommandPool(d, &pci, nullptr, &transfer_pool_); r != VK_SUCCESS) {
      return VkError(r, "vkCreateCommandPool");
    }
    VkDescriptorPoolSize ps{VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, 64 * vk::kNumBindings};
    VkDescriptorPoolCreateInfo dpi{VK_STRUCTURE_TYPE_DESCRIPTOR_POOL_CREATE_INFO};
    dpi.flags = VK_DESCRIPTOR_POOL_CREATE_FREE_DESCRIPTOR_SET_BIT;
    dpi.maxSets = 64;
    dpi.poolSizeCount = 1;
    dpi.pPoolSizes = &ps;
    if (VkResult r = vkCreateDescriptorPool(d, &dpi, nullptr, &fill_descriptors_); r != VK_SUCCESS) {
      return VkError(r, "vkCreateDescriptorPool");
    }
    auto dummy = VkBuf::Create(*device_, 256, BufferUsage::kArena, "unused binding");
    if (!dummy.ok()) return dummy.status();
    dummy_ = std::move(*dummy);
    const auto& f = device_->facts();
    align_ = std::max<size_t>(64, f.props.limits.minStorageBufferOffsetAlignment);
    return absl::OkStatus();
  }

  ~VulkanBackend() override {
    VkDevice d = device_->handle();
    vkDeviceWaitIdle(d);
    {
      std::lock_guard<std::mutex> lock(mu_);
      Reclaim(UINT64_MAX);
    }
    if (pending_) vkFreeCommandBuffers(d, transfer_pool_, 1, &pending_);
    if (fill_descriptors_) vkDestroyDescriptorPool(d, fill_descriptors_, nullptr);
    if (transfer_pool_) vkDestroyCommandPool(d, transfer_pool_, nullptr);
    if (timeline_) vkDestroySemaphore(d, timeline_, nullptr);
    dummy_.reset();
  }

  absl::string_view name() const override { return "vulkan"; }
  const DeviceInfo& device() const override { return device_->facts().info; }
  BackendLimits limits() const override {
    const auto& l = device_->facts().props.limits;
    BackendLimits b;
    b.buffer_alignment = align_;
    b.max_binding = l.maxStorageBufferRange;
    b.max_allocation = std::min<uint64_t>(device_->facts().memory.memoryHeaps[0].size, uint64_t{1} << 40);
    b.host_import_alignment = 0;
    return b;
  }

  Support supports(const Graph& graph, const Node& node) const override {
    const vk::VkKernelEntry* entry = vk::FindKernel(node.op);
    if (!entry) return Support::No(absl::StrCat("no Vulkan kernel for op ", node.op));
    const uint64_t max_range = device_->facts().props.limits.maxStorageBufferRange;
    for (const std::vector<int>* ids : {&node.inputs, &node.outputs}) {
      for (int id : *ids) {
        if (id < 0 || id >= static_cast<int>(graph.tensors.size())) continue;
        const TensorInfo& t = graph.tensors[id];
        const int es = t.dtype == DType::kQ8_0 ? 1 : ElementSize(t.dtype);
        bool aligned = t.offset % es == 0;
        for (int64_t s : t.strides) aligned &= s % es == 0;
        if (!aligned) {
          return Support::No(absl::StrCat("tensor ", Describe(t),
                                          " has an offset or stride that is not a multiple of its element size"));
        }
        const int64_t extent = ExtentBytes(t.dtype, t.dims, t.strides);
        if (static_cast<uint64_t>(extent) + align_ > max_range) {
          return Support::No(absl::StrCat("tensor ", Describe(t), " spans ", extent,
                                          " bytes, more than one storage binding addresses (", max_range, ")"));
        }
        if (t.numel() >= (int64_t{1} << 31)) return Support::No(absl::StrCat("tensor ", Describe(t), " is too large"));
      }
    }
    return entry->supports(graph, node, device_->facts());
  }

  absl::StatusOr<std::unique_ptr<Buffer>> Allocate(size_t bytes, BufferUsage usage, absl::string_view label) override {
    if (lost_) return Lost("Allocate");
    auto b = VkBuf::Create(*device_, bytes, usage, label);
    if (!b.ok()) return Note(b.status());
    return std::unique_ptr<Buffer>(std::move(*b));
  }

  absl::Status Upload(Buffer& dst, size_t offset, const void* src, size_t n) override {
    if (lost_) return Lost("Upload");
    auto* b = dynamic_cast<VkBuf*>(&dst);
    if (!b) return absl::InvalidArgumentError("vulkan: Upload: not a Vulkan buffer");
    if (auto st = CheckRange("Upload", b->size(), offset, n); !st.ok()) return st;
    if (n == 0) return absl::OkStatus();
    std::lock_guard<std::mutex> lock(mu_);
    if (b->host_data()) {
      // Ordered after earlier work: wait for it, then write directly.
      if (auto st = DrainLocked(); !st.ok()) return st;
      std::memcpy(b->host_data() + offset, src, n);
      return absl::OkStatus();
    }
    auto staging = VkBuf::Create(*device_, n, BufferUsage::kStaging, "upload staging");
    if (!staging.ok()) return staging.status();
    std::memcpy((*staging)->host_data(), src, n);
    auto cb = PendingLocked();
    if (!cb.ok()) return cb.status();
    VkBufferCopy region{0, offset, n};
    vkCmdCopyBuffer(*cb, (*staging)->handle(), b->handle(), 1, &region);
    FullBarrier(*cb);
    pending_keep_.push_back(std::move(*staging));
    return absl::OkStatus();
  }

  absl::Status Download(const Buffer& src, size_t offset, void* dst, size_t n) override {
    if (lost_) return Lost("Download");
    auto* b = dynamic_cast<const VkBuf*>(&src);
    if (!b) return absl::InvalidArgumentError("vulkan: Download: not a Vulkan buffer");
    if (auto st = CheckRange("Download", b->size(), offset, n); !st.ok()) return st;
    if (n == 0) return absl::OkStatus();
    std::lock_guard<std::mutex> lock(mu_);
    if (b->host_data()) {
      if (auto st = DrainLocked(); !st.ok()) return st;
      std::memcpy(dst, b->host_data() + offset, n);
      return absl::OkStatus();
    }
    auto staging = VkBuf::Create(*device_, n, BufferUsage::kStaging, "download staging");
    if (!staging.ok()) return staging.status();
    auto cb = PendingLocked();
    if (!cb.ok()) return cb.status();
    VkBufferCopy region{offset, 0, n};
    vkCmdCopyBuffer(*cb, b->handle(), (*staging)->handle(), 1, &region);
    FullBarrier(*cb);
    if (auto st = DrainLocked(); !st.ok()) return st;
    std::memcpy(dst, (*staging)->host_data(), n);
    return absl::OkStatus();
  }

  absl::Status Copy(const Buffer& src, size_t src_offset, Buffer& dst, size_t dst_offset, size_t n) override {
    if (lost_) return Lost("Copy");
    auto* s = dynamic_cast<const VkBuf*>(&src);
    auto* d = dynamic_cast<VkBuf*>(&dst);
    if (!s || !d) return absl::InvalidArgumentError("vulkan: Copy: not a Vulkan buffer");
    if (auto st = CheckRange("Copy source", s->size(), src_offset, n); !st.ok()) return st;
    if (auto st = CheckRange("Copy destination", d->size(), dst_offset, n); !st.ok()) return st;
    if (n == 0) return absl::OkStatus();
    std::lock_guard<std::mutex> lock(mu_);
    auto cb = PendingLocked();
    if (!cb.ok()) return cb.status();
    VkBufferCopy region{src_offset, dst_offset, n};
    vkCmdCopyBuffer(*cb, s->handle(), d->handle(), 1, &region);
    FullBarrier(*cb);
    return absl::OkStatus();
  }

  absl::Status Fill(Buffer& dst, size_t offset, size_t n, uint8_t value) override {
    if (lost_) return Lost("Fill");
    auto* b = dynamic_cast<VkBuf*>(&dst);
    if (!b) return absl::InvalidArgumentError("vulkan: Fill: not a Vulkan buffer");
    if (auto st = CheckRange("Fill", b->size(), offset, n); !st.ok()) return st;
    if (n == 0) return absl::OkStatus();
    std::lock_guard<std::mutex> lock(mu_);
    auto cb = PendingLocked();
    if (!cb.ok()) return cb.status();
    // vkCmdFillBuffer writes whole aligned words; the unaligned edges (at
    // most 3 bytes each end) go through the fill_bytes shader.
    const size_t begin = (offset + 3) / 4 * 4, end = (offset + n) / 4 * 4;
    if (begin < end) {
      const uint32_t word = value * 0x01010101u;
      vkCmdFillBuffer(*cb, b->handle(), begin, end - begin, word);
    }
    auto edge = [&](size_t from, size_t to) -> absl::Status {
      if (from >= to) return absl::OkStatus();
      return FillBytesLocked(*cb, *b, from, to - from, value);
    };
    absl::Status st = begin < end ? edge(offset, begin) : edge(offset, offset + n);
    if (st.ok() && begin < end) st = edge(end, offset + n);
    FullBarrier(*cb);
    return st;
  }

  absl::StatusOr<std::unique_ptr<PreparedSplit>> Prepare(const Split& split, const Bindings& bindings,
                                                         const PrepareOptions& options) override;
  absl::StatusOr<SyncPoint> Execute(PreparedSplit& split, const ExecuteOptions& options) override;
  absl::Status ReadTimings(PreparedSplit& split, std::vector<NodeTiming>* out) override;

  absl::StatusOr<SyncPoint> Flush() override {
    if (lost_) return Lost("Flush");
    std::lock_guard<std::mutex> lock(mu_);
    if (pending_) {
      if (auto st = SubmitLocked(VK_NULL_HANDLE); !st.ok()) return st;
    }
    return submitted_;
  }

  absl::Status Wait(SyncPoint point) override {
    if (lost_) return Lost("Wait");
    std::lock_guard<std::mutex> lock(mu_);
    if (point > submitted_ && pending_) {
      if (auto st = SubmitLocked(VK_NULL_HANDLE); !st.ok()) return st;
    }
    point = std::min(point, submitted_);
    if (auto st = WaitLocked(point); !st.ok()) return st;
    return CheckErrorsLocked(point);
  }

  PipelineStats pipeline_stats() const override { return cache_.stats(); }
  // false: a barrier before every node (flag barriers=all), to rule hazards out.
  void set_hazard_barriers(bool on) { hazard_barriers_ = on; }

  void Forget(VkPreparedSplit* s) {
    std::lock_guard<std::mutex> lock(mu_);
    if (s->last_point > completed_) (void)WaitLocked(s->last_point);
    live_.erase(s);
  }
  VkDevice dev() const { return device_->handle(); }

 private:
  absl::Status Lost(absl::string_view what) const {
    return DeviceLostError("vulkan", absl::StrCat(what, ": the device was lost earlier"));
  }
  absl::Status Note(absl::Status st) {
    if (IsDeviceLost(st)) lost_ = true;
    return st;
  }

  // The command buffer that collects uploads, copies and fills until the
  // next submission.
  absl::StatusOr<VkCommandBuffer> PendingLocked() {
    if (pending_) return pending_;
    VkCommandBufferAllocateInfo ai{VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO};
    ai.commandPool = transfer_pool_;
    ai.level = VK_COMMAND_BUFFER_LEVEL_PRIMARY;
    ai.commandBufferCount = 1;
    if (VkResult r = vkAllocateCommandBuffers(dev(), &ai, &pending_); r != VK_SUCCESS) {
      pending_ = VK_NULL_HANDLE;
      return Note(VkError(r, "vkAllocateCommandBuffers"));
    }
    VkCommandBufferBeginInfo bi{VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO};
    bi.flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT;
    vkBeginCommandBuffer(pending_, &bi);
    FullBarrier(pending_);  // after everything submitted before
    return pending_;
  }

  absl::Status FillBytesLocked(VkCommandBuffer cb, VkBuf& b, size_t offset, size_t n, uint8_t value);

  // Submits the pending transfers (if any) then `work` (if any), signalling
  // the next point.
  absl::Status SubmitLocked(VkCommandBuffer work) {
    VkCommandBuffer cbs[2];
    uint32_t count = 0;
    VkCommandBuffer transfers = pending_;
    if (transfers) {
      vkEndCommandBuffer(transfers);
      cbs[count++] = transfers;
      pending_ = VK_NULL_HANDLE;
    }
    if (work) cbs[count++] = work;
    const uint64_t value = submitted_ + 1;
    VkTimelineSemaphoreSubmitInfo ts{VK_STRUCTURE_TYPE_TIMELINE_SEMAPHORE_SUBMIT_INFO};
    ts.signalSemaphoreValueCount = 1;
    ts.pSignalSemaphoreValues = &value;
    VkSubmitInfo si{VK_STRUCTURE_TYPE_SUBMIT_INFO};
    si.pNext = &ts;
    si.commandBufferCount = count;
    si.pCommandBuffers = cbs;
    si.signalSemaphoreCount = 1;
    si.pSignalSemaphores = &timeline_;
    VkResult r = vkQueueSubmit(device_->queue(), 1, &si, VK_NULL_HANDLE);
    if (r != VK_SUCCESS) return Note(VkError(r, "vkQueueSubmit"));
    submitted_ = value;
    if (transfers || !pending_keep_.empty()) {
      InFlight f;
      f.point = value;
      f.cb = transfers;
      f.buffers = std::move(pending_keep_);
      f.sets = std::move(pending_sets_);
      pending_keep_.clear();
      pending_sets_.clear();
      in_flight_.push_back(std::move(f));
    }
    return absl::OkStatus();
  }

  // Submits what is pending and waits for everything.
  absl::Status DrainLocked() {
    if (pending_) {
      if (auto st = SubmitLocked(VK_NULL_HANDLE); !st.ok()) return st;
    }
    return WaitLocked(submitted_);
  }

  absl::Status WaitLocked(SyncPoint point) {
    if (point <= completed_) return absl::OkStatus();
    VkSemaphoreWaitInfo wi{VK_STRUCTURE_TYPE_SEMAPHORE_WAIT_INFO};
    wi.semaphoreCount = 1;
    wi.pSemaphores = &timeline_;
    wi.pValues = &point;
    VkResult r = vkWaitSemaphores(dev(), &wi, UINT64_MAX);
    if (r != VK_SUCCESS) return Note(VkError(r, absl::StrCat("waiting for submission ", point)));
    completed_ = std::max(completed_, point);
    Reclaim(completed_);
    return absl::OkStatus();
  }

  void Reclaim(SyncPoint point) {
    while (!in_flight_.empty() && in_flight_.front().point <= point) {
      InFlight& f = in_flight_.front();
      if (f.cb) vkFreeCommandBuffers(dev(), transfer_pool_, 1, &f.cb);
      if (!f.sets.empty()) {
        vkFreeDescriptorSets(dev(), fill_descriptors_, static_cast<uint32_t>(f.sets.size()), f.sets.data());
      }
      in_flight_.pop_front();
    }
  }

  // Device error records of splits whose work up to `point` is done.
  absl::Status CheckErrorsLocked(SyncPoint point) {
    absl::Status first;
    for (VkPreparedSplit* s : live_) {
      if (s->last_point == 0 || s->last_point > point || s->checked_point >= s->last_point) continue;
      s->checked_point = s->last_point;
      // Mapped device memory is read directly; otherwise the split copied
      // the record to error_host at its end.
      std::byte* where = s->error->host_data() ? s->error->host_data() : s->error_host->host_data();
      DeviceErrorRecord rec;
      std::memcpy(&rec, where, sizeof(rec));
      if (rec.code == kDeviceErrorNone) continue;
      // Clear it for the next run: the host copy now, the device copy in
      // the next submission.
      std::memset(s->error_host->host_data(), 0, sizeof(rec));
      if (s->error->host_data()) {
        std::memset(s->error->host_data(), 0, sizeof(rec));
      } else if (auto cb = PendingLocked(); cb.ok()) {
        vkCmdFillBuffer(*cb, s->error->handle(), 0, VK_WHOLE_SIZE, 0);
        FullBarrier(*cb);
      }
      if (first.ok()) first = DeviceErrorStatus(*s->graph, rec);
    }
    return first;
  }

  absl::StatusOr<VkPipeline> GetPipeline(const vk::PipelineSpec& spec) {
    auto key = pipelines_.KeyOf(spec);
    if (!key.ok()) return key.status();
    auto p = cache_.GetOrCreate(*key, [&](PipelineOrigin& origin) -> absl::StatusOr<std::unique_ptr<vk::VkPipelineObj>> {
      auto obj = pipelines_.Create(spec, *key, origin);
      if (!obj.ok()) return Note(obj.status());
      return obj;
    });
    if (!p.ok()) return p.status();
    return (*p)->pipeline;
  }

  absl::StatusOr<TensorArg> Resolve(const Graph& graph, const Node& node, const Bindings& bindings, int id) const;

  struct InFlight {
    SyncPoint point = 0;
    VkCommandBuffer cb = VK_NULL_HANDLE;
    std::vector<std::unique_ptr<VkBuf>> buffers;
    std::vector<VkDescriptorSet> sets;
  };

  std::shared_ptr<Instance> instance_;
  std::unique_ptr<Device> device_;
  vk::Pipelines pipelines_;
  PipelineCache<vk::VkPipelineObj> cache_;
  size_t align_ = 64;
  bool hazard_barriers_ = true;
  std::unique_ptr<VkBuf> dummy_;

  std::mutex mu_;  // the queue and everything below
  VkSemaphore timeline_ = VK_NULL_HANDLE;
  VkCommandPool transfer_pool_ = VK_NULL_HANDLE;
  VkDescriptorPool fill_descriptors_ = VK_NULL_HANDLE;
  VkCommandBuffer pending_ = VK_NULL_HANDLE;
  std::vector<std::unique_ptr<VkBuf>> pending_keep_;
  std::vector<VkDescriptorSet> pending_sets_;
  std::deque<InFlight> in_flight_;
  SyncPoint submitted_ = 0, completed_ = 0;
  std::set<VkPreparedSplit*> live_;
  std::atomic<bool> lost_{false};

  friend class VkPreparedSplit;
};

VkPreparedSplit::~VkPreparedSplit() {
  backend_->Forget(this);
  VkDevice d = backend_->dev();
  if (pool) vkDestroyCommandPool(d, pool, nullptr);
  if (descriptors) vkDestroyDescriptorPool(d, descriptors, nullptr);
  if (queries) vkDestroyQueryPool(d, queries, nullptr);
}

bool IsContiguousArg(const TensorArg& t) {
  if (t.info->dtype == DType::kQ8_0) return t.info->IsContiguous();
  int64_t expect = 1;
  for (int i = 3; i >= 0; --i) {
    if (t.dims[i] != 1 && t.strides[i] != expect) return false;
    expect *= t.dims[i];
  }
  return true;
}

absl::StatusOr<TensorArg> VulkanBackend::Resolve(const Graph& graph, const Node& node, const Bindings& bindings,
                                                 int id) const {
  TensorArg a;
  auto b = ResolveBinding(graph, node, bindings, id);
  if (!b.ok()) return b.status();
  if (!b->buffer) return a;
  const TensorInfo& info = graph.tensors[id];
  auto* vb = dynamic_cast<const VkBuf*>(b->buffer);
  if (!vb) {
    return absl::InvalidArgumentError(absl::StrCat(NodeLabel(node), ": tensor ", Describe(info),
                                                   " is bound to a buffer that is not Vulkan memory"));
  }
  const int64_t extent = ExtentBytes(info.dtype, info.dims, info.strides);
  const size_t salign = device_->facts().props.limits.minStorageBufferOffsetAlignment;
  a.info = &info;
  a.id = id;
  a.buffer = vb;
  a.byte_offset = b->offset;
  const size_t desc = b->offset / salign * salign;
  const size_t alloc = std::max<size_t>(16, (vb->size() + 15) / 16 * 16);
  a.slot.buffer = vb->handle();
  a.slot.offset = desc;
  a.slot.range = std::min<size_t>(alloc - desc, (b->offset - desc + extent + 15) / 16 * 16 + 16);
  a.slot.range = std::max<size_t>(a.slot.range, 16);
  if (desc + a.slot.range > alloc) a.slot.range = alloc - desc;
  const int es = info.dtype == DType::kQ8_0 ? 1 : ElementSize(info.dtype);
  a.offset = static_cast<uint32_t>((b->offset - desc) / es);
  a.rank = info.rank();
  const int lead = 4 - a.rank;
  for (int i = 0; i < a.rank; ++i) {
    a.dims[lead + i] = info.dims[i];
    a.strides[lead + i] = info.strides[i] / es;
  }
  if (info.dtype == DType::kQ8_0 && a.rank > 0) a.strides[3] = 0;
  return a;
}

}  // namespace

bool vk::TensorArg::contiguous() const { return IsContiguousArg(*this); }

namespace {

absl::Status VulkanBackend::FillBytesLocked(VkCommandBuffer cb, VkBuf& b, size_t offset, size_t n, uint8_t value) {
  auto pipeline = GetPipeline({"fill_bytes", {}});
  if (!pipeline.ok()) return pipeline.status();
  VkDescriptorSetAllocateInfo ai{VK_STRUCTURE_TYPE_DESCRIPTOR_SET_ALLOCATE_INFO};
  ai.descriptorPool = fill_descriptors_;
  ai.descriptorSetCount = 1;
  VkDescriptorSetLayout layout = pipelines_.set_layout();
  ai.pSetLayouts = &layout;
  VkDescriptorSet set;
  if (VkResult r = vkAllocateDescriptorSets(dev(), &ai, &set); r != VK_SUCCESS) {
    // The pool is full of sets still in flight: wait for them.
    if (auto st = WaitLocked(submitted_); !st.ok()) return st;
    if (VkResult r2 = vkAllocateDescriptorSets(dev(), &ai, &set); r2 != VK_SUCCESS) {
      return Note(VkError(r2, "vkAllocateDescriptorSets(fill)"));
    }
  }
  pending_sets_.push_back(set);
  VkDescriptorBufferInfo infos[vk::kNumBindings];
  VkWriteDescriptorSet writes[vk::kNumBindings];
  for (int i = 0; i < vk::kNumBindings; ++i) {
    infos[i] = {i == 0 ? b.handle() : dummy_->handle(), 0, VK_WHOLE_SIZE};
    writes[i] = {VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET};
    writes[i].dstSet = set;
    writes[i].dstBinding = i;
    writes[i].descriptorCount = 1;
    writes[i].descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER;
    writes[i].pBufferInfo = &infos[i];
  }
  vkUpdateDescriptorSets(dev(), vk::kNumBindings, writes, 0, nullptr);
  FullBarrier(cb);
  vkCmdBindPipeline(cb, VK_PIPELINE_BIND_POINT_COMPUTE, *pipeline);
  vkCmdBindDescriptorSets(cb, VK_PIPELINE_BIND_POINT_COMPUTE, pipelines_.layout(), 0, 1, &set, 0, nullptr);
  const uint32_t pc[4] = {static_cast<uint32_t>(offset), static_cast<uint32_t>(n), value, 0};
  vkCmdPushConstants(cb, pipelines_.layout(), VK_SHADER_STAGE_COMPUTE_BIT, 0, 16, pc);
  vkCmdDispatch(cb, 1, 1, 1);
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<PreparedSplit>> VulkanBackend::Prepare(const Split& split, const Bindings& bindings,
                                                                       const PrepareOptions& options) {
  if (lost_) return Lost("Prepare");
  if (!split.graph) return absl::InvalidArgumentError("vulkan: Prepare: the split has no graph");
  const Graph& graph = *split.graph;
  auto prepared = std::make_unique<VkPreparedSplit>(this);
  prepared->graph = &graph;
  prepared->nodes = split.nodes;
  {
    std::lock_guard<std::mutex> lock(mu_);
    live_.insert(prepared.get());
  }
  VkDevice d = dev();

  // 1. Each node's dispatches.
  struct NodeDispatches {
    int node;
    std::vector<Dispatch> dispatches;
    std::vector<vk::ByteRange> reads, writes;  // its tensors' memory (scratch is its own)
  };
  std::vector<NodeDispatches> plan;
  for (int ni : split.nodes) {
    if (ni < 0 || ni >= static_cast<int>(graph.nodes.size())) {
      return absl::InvalidArgumentError(absl::StrCat("vulkan: Prepare: node #", ni, " does not exist"));
    }
    const Node& node = graph.nodes[ni];
    Support s = supports(graph, node);
    if (!s.ok) return absl::UnimplementedError(absl::StrCat(NodeLabel(node), ": ", s.reason));
    KernelContext ctx(graph, node, ni, device_->facts());
    for (int id : node.inputs) {
      auto a = Resolve(graph, node, bindings, id);
      if (!a.ok()) return a.status();
      ctx.inputs.push_back(*a);
    }
    for (int id : node.outputs) {
      auto a = Resolve(graph, node, bindings, id);
      if (!a.ok()) return a.status();
      ctx.outputs.push_back(*a);
    }
    VkPreparedSplit* p = prepared.get();
    ctx.scratch = [this, p, &node](size_t bytes, bool zeroed) -> absl::StatusOr<Slot> {
      auto b = VkBuf::Create(*device_, bytes, BufferUsage::kArena, absl::StrCat(NodeLabel(node), " scratch"));
      if (!b.ok()) return b.status();
      // Zeroed once, ahead of the split's first run (the pending command
      // buffer); the kernels that need it leave it zeroed again.
      if (zeroed) {
        if (auto st = Fill(**b, 0, bytes, 0); !st.ok()) return st;
      }
      Slot s{(*b)->handle(), 0, VK_WHOLE_SIZE};
      p->scratch.push_back(std::move(*b));
      return s;
    };
    if (auto st = vk::FindKernel(node.op)->record(ctx); !st.ok()) {
      if (absl::StrContains(st.message(), NodeLabel(node))) return st;
      return Annotate(st, NodeLabel(node));
    }
    auto ranges = [](const std::vector<TensorArg>& args) {
      std::vector<vk::ByteRange> out;
      for (const TensorArg& a : args) {
        if (!a.present() || !a.buffer) continue;
        const auto extent = static_cast<size_t>(ExtentBytes(a.info->dtype, a.info->dims, a.info->strides));
        out.push_back({a.buffer, a.byte_offset, a.byte_offset + extent});
      }
      return out;
    };
    plan.push_back({ni, std::move(ctx.dispatches), ranges(ctx.inputs), ranges(ctx.outputs)});
  }

  // 2. Pipelines: distinct new ones compiled in parallel.
  std::vector<const vk::PipelineSpec*> specs;
  {
    absl::flat_hash_map<std::string, const vk::PipelineSpec*> unique;
    for (auto& nd : plan) {
      for (auto& dsp : nd.dispatches) unique.try_emplace(dsp.pipeline.Key(), &dsp.pipeline);
    }
    for (auto& [k, s] : unique) specs.push_back(s);
  }
  std::vector<absl::StatusOr<VkPipeline>> compiled(specs.size(), absl::UnknownError("not compiled"));
  {
    const int threads = std::max(1, std::min<int>(static_cast<int>(specs.size()),
                                                  static_cast<int>(std::thread::hardware_concurrency())));
    std::atomic<size_t> next{0};
    auto work = [&] {
      for (size_t i = next++; i < specs.size(); i = next++) compiled[i] = GetPipeline(*specs[i]);
    };
    std::vector<std::thread> pool;
    for (int t = 1; t < threads; ++t) pool.emplace_back(work);
    work();
    for (auto& t : pool) t.join();
  }
  absl::flat_hash_map<std::string, VkPipeline> pipeline_of;
  for (size_t i = 0; i < specs.size(); ++i) {
    if (!compiled[i].ok()) return compiled[i].status();
    pipeline_of[specs[i]->Key()] = *compiled[i];
  }

  // 3. Parameters, descriptor sets, the error record.
  size_t num_dispatch = 0, param_words = 0;
  for (auto& nd : plan) {
    for (auto& dsp : nd.dispatches) {
      ++num_dispatch;
      param_words += dsp.params.size();
    }
  }
  auto params = VkBuf::Create(*device_, std::max<size_t>(16, param_words * 4), BufferUsage::kInput,
                              "kernel parameters");
  if (!params.ok()) return params.status();
  prepared->params = std::move(*params);
  std::vector<uint32_t> words;
  words.reserve(param_words);
  for (auto& nd : plan) {
    for (auto& dsp : nd.dispatches) words.insert(words.end(), dsp.params.begin(), dsp.params.end());
  }
  if (prepared->params->host_data()) {
    std::memcpy(prepared->params->host_data(), words.data(), words.size() * 4);
  } else if (auto st = Upload(*prepared->params, 0, words.data(), words.size() * 4); !st.ok()) {
    return st;
  }
  auto err = VkBuf::Create(*device_, sizeof(DeviceErrorRecord), BufferUsage::kArena, "device error record");
  if (!err.ok()) return err.status();
  prepared->error = std::move(*err);
  auto err_host = VkBuf::Create(*device_, sizeof(DeviceErrorRecord), BufferUsage::kOutput, "device error readback");
  if (!err_host.ok()) return err_host.status();
  prepared->error_host = std::move(*err_host);
  std::memset(prepared->error_host->host_data(), 0, sizeof(DeviceErrorRecord));
  if (prepared->error->host_data()) {
    std::memset(prepared->error->host_data(), 0, sizeof(DeviceErrorRecord));
  } else if (auto st = Fill(*prepared->error, 0, sizeof(DeviceErrorRecord), 0); !st.ok()) {
    return st;
  }

  const uint32_t sets = static_cast<uint32_t>(std::max<size_t>(1, num_dispatch));
  VkDescriptorPoolSize ps{VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, sets * vk::kNumBindings};
  VkDescriptorPoolCreateInfo dpi{VK_STRUCTURE_TYPE_DESCRIPTOR_POOL_CREATE_INFO};
  dpi.maxSets = sets;
  dpi.poolSizeCount = 1;
  dpi.pPoolSizes = &ps;
  if (VkResult r = vkCreateDescriptorPool(d, &dpi, nullptr, &prepared->descriptors); r != VK_SUCCESS) {
    return Note(VkError(r, "vkCreateDescriptorPool(split)"));
  }
  std::vector<VkDescriptorSetLayout> layouts(sets, pipelines_.set_layout());
  std::vector<VkDescriptorSet> dsets(sets);
  VkDescriptorSetAllocateInfo dai{VK_STRUCTURE_TYPE_DESCRIPTOR_SET_ALLOCATE_INFO};
  dai.descriptorPool = prepared->descriptors;
  dai.descriptorSetCount = sets;
  dai.pSetLayouts = layouts.data();
  if (VkResult r = vkAllocateDescriptorSets(d, &dai, dsets.data()); r != VK_SUCCESS) {
    return Note(VkError(r, "vkAllocateDescriptorSets(split)"));
  }
  {
    std::vector<VkDescriptorBufferInfo> infos(num_dispatch * vk::kNumBindings);
    std::vector<VkWriteDescriptorSet> writes(num_dispatch * vk::kNumBindings);
    size_t k = 0, w = 0;
    for (auto& nd : plan) {
      for (auto& dsp : nd.dispatches) {
        for (int i = 0; i < vk::kNumBindings; ++i) {
          VkDescriptorBufferInfo& info = infos[w];
          if (i < vk::kNumTensorSlots) {
            const Slot& s = dsp.slots[i];
            info = s.buffer ? VkDescriptorBufferInfo{s.buffer, s.offset, s.range ? s.range : VK_WHOLE_SIZE}
                            : VkDescriptorBufferInfo{dummy_->handle(), 0, VK_WHOLE_SIZE};
          } else if (i == vk::kParamsBinding) {
            info = {prepared->params->handle(), 0, VK_WHOLE_SIZE};
          } else {
            info = {prepared->error->handle(), 0, VK_WHOLE_SIZE};
          }
          VkWriteDescriptorSet& wr = writes[w];
          wr = {VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET};
          wr.dstSet = dsets[k];
          wr.dstBinding = i;
          wr.descriptorCount = 1;
          wr.descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER;
          wr.pBufferInfo = &info;
          ++w;
        }
        ++k;
      }
    }
    if (w) vkUpdateDescriptorSets(d, static_cast<uint32_t>(w), writes.data(), 0, nullptr);
  }

  // 4. The command buffers: one for plain runs, and, where timings may be
  // asked for, one with timestamps. A plain run's node waits only for the
  // nodes whose memory it shares (vk_hazards.h); a timed run keeps a barrier
  // before every node, so that each node's timestamps bracket it alone. The
  // dispatches inside a node always wait for each other. (A
  // compute-to-compute barrier instead of the full one cost the same on the
  // H200, bench/RESULTS.md.)
  VkCommandPoolCreateInfo pci{VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO};
  pci.queueFamilyIndex = device_->facts().queue_family;
  if (VkResult r = vkCreateCommandPool(d, &pci, nullptr, &prepared->pool); r != VK_SUCCESS) {
    return Note(VkError(r, "vkCreateCommandPool(split)"));
  }
  const bool timed = options.timings && device_->facts().timestamp_valid_bits > 0 && !plan.empty();
  VkCommandBuffer cbs[2] = {VK_NULL_HANDLE, VK_NULL_HANDLE};
  VkCommandBufferAllocateInfo cai{VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO};
  cai.commandPool = prepared->pool;
  cai.level = VK_COMMAND_BUFFER_LEVEL_PRIMARY;
  cai.commandBufferCount = timed ? 2 : 1;
  if (VkResult r = vkAllocateCommandBuffers(d, &cai, cbs); r != VK_SUCCESS) {
    return Note(VkError(r, "vkAllocateCommandBuffers(split)"));
  }
  prepared->cb = cbs[0];
  prepared->cb_timed = cbs[1];
  if (timed) {
    VkQueryPoolCreateInfo qci{VK_STRUCTURE_TYPE_QUERY_POOL_CREATE_INFO};
    qci.queryType = VK_QUERY_TYPE_TIMESTAMP;
    qci.queryCount = static_cast<uint32_t>(2 * plan.size());
    if (VkResult r = vkCreateQueryPool(d, &qci, nullptr, &prepared->queries); r != VK_SUCCESS) {
      return Note(VkError(r, "vkCreateQueryPool"));
    }
  }
  // Where each node's dispatches start in the descriptor sets and the
  // parameter words.
  std::vector<size_t> first_set(plan.size());
  std::vector<uint32_t> first_word(plan.size());
  {
    size_t k = 0;
    uint32_t w = 0;
    for (size_t n = 0; n < plan.size(); ++n) {
      first_set[n] = k;
      first_word[n] = w;
      for (auto& dsp : plan[n].dispatches) {
        ++k;
        w += static_cast<uint32_t>(dsp.params.size());
      }
    }
  }
  auto record = [&](VkCommandBuffer cb, bool with_timestamps) -> absl::Status {
    const bool elide = hazard_barriers_ && !with_timestamps;
    // Timed runs keep the graph's order; plain ones go by level.
    std::vector<size_t> order(plan.size());
    std::iota(order.begin(), order.end(), size_t{0});
    if (elide) {
      order = vk::OrderByLevel(plan.size(), [&](size_t later, size_t earlier) {
        return !plan[later].dispatches.empty() && !plan[earlier].dispatches.empty() &&
               vk::Conflict(plan[later].reads, plan[later].writes, plan[earlier].reads, plan[earlier].writes);
      });
    }
    VkCommandBufferBeginInfo bi{VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO};
    bi.flags = VK_COMMAND_BUFFER_USAGE_SIMULTANEOUS_USE_BIT;
    vkBeginCommandBuffer(cb, &bi);
    if (with_timestamps) vkCmdResetQueryPool(cb, prepared->queries, 0, static_cast<uint32_t>(2 * plan.size()));
    // Everything submitted before this split (earlier runs included) first.
    FullBarrier(cb);
    bool any = false;
    VkPipeline bound = VK_NULL_HANDLE;
    vk::HazardTracker hazards;
    for (size_t n : order) {
      auto& nd = plan[n];
      bool first = true;
      size_t k = first_set[n];
      uint32_t pbase = first_word[n];
      for (auto& dsp : nd.dispatches) {
        if (any && (!first || !elide || hazards.NeedsBarrier(nd.reads, nd.writes))) {
          FullBarrier(cb);
          hazards.Clear();
        }
        if (with_timestamps && first) {
          // After the barrier: the node's time starts when the ones before
          // it are done.
          vkCmdWriteTimestamp(cb, VK_PIPELINE_STAGE_TOP_OF_PIPE_BIT, prepared->queries, static_cast<uint32_t>(2 * n));
          prepared->node_queries.push_back({nd.node, static_cast<int>(2 * n)});
        }
        first = false;
        VkPipeline p = pipeline_of[dsp.pipeline.Key()];
        if (p != bound) {
          vkCmdBindPipeline(cb, VK_PIPELINE_BIND_POINT_COMPUTE, p);
          bound = p;
        }
        vkCmdBindDescriptorSets(cb, VK_PIPELINE_BIND_POINT_COMPUTE, pipelines_.layout(), 0, 1, &dsets[k], 0, nullptr);
        const uint32_t pc[4] = {pbase, 0, 0, 0};
        vkCmdPushConstants(cb, pipelines_.layout(), VK_SHADER_STAGE_COMPUTE_BIT, 0, 16, pc);
        if (dsp.groups[0] && dsp.groups[1] && dsp.groups[2]) {
          vkCmdDispatch(cb, dsp.groups[0], dsp.groups[1], dsp.groups[2]);
        }
        pbase += static_cast<uint32_t>(dsp.params.size());
        ++k;
        any = true;
      }
      if (!nd.dispatches.empty()) hazards.Add(nd.reads, nd.writes);
      if (with_timestamps) {
        if (first) {  // a node of no dispatch
          vkCmdWriteTimestamp(cb, VK_PIPELINE_STAGE_TOP_OF_PIPE_BIT, prepared->queries, static_cast<uint32_t>(2 * n));
          prepared->node_queries.push_back({nd.node, static_cast<int>(2 * n)});
        }
        // Written once every command before it is done (no barrier needed).
        vkCmdWriteTimestamp(cb, VK_PIPELINE_STAGE_BOTTOM_OF_PIPE_BIT, prepared->queries,
                            static_cast<uint32_t>(2 * n + 1));
      }
    }
    FullBarrier(cb);
    // The error record, copied where the host reads it (it stays set on the
    // device until the host has seen it).
    if (!prepared->error->host_data()) {
      VkBufferCopy region{0, 0, sizeof(DeviceErrorRecord)};
      vkCmdCopyBuffer(cb, prepared->error->handle(), prepared->error_host->handle(), 1, &region);
      FullBarrier(cb);
    }
    if (VkResult r = vkEndCommandBuffer(cb); r != VK_SUCCESS) return Note(VkError(r, "vkEndCommandBuffer"));
    return absl::OkStatus();
  };
  if (auto st = record(prepared->cb, false); !st.ok()) return st;
  if (timed) {
    if (auto st = record(prepared->cb_timed, true); !st.ok()) return st;
  }
  return std::unique_ptr<PreparedSplit>(std::move(prepared));
}

absl::StatusOr<SyncPoint> VulkanBackend::Execute(PreparedSplit& split, const ExecuteOptions& options) {
  if (lost_) return Lost("Execute");
  auto* p = dynamic_cast<VkPreparedSplit*>(&split);
  if (!p || p->backend_ != this) {
    return absl::InvalidArgumentError("vulkan: Execute: the split was not prepared by this backend");
  }
  std::lock_guard<std::mutex> lock(mu_);
  p->timed = options.timings && p->cb_timed;
  if (auto st = SubmitLocked(p->timed ? p->cb_timed : p->cb); !st.ok()) return st;
  p->last_point = submitted_;
  return submitted_;
}

absl::Status VulkanBackend::ReadTimings(PreparedSplit& split, std::vector<NodeTiming>* out) {
  if (lost_) return Lost("ReadTimings");
  auto* p = dynamic_cast<VkPreparedSplit*>(&split);
  if (!p) return absl::InvalidArgumentError("vulkan: ReadTimings: the split was not prepared by this backend");
  if (!p->timed || p->node_queries.empty()) return absl::OkStatus();
  std::vector<uint64_t> ticks(2 * p->node_queries.size());
  VkResult r = vkGetQueryPoolResults(dev(), p->queries, 0, static_cast<uint32_t>(ticks.size()),
                                     ticks.size() * 8, ticks.data(), 8,
                                     VK_QUERY_RESULT_64_BIT | VK_QUERY_RESULT_WAIT_BIT);
  if (r != VK_SUCCESS) return Note(VkError(r, "vkGetQueryPoolResults"));
  const double ns = device_->facts().props.limits.timestampPeriod;
  const uint64_t t0 = ticks[0];
  for (size_t i = 0; i < p->node_queries.size(); ++i) {
    const uint64_t a = ticks[2 * i], b = ticks[2 * i + 1];
    out->push_back({p->node_queries[i].first, (a - t0) * ns / 1000.0, (b >= a ? b - a : 0) * ns / 1000.0});
  }
  return absl::OkStatus();
}

// Instance + device facts, made once per process for ListDevices.
absl::StatusOr<std::vector<DeviceInfo>> ListVulkanDevices() {
  auto inst = Instance::Create();
  if (!inst.ok()) return inst.status();
  auto devs = (*inst)->Devices();
  if (!devs.ok()) return devs.status();
  std::vector<DeviceInfo> out;
  for (const auto& f : *devs) out.push_back(f.info);
  return out;
}

absl::StatusOr<std::unique_ptr<Backend>> CreateVulkanBackend(const BackendOptions& options) {
  if (auto st = CheckBackendFlags("vulkan", options.flags, {"coopmat", "specialize", "barriers"}); !st.ok()) return st;
  auto inst = Instance::Create();
  if (!inst.ok()) return inst.status();
  auto devs = (*inst)->Devices();
  if (!devs.ok()) return devs.status();
  std::vector<DeviceInfo> infos;
  for (const auto& f : *devs) infos.push_back(f.info);
  auto index = ChooseDevice("vulkan", infos, options.device, vk::PreferredDevice(*devs));
  if (!index.ok()) return index.status();
  DeviceFacts facts = (*devs)[*index];
  if (auto it = options.flags.find("coopmat"); it != options.flags.end() && it->second == "off") {
    facts.coopmat_nv = facts.coopmat_khr = false;
  }
  if (const char* env = std::getenv("KILN_VULKAN_COOPMAT"); env && std::string(env) == "off") {
    facts.coopmat_nv = facts.coopmat_khr = false;
  }
  facts.generic_kernels = facts.props.deviceType == VK_PHYSICAL_DEVICE_TYPE_CPU;
  if (auto it = options.flags.find("specialize"); it != options.flags.end()) {
    facts.generic_kernels = it->second == "off";
  }
  if (const char* env = std::getenv("KILN_VULKAN_SPECIALIZE"); env && *env) {
    facts.generic_kernels = std::string(env) == "off";
  }
  auto device = Device::Create(*inst, facts);
  if (!device.ok()) return device.status();
  DiskCacheOptions disk = DiskCacheOptions::FromEnvironment();
  if (options.cache_dir == "off") {
    disk.dir.clear();
  } else if (!options.cache_dir.empty()) {
    disk.dir = absl::StrCat(options.cache_dir, "/pipelines");
  }
  auto backend = std::make_unique<VulkanBackend>(*inst, std::move(*device), std::move(disk));
  std::string barriers = "hazards";
  if (const char* env = std::getenv("KILN_VULKAN_BARRIERS"); env && *env) barriers = env;
  if (auto it = options.flags.find("barriers"); it != options.flags.end()) barriers = it->second;
  if (barriers != "hazards" && barriers != "all") {
    return absl::InvalidArgumentError(
        absl::StrCat("vulkan: barriers=", barriers, ": expected hazards (the default) or all"));
  }
  backend->set_hazard_barriers(barriers == "hazards");
  if (auto st = backend->Init(); !st.ok()) return st;
  return std::unique_ptr<Backend>(std::move(backend));
}

}  // namespace

BackendFactory VulkanBackendFactory() {
  BackendFactory f;
  f.name = "vulkan";
  f.list_devices = ListVulkanDevices;
  f.create = CreateVulkanBackend;
  return f;
}

}  // namespace kiln
