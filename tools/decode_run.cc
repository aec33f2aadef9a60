#include "tools/decode_run.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <limits>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "graph/dtype.h"
#include "scheduler/model.h"
#include "tools/input_values.h"

namespace kiln::tools {
namespace {

using Clock = std::chrono::steady_clock;

double Ms(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

std::string Meta(const Graph& g, const std::string& key) {
  auto it = g.metadata.find(key);
  return it == g.metadata.end() ? "" : it->second;
}

bool IsState(const Graph& g, int id) {
  return std::any_of(g.states.begin(), g.states.end(), [id](const StatePair& s) { return s.input == id; });
}

// Random values for every non-state input of `g` except `skip`.
absl::Status BindRandomInputs(Executable& e, const std::vector<int>& skip, uint64_t seed,
                              std::vector<std::string>* named) {
  const Graph& g = e.graph();
  for (int id : g.inputs) {
    if (IsState(g, id) || std::find(skip.begin(), skip.end(), id) != skip.end()) continue;
    const TensorInfo& t = g.tensors[id];
    auto range = InputRangeFor(g, t.name);
    if (!range.ok()) return range.status();
    if (auto st = e.SetInput(t.name, RandomInput(t, *range, seed + static_cast<uint64_t>(id))); !st.ok()) return st;
    named->push_back(absl::StrCat(g.name, ":", t.name));
  }
  return absl::OkStatus();
}

double Median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

HostTensor StepMask(DType dtype, int64_t tokens, int64_t cells, int64_t start) {
  HostTensor m = HostTensor::Zeros(dtype, {1, 1, tokens, cells});
  for (int64_t t = 0; t < tokens; ++t) {
    for (int64_t j = 0; j < cells; ++j) {
      const float v = j <= start + t ? 0.0f : -INFINITY;
      const int64_t i = t * cells + j;
      if (dtype == DType::kF32) {
        reinterpret_cast<float*>(m.data.data())[i] = v;
      } else {
        reinterpret_cast<uint16_t*>(m.data.data())[i] = F32ToF16(v);
      }
    }
  }
  return m;
}

absl::StatusOr<std::string> DecodeEntryPath(const Graph& prefill, const std::string& prefill_path) {
  const std::string name = Meta(prefill, absl::StrCat(kDecodeEntryKey));
  if (name.empty()) return std::string();
  // The name comes from a file: a plain file name in the same folder only.
  if (name == "." || name == ".." || name.find('/') != std::string::npos || name.find('\0') != std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat("metadata \"", kDecodeEntryKey, "\" = \"", name,
                                                   "\" must name a graph file in the same folder"));
  }
  const size_t slash = prefill_path.rfind('/');
  return slash == std::string::npos ? name : absl::StrCat(prefill_path.substr(0, slash + 1), name);
}

absl::Status SetPrefillSteps(Executable& e, int64_t start) {
  const Graph& g = e.graph();
  const std::string pos_name = Meta(g, "decode.position"), mask_name = Meta(g, "decode.mask");
  const int pos_id = pos_name.empty() ? -1 : g.FindTensor(pos_name);
  if (pos_id < 0) return absl::OkStatus();
  const TensorInfo& pos = g.tensors[pos_id];
  if (pos.dtype != DType::kI32 || pos.dims.size() != 1) {
    return absl::InvalidArgumentError(absl::StrCat("graph '", g.name, "': position input ", Describe(pos),
                                                   " must be i32 [T]"));
  }
  const int64_t T = pos.dims[0];
  std::vector<int32_t> positions(static_cast<size_t>(T));
  for (int64_t t = 0; t < T; ++t) positions[t] = static_cast<int32_t>(start + t);
  if (auto st = e.SetInputBytes(pos.name, positions.data(), positions.size() * 4); !st.ok()) return st;
  const int mask_id = mask_name.empty() ? -1 : g.FindTensor(mask_name);
  if (mask_id < 0) return absl::OkStatus();
  const TensorInfo& m = g.tensors[mask_id];
  if ((m.dtype != DType::kF32 && m.dtype != DType::kF16) || m.rank() != 4 || m.dims[2] != T || m.numel() != T * m.dims[3]) {
    return absl::InvalidArgumentError(absl::StrCat("graph '", g.name, "': mask ", Describe(m),
                                                   " must be f32 or f16 [1, 1, ", T, ", cells]"));
  }
  if (start + T > m.dims[3]) {
    return absl::InvalidArgumentError(absl::StrCat("graph '", g.name, "': ", T, " tokens from position ", start,
                                                   " do not fit the ", m.dims[3], "-cell cache"));
  }
  return e.SetInput(m.name, StepMask(m.dtype, T, m.dims[3], start));
}

absl::StatusOr<DecodeRunReport> RunPrefillThenDecode(Graph prefill, Graph decode,
                                                     std::vector<std::shared_ptr<Backend>> backends,
                                                     const DecodeRunSettings& s) {
  DecodeRunReport report;
  if (!absl::SimpleAtoi(Meta(prefill, "tokens"), &report.prefill_tokens) || report.prefill_tokens < 1) {
    return absl::InvalidArgumentError(absl::StrCat("--decode: the prefill graph '", prefill.name,
                                                   "' has no metadata \"tokens\" (how many tokens it takes)"));
  }
  const std::string pos_name = Meta(decode, "decode.position"), mask_name = Meta(decode, "decode.mask");
  const int pos_id = decode.FindTensor(pos_name.empty() ? "pos" : pos_name);
  const int mask_id = mask_name.empty() ? decode.FindTensor("mask") : decode.FindTensor(mask_name);
  if (pos_id < 0 || decode.tensors[pos_id].dtype != DType::kI32 || decode.tensors[pos_id].numel() != 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--decode: the decode graph '", decode.name,
        "' has no i32 position input of one element (metadata \"decode.position\" names it)"));
  }
  int64_t cells = std::numeric_limits<int64_t>::max();
  if (mask_id >= 0) {
    const TensorInfo& m = decode.tensors[mask_id];
    if (m.dtype != DType::kF32 && m.dtype != DType::kF16) {
      return absl::InvalidArgumentError(absl::StrCat("--decode: mask ", Describe(m), " must be f32 or f16"));
    }
    cells = m.dims.back();
  }
  if (report.prefill_tokens + s.steps > cells) {
    return absl::InvalidArgumentError(absl::StrCat("--decode: ", report.prefill_tokens, " prefill tokens + ",
                                                   s.steps, " steps do not fit the ", cells, "-cell cache"));
  }

