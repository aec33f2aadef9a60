// How a node becomes dispatches: each op family (kernels_*.cc) registers an
// entry whose supports() is exact and whose record() appends the dispatches
// (shader, specialization constants, parameter words, buffer slots, groups)
// for one node. The backend turns those into one command buffer per split.
#pragma once

#include <vulkan/vulkan.h>

#include <array>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "backends/backend.h"
#include "backends/vulkan/vk_device.h"
#include "backends/vulkan/vk_pipelines.h"
#include "graph/graph.h"

namespace kiln::vk {

// Dtype codes the shaders use (shaders/common.glsl): DType's values.
inline int32_t DtCode(DType t) { return static_cast<int32_t>(t); }

// A range of one VkBuffer bound to a binding.
struct Slot {
  VkBuffer buffer = VK_NULL_HANDLE;
  VkDeviceSize offset = 0;
  VkDeviceSize range = 0;
};

// A tensor as kernels address it: a slot, an element offset into it and
// element strides (bytes for q8_0, whose rows are packed blocks), with dims
// and strides padded on the left to rank 4 (dims 1, strides 0).
struct TensorArg {
  const TensorInfo* info = nullptr;
  int id = -1;
  Slot slot;
  const Buffer* buffer = nullptr;
  size_t byte_offset = 0;  // of the tensor in `buffer`
  uint32_t offset = 0;     // elements (bytes for q8_0) from the slot's start
  int rank = 0;
  std::array<int64_t, 4> dims{1, 1, 1, 1};
  std::array<int64_t, 4> strides{0, 0, 0, 0};
  bool present() const { return info != nullptr; }
  DType dtype() const { return info->dtype; }
  int64_t dim(int i) const { return dims[i < 0 ? 4 + i : i]; }  // padded index
  int64_t numel() const { return dims[0] * dims[1] * dims[2] * dims[3]; }
  // Contiguous row-major (q8_0: packed rows).
  bool contiguous() const;
  // Same bytes as `o` (in-place).
  bool SameMemory(const TensorArg& o) const { return buffer == o.buffer && byte_offset == o.byte_offset; }
};

struct Dispatch {
  PipelineSpec pipeline;
  std::vector<uint32_t> params;  // word 0: the node index (filled by Add)
  std::array<Slot, kNumTensorSlots> slots{};
  uint32_t groups[3] = {1, 1, 1};

  Dispatch& U(uint64_t v) { params.push_back(static_cast<uint32_t>(v)); return *this; }
  Dispatch& I(int64_t v) { params.push_back(static_cast<uint32_t>(static_cast<int32_t>(v))); return *this; }
  Dispatch& F(double v) {
    float f = static_cast<float>(v);
    uint32_t u;
    std::memcpy(&u, &f, 4);
    params.push_back(u);
    return *this;
  }
  // offset, then the 4 padded strides.
  Dispatch& T(const TensorArg& t) {
    U(t.offset);
    for (int i = 0; i < 4; ++i) U(static_cast<uint32_t>(t.strides[i]));
    return *this;
  }
  // The 4 padded dims.
  Dispatch& Dims(const std::array<int64_t, 4>& d) {
    for (int i = 0; i < 4; ++i) U(static_cast<uint32_t>(d[i]));
    return *this;
  }
  Dispatch& Bind(int slot, const TensorArg& t) { slots[slot] = t.slot; return *this; }
  Dispatch& Bind(int slot, const Slot& s) { slots[slot] = s; return *this; }
};

class KernelContext {
 public:
  KernelContext(const Graph& g, const Node& n, int index, const DeviceFacts& f) : graph(g), node(n), node_index(index), facts(f) {}
  const Graph& graph;
  const Node& node;
  const int node_index;
  const DeviceFacts& facts;
  std::vector<TensorArg> inputs;   // absent optional inputs: !present()
  std::vector<TensorArg> outputs;
  // Device-local scratch memory owned by the prepared split; zeroed: filled
  // with zeros once, before the split's first run (counters that the
  // kernels reset to zero when done), else uninitialized.
  std::function<absl::StatusOr<Slot>(size_t bytes, bool zeroed)> scratch;
  std::vector<Dispatch> dispatches;

  const TensorArg& in(int i) const { static const TensorArg none; return i < (int)inputs.size() ? inputs[i] : none; }
  const TensorArg& out(int i) const { return outputs[i]; }
  Dispatch& Add(std::string shader, std::vector<int32_t> spec, uint64_t gx, uint64_t gy = 1, uint64_t gz = 1) {
    Dispatch d;
    d.pipeline = {std::move(shader), std::move(spec)};
    d.params.push_back(static_cast<uint32_t>(node_index));
    d.groups[0] = static_cast<uint32_t>(gx);
    d.groups[1] = static_cast<uint32_t>(gy);
    d.groups[2] = static_cast<uint32_t>(gz);
    dispatches.push_back(std::move(d));
    return dispatches.back();
  }
};

struct VkKernelEntry {
  std::string op;
  Support (*supports)(const Graph& graph, const Node& node, const DeviceFacts& facts) = nullptr;
  absl::Status (*record)(KernelContext& ctx) = nullptr;
};

// Groups for a grid-stride loop over n items with `local` invocations per group.
inline uint32_t GridGroups(uint64_t n, uint32_t local) {
  const uint64_t g = (n + local - 1) / local;
  return static_cast<uint32_t>(g < 1 ? 1 : (g > 65535 ? 65535 : g));
}

// NV cooperative matrices of 16x16x16 f16 -> f32 with f16 arithmetic and
// subgroups of 32 (matmul_cm.comp and flash_attn_cm.comp lay out their
// subgroups for 32 lanes).
inline bool HasCoopmat16(const DeviceFacts& f) {
  if (!f.coopmat_nv || !f.float16 || f.subgroup_size != 32) return false;
  for (const std::string& s : f.coopmat_shapes) {
    if (s == "16x16x16 f16->f32") return true;
  }
  return false;
}

// One per family file.
void RegisterElementwiseKernels(std::vector<VkKernelEntry>& k);  // kernels_elementwise.cc (+layout copies)
void RegisterMatmulKernels(std::vector<VkKernelEntry>& k);       // kernels_matmul.cc
void RegisterNormKernels(std::vector<VkKernelEntry>& k);         // kernels_norm.cc (+softmax, rope, reduce)
void RegisterIndexKernels(std::vector<VkKernelEntry>& k);        // kernels_index.cc (gather, write_rows, conv1d)
void RegisterAttentionKernels(std::vector<VkKernelEntry>& k);    // kernels_attention.cc (flash_attn, gdn)

const VkKernelEntry* FindKernel(absl::string_view op);

}  // namespace kiln::vk
