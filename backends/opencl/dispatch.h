// How OpenCL kernels plug into the backend: each op family (ops_*.cc)
// registers an OpEntry with an exact supports() and a prepare() that turns a
// node into dispatches: kernels created from cached programs, with every
// argument set once at Prepare, so that Execute only enqueues.
#pragma once

#include <CL/cl.h>

#include <array>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "backends/backend.h"
#include "device.h"
#include "graph/graph.h"

namespace kiln::opencl {

// A tensor as kernels take it: a buffer and an offset in elements (bytes for
// q8_0), with its graph description.
struct TensorArg {
  cl_mem mem = nullptr;  // null: an absent optional input
  size_t byte_offset = 0;
  const TensorInfo* info = nullptr;
  bool present() const { return mem != nullptr; }
  // Element offset (bytes for q8_0).
  int64_t offset() const;
  int rank() const { return info->rank(); }
  int64_t dim(int i) const { return info->dims[i < 0 ? rank() + i : i]; }
  // Stride of dim i in elements (bytes for q8_0).
  int64_t stride(int i) const;
};

using Int4 = std::array<int64_t, 4>;
// Dims right-aligned into 4 (leading 1s); strides likewise (leading 0s).
Int4 Dims4(const std::vector<int64_t>& dims);
Int4 Strides4(const TensorArg& t);
// t's strides for an output of dims `out` (right-aligned, rank >= t's):
// 0 where t broadcasts (its dim is 1 and the output's is not).
Int4 BroadcastStrides4(const TensorArg& t, const std::vector<int64_t>& out);

struct Dispatch {
  cl_kernel kernel = nullptr;
  int work_dim = 1;
  std::array<size_t, 3> global{1, 1, 1}, local{0, 0, 0};  // local[0] == 0: the driver picks
  int node = -1;
  std::string name;
};

// Sets a kernel's arguments in order.
class KernelArgs {
 public:
  explicit KernelArgs(cl_kernel k) : k_(k) {}
  KernelArgs& mem(cl_mem m);
  KernelArgs& i32(int64_t v);
  KernelArgs& i64(int64_t v);
  KernelArgs& f32(double v);
  KernelArgs& i4(const Int4& v);
  // mem + element offset.
  KernelArgs& tensor(const TensorArg& t, cl_mem fallback);
  absl::Status status() const { return status_; }

 private:
  KernelArgs& raw(size_t size, const void* value);
  cl_kernel k_;
  cl_uint index_ = 0;
  absl::Status status_;
};

class PrepareContext {
 public:
  virtual ~PrepareContext() = default;
  const Graph* graph = nullptr;
  const Node* node = nullptr;
  int node_index = -1;
  std::vector<TensorArg> in, out;
  cl_mem error_record = nullptr;  // this split's DeviceErrorRecord
  cl_mem dummy = nullptr;         // bound where an input is absent
  const DeviceFacts* device = nullptr;
  std::vector<Dispatch>* dispatches = nullptr;

  // A new kernel `name` of the program kernels/<source>.cl with `options`,
  // appended to the split's dispatches (the caller sets args and sizes).
  virtual absl::StatusOr<Dispatch*> Add(absl::string_view source, const std::string& options,
                                        const char* name) = 0;
  // Device memory owned by the prepared split (scratch, partials); zeroed:
  // filled with zeros once, at creation (counters that kernels reset).
  virtual absl::StatusOr<cl_mem> Scratch(size_t bytes, bool zeroed = false) = 0;
};

struct OpEntry {
  std::string op;
  Support (*supports)(const Graph& graph, const Node& node, const DeviceFacts& device) = nullptr;
  absl::Status (*prepare)(PrepareContext& ctx) = nullptr;
};

void RegisterElementwiseOps(std::vector<OpEntry>& ops);  // ops_elementwise.cc
void RegisterRowOps(std::vector<OpEntry>& ops);          // ops_rows.cc: norms, softmax, reduce, rope, conv1d
void RegisterLayoutOps(std::vector<OpEntry>& ops);       // ops_layout.cc: copies, gather, write_rows
void RegisterMatmulOps(std::vector<OpEntry>& ops);       // ops_matmul.cc
void RegisterAttentionOps(std::vector<OpEntry>& ops);    // ops_attention.cc: flash_attn, gated_delta_net
const OpEntry* FindOp(absl::string_view op);

// A positive integer from the environment variable `name`, else `fallback`:
// the kernels' tuning knobs (KILN_OPENCL_FA_SPLIT, KILN_OPENCL_GEMV_ROWS),
// for measuring variants on a device without rebuilding.
int64_t EnvInt(const char* name, int64_t fallback);

// " -DKILN_PTX=1" where kernels may use inline PTX (an NVIDIA platform;
// KILN_OPENCL_PTX=0 turns it off), else "". Kernels keep a portable path.
std::string PtxOption(const DeviceFacts& device);

// Round n up to a multiple of m.
inline size_t RoundUp(size_t n, size_t m) { return (n + m - 1) / m * m; }
// A 1-d dispatch of n work-items in groups of `wg`.
void Set1D(Dispatch& d, size_t n, size_t wg = 256);

// The tensor of node input i (absent optional: nullptr).
inline const TensorInfo* InputInfo(const Graph& g, const Node& n, int i) {
  return n.has_input(i) ? &g.tensors[n.inputs[i]] : nullptr;
}

}  // namespace kiln::opencl