  ExecutableOptions options;
  options.placement.strict = s.strict;
  options.placement.disabled_ops = s.disabled_ops;
  Model model(std::move(backends), options);
  auto pre = model.Add("prefill", std::move(prefill));
  if (!pre.ok()) return pre.status();
  const WeightStats after_prefill = model.resources().weight_stats();
  auto dec = model.Add("decode", std::move(decode));
  if (!dec.ok()) return dec.status();
  const WeightStats after_decode = model.resources().weight_stats();
  report.weight_bytes_held = after_decode.bytes_held;
  report.weight_bytes_shared = after_decode.bytes_shared - after_prefill.bytes_shared;
  Executable& p = **pre;
  Executable& d = **dec;
  for (const std::string& name : model.resources().StateNames()) {
    auto v = model.resources().ReadState(name);  // once, for the size: not in the timed loop
    if (v.ok()) report.state_bytes += static_cast<int64_t>(v->data.size());
  }

  // A model entry (models/model_config.h) takes positions and a mask like
  // decode does: the prompt sits at 0..T-1, causal.
  std::vector<int> prefill_set;
  for (const char* key : {"decode.position", "decode.mask"}) {
    const int id = p.graph().FindTensor(Meta(p.graph(), key));
    if (id >= 0) prefill_set.push_back(id);
  }
  if (auto st = SetPrefillSteps(p, 0); !st.ok()) return st;
  if (auto st = BindRandomInputs(p, prefill_set, s.seed, &report.random_inputs); !st.ok()) return st;
  std::vector<int> advanced = {pos_id};
  if (mask_id >= 0) advanced.push_back(mask_id);
  if (auto st = BindRandomInputs(d, advanced, s.seed + 1000, &report.random_inputs); !st.ok()) return st;

  // The mask over the cache, advanced one cell per step.
  const TensorInfo* mask = mask_id >= 0 ? &d.graph().tensors[mask_id] : nullptr;
  HostTensor mask_value = mask ? HostTensor::Zeros(mask->dtype, mask->dims) : HostTensor{};
  const int64_t rows = mask ? mask->numel() / cells : 0;
  auto set_cell = [&](int64_t j, float v) {
    for (int64_t r = 0; r < rows; ++r) {
      const int64_t i = r * cells + j;
      if (mask->dtype == DType::kF32) {
        reinterpret_cast<float*>(mask_value.data.data())[i] = v;
      } else {
        reinterpret_cast<uint16_t*>(mask_value.data.data())[i] = F32ToF16(v);
      }
    }
  };
  const std::string pos_input = d.graph().tensors[pos_id].name;
  for (int64_t round = 0; round < s.rounds; ++round) {
    if (auto st = model.resources().ZeroStates(); !st.ok()) return st;
    auto t0 = Clock::now();
    if (auto st = p.Run(); !st.ok()) return st;
    report.prefill_ms.push_back(Ms(t0, Clock::now()));
    if (mask) {
      for (int64_t j = 0; j < cells; ++j) set_cell(j, j < report.prefill_tokens ? 0.0f : -INFINITY);
    }
    for (int64_t step = 0; step < s.steps; ++step) {
      const int32_t pos = static_cast<int32_t>(report.prefill_tokens + step);
      if (mask) set_cell(pos, 0.0f);
      t0 = Clock::now();
      if (auto st = d.SetInputBytes(pos_input, &pos, sizeof pos); !st.ok()) return st;
      if (mask) {
        if (auto st = d.SetInput(mask->name, mask_value); !st.ok()) return st;
      }
      if (auto st = d.Run(); !st.ok()) return st;
      report.step_ms.push_back(Ms(t0, Clock::now()));
    }
  }
  return report;
}

void PrintDecodeReport(const DecodeRunReport& r) {
  const double pre = Median(r.prefill_ms), step = Median(r.step_ms);
  std::printf("shared    %lld bytes of weights held once, %lld found already held by decode; %lld state bytes\n",
              static_cast<long long>(r.weight_bytes_held), static_cast<long long>(r.weight_bytes_shared),
              static_cast<long long>(r.state_bytes));
  std::printf("prefill   %lld tokens: median %.3f ms over %zu rounds = %.1f tokens/s\n",
              static_cast<long long>(r.prefill_tokens), pre, r.prefill_ms.size(),
              pre > 0 ? 1000.0 * r.prefill_tokens / pre : 0.0);
  std::printf("decode    median %.3f ms per token over %zu steps = %.1f tokens/s\n", step, r.step_ms.size(),
              step > 0 ? 1000.0 / step : 0.0);
}

}  // namespace kiln::tools
