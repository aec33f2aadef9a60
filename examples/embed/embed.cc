// Embedding kiln from C++: load the hybrid example as one model of two
// entries (prefill and decode over the same weights and states), prefill a
// prompt, then decode token after token. The KV caches and recurrent states
// stay on the device the whole time; only each token's activations pass
// through the host. Prints tokens/s for each phase.
//
//   kiln make-example hybrid-block-prefill -o out/prefill.kgraph
//   kiln make-example hybrid-block-decode -o out/decode.kgraph
//   embed out/prefill.kgraph out/decode.kgraph [--steps N] [--backend cpu]
//
// embed.c does the same through the C API, embed.py through Python; the
// three print the same checksum for the same graphs.
#include <kiln/kiln.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace k = kiln::api;

namespace {

using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double>(b - a).count(); }

int Fail(const std::string& what, const absl::Status& status) {
  std::fprintf(stderr, "embed: %s: %s\n", what.c_str(), std::string(status.message()).c_str());
  return 1;
}

// The prompt: token t's activations, the same formula in embed.c and embed.py.
float PromptValue(int64_t t, int64_t c) { return 0.5f * std::sin(0.37f * t + 0.011f * c); }

// The input named by metadata `key` (the decode graph says which input is
// the position and which the mask), else `fallback`.
std::string InputName(const k::Entry& e, const std::string& key, const std::string& fallback) {
  auto it = e.metadata().find(key);
  return it == e.metadata().end() ? fallback : it->second;
}

const k::TensorDesc* FindInput(const k::Entry& e, const std::string& name) {
  for (const k::TensorDesc& d : e.inputs()) {
    if (d.name == name) return &d;
  }
  return nullptr;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: embed PREFILL.kgraph DECODE.kgraph [--steps N] [--backend NAME[,NAME...]]\n");
    return 2;
  }
  int steps = 16;
  std::string backend_list = "cpu";
  for (int i = 3; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "--steps") == 0) {
      steps = std::atoi(argv[i + 1]);
    } else if (std::strcmp(argv[i], "--backend") == 0) {
      backend_list = argv[i + 1];
    } else {
      std::fprintf(stderr, "embed: unknown flag %s\n", argv[i]);
      return 2;
    }
  }

  // Backends, in priority order: each node runs on the first that runs it.
  std::vector<k::Backend> backends;
  for (size_t start = 0; start <= backend_list.size();) {
    size_t end = backend_list.find(',', start);
    if (end == std::string::npos) end = backend_list.size();
    const std::string name = backend_list.substr(start, end - start);
    auto backend = k::Backend::Open(name);
    if (!backend.ok()) return Fail("opening backend " + name, backend.status());
    backends.push_back(*backend);
    start = end + 1;
  }

  // One model, two entries: the file's own graph is "prefill".
  auto model = k::Model::Load(argv[1]);
  if (!model.ok()) return Fail(argv[1], model.status());
  if (!model->entry("decode").ok()) {
    if (auto st = model->AddEntryFile("decode", argv[2]); !st.ok()) return Fail(argv[2], st);
  }
  if (auto st = model->Prepare(backends); !st.ok()) return Fail("prepare", st);
  k::Entry& prefill = **model->entry("prefill");
  k::Entry& decode = **model->entry("decode");

  // Prefill: x is [1, T, hidden].
  const k::TensorDesc* x_desc = FindInput(prefill, "x");
  if (x_desc == nullptr || x_desc->dims.size() != 3) {
    return Fail("prefill", absl::InvalidArgumentError("expected an input x of shape [1, T, hidden]"));
  }
  const int64_t tokens = x_desc->dims[1], hidden = x_desc->dims[2];
  std::vector<float> prompt(tokens * hidden);
  for (int64_t t = 0; t < tokens; ++t) {
    for (int64_t c = 0; c < hidden; ++c) prompt[t * hidden + c] = PromptValue(t, c);
  }
  if (auto st = model->ZeroStates(); !st.ok()) return Fail("zero states", st);
  if (auto st = prefill.SetInput("x", k::DType::kF32, x_desc->dims, prompt.data(), prompt.size() * sizeof(float));
      !st.ok()) {
    return Fail("prefill input", st);
  }
  auto t0 = Clock::now();
  if (auto st = prefill.Run(); !st.ok()) return Fail("prefill", st);
  const double prefill_s = Seconds(t0, Clock::now());
  auto y = prefill.GetOutput("y");
  if (!y.ok()) return Fail("prefill output", y.status());

  // Decode: each step feeds the previous step's last row of y back as x,
  // at the next position, with one more cache cell visible in the mask.
  const std::string pos_name = InputName(decode, "decode.position", "pos");
  const std::string mask_name = InputName(decode, "decode.mask", "mask");
  const k::TensorDesc* mask_desc = FindInput(decode, mask_name);
  if (mask_desc == nullptr || mask_desc->dtype != k::DType::kF32) {
    return Fail("decode", absl::InvalidArgumentError("expected an f32 input " + mask_name));
  }
  const int64_t cells = mask_desc->dims.back();
  if (tokens + steps > cells) {
    return Fail("decode", absl::InvalidArgumentError("prefill tokens + steps exceed the cache"));
  }
  std::vector<float> mask(cells, -INFINITY);
  for (int64_t j = 0; j < tokens; ++j) mask[j] = 0;
  std::vector<float> x(hidden);
  std::memcpy(x.data(), y->data() + (tokens - 1) * hidden * sizeof(float), hidden * sizeof(float));
  const std::vector<int64_t> x_dims = {1, 1, hidden};
  t0 = Clock::now();
  for (int step = 0; step < steps; ++step) {
    const int32_t pos = static_cast<int32_t>(tokens + step);
    mask[pos] = 0;
    absl::Status st = decode.SetInput("x", k::DType::kF32, x_dims, x.data(), x.size() * sizeof(float));
    if (st.ok()) st = decode.SetInput(pos_name, k::DType::kI32, {1}, &pos, sizeof pos);
    if (st.ok()) st = decode.SetInput(mask_name, k::DType::kF32, mask_desc->dims, mask.data(), mask.size() * sizeof(float));
    if (st.ok()) st = decode.Run();
    if (st.ok()) st = decode.ReadOutput("y", x.data(), x.size() * sizeof(float));
    if (!st.ok()) return Fail("decode step " + std::to_string(step), st);
  }
  const double decode_s = Seconds(t0, Clock::now());

  double checksum = 0;
  for (float v : x) checksum += v;
  std::printf("backends  %s\n", backend_list.c_str());
  std::printf("prefill   %lld tokens in %.3f ms = %.1f tokens/s\n", static_cast<long long>(tokens), prefill_s * 1e3,
              tokens / prefill_s);
  std::printf("decode    %d tokens in %.3f ms = %.1f tokens/s\n", steps, decode_s * 1e3,
              steps > 0 ? steps / decode_s : 0.0);
  std::printf("checksum  %.6e\n", checksum);
  return std::isfinite(checksum) ? 0 : 1;
}
