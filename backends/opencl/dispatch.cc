#include "dispatch.h"

#include <algorithm>
#include <cstdlib>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "cl_util.h"

namespace kiln::opencl {

int64_t TensorArg::offset() const {
  const int es = ElementSize(info->dtype);
  return es > 0 ? static_cast<int64_t>(byte_offset) / es : static_cast<int64_t>(byte_offset);
}

int64_t TensorArg::stride(int i) const {
  const int es = ElementSize(info->dtype);
  const int64_t s = info->strides[i < 0 ? rank() + i : i];
  return es > 0 ? s / es : s;
}

Int4 Dims4(const std::vector<int64_t>& dims) {
  Int4 r{1, 1, 1, 1};
  const int n = static_cast<int>(dims.size());
  for (int i = 0; i < n && i < 4; ++i) r[4 - n + i] = dims[i];
  return r;
}

Int4 Strides4(const TensorArg& t) {
  Int4 r{0, 0, 0, 0};
  const int n = t.rank();
  for (int i = 0; i < n; ++i) r[4 - n + i] = t.stride(i);
  return r;
}

Int4 BroadcastStrides4(const TensorArg& t, const std::vector<int64_t>& out) {
  Int4 r{0, 0, 0, 0};
  const int n = t.rank();
  const int on = static_cast<int>(out.size());
  for (int i = 0; i < n; ++i) {
    const int o = on - n + i;
    const bool broadcast = t.dim(i) == 1 && out[o] != 1;
    r[4 - n + i] = broadcast ? 0 : t.stride(i);
  }
  return r;
}

KernelArgs& KernelArgs::raw(size_t size, const void* value) {
  if (!status_.ok()) return *this;
  const cl_int err = clSetKernelArg(k_, index_, size, value);
  if (err != CL_SUCCESS) status_ = ClError(err, absl::StrCat("setting kernel argument ", index_));
  ++index_;
  return *this;
}
KernelArgs& KernelArgs::mem(cl_mem m) { return raw(sizeof(cl_mem), &m); }
KernelArgs& KernelArgs::i32(int64_t v) {
  const cl_int x = static_cast<cl_int>(v);
  return raw(sizeof(x), &x);
}
KernelArgs& KernelArgs::i64(int64_t v) {
  const cl_long x = v;
  return raw(sizeof(x), &x);
}
KernelArgs& KernelArgs::f32(double v) {
  const cl_float x = static_cast<cl_float>(v);
  return raw(sizeof(x), &x);
}
KernelArgs& KernelArgs::i4(const Int4& v) {
  cl_int4 x;
  for (int i = 0; i < 4; ++i) x.s[i] = static_cast<cl_int>(v[i]);
  return raw(sizeof(x), &x);
}
KernelArgs& KernelArgs::tensor(const TensorArg& t, cl_mem fallback) {
  mem(t.present() ? t.mem : fallback);
  return i64(t.present() ? t.offset() : 0);
}

int64_t EnvInt(const char* name, int64_t fallback) {
  const char* v = std::getenv(name);
  if (!v || !*v) return fallback;
  const int64_t x = std::atoll(v);
  return x > 0 ? x : fallback;
}

std::string PtxOption(const DeviceFacts& device) {
  const char* v = std::getenv("KILN_OPENCL_PTX");
  if (v && std::string_view(v) == "0") return "";
  if (!absl::StrContains(device.platform_name, "NVIDIA")) return "";
  // KILN_OPENCL_NC: the cache hint of ld_stream (common.cl), to measure.
  const int64_t nc = EnvInt("KILN_OPENCL_NC", 0);
  return nc > 0 ? absl::StrCat(" -DKILN_PTX=1 -DKILN_NC=", nc) : " -DKILN_PTX=1";
}

void Set1D(Dispatch& d, size_t n, size_t wg) {
  d.work_dim = 1;
  d.local = {wg, 1, 1};
  d.global = {std::max(wg, RoundUp(n, wg)), 1, 1};
}

const OpEntry* FindOp(absl::string_view op) {
  static const std::vector<OpEntry>* table = [] {
    auto* t = new std::vector<OpEntry>;
    RegisterElementwiseOps(*t);
    RegisterRowOps(*t);
    RegisterLayoutOps(*t);
    RegisterMatmulOps(*t);
    RegisterAttentionOps(*t);
    return t;
  }();
  for (const OpEntry& e : *table) {
    if (e.op == op) return &e;
  }
  return nullptr;
}

}  // namespace kiln::opencl
