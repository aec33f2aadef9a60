// kiln import DIR-or-FILE -o OUT.kgraph: a Hugging Face folder or a GGUF file
// -> the model's prefill and decode entries (import/model_import.h).
#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "import/model_import.h"
#include "tools/args.h"
#include "tools/command.h"

namespace kiln::tools {
namespace {

const FlagSpec kFlags[] = {
    {"output", "OUT.kgraph", "the prefill entry to write (required); the decode entry is OUT.decode.kgraph", false,
     'o'},
    {"context", "N", "KV cache cells (default 4096)"},
    {"tokens", "T", "tokens the prefill entry takes (default 512, at most the context)"},
    {"dtype", "keep|f16|bf16|f32", "convert float weights (default keep; q8_0 weights stay q8_0)"},
    {"cache-dtype", "f16|bf16|f32", "the KV caches' dtype (default f16)"},
};

}  // namespace

int ImportCommand(const std::vector<std::string>& argv) {
  auto args = ParseArgs(argv, kFlags);
  if (!args.ok()) {
    return Fail(kExitUsage, absl::StrCat("import: ", args.status().message(), " (see kiln import --help)"));
  }
  if (args->help) {
    std::printf(
        "usage: kiln import DIR-or-FILE -o OUT.kgraph [flags]\n\n"
        "Imports a checkpoint: a Hugging Face folder (config.json and model.safetensors or its\n"
        "shards: LlamaForCausalLM, Qwen3ForCausalLM, Qwen3NextForCausalLM, Qwen3.5) or a GGUF\n"
        "file (llama, qwen3; F32, F16, BF16 and Q8_0 tensors). Writes the prefill entry OUT.kgraph\n"
        "and the decode entry OUT.decode.kgraph over the same weights and states; run them with\n"
        "kiln run OUT.kgraph --decode OUT.decode.kgraph. Weights are referenced where they lie\n"
        "when the checkpoint is in OUT's folder and aligned; the rest go to OUT.kgraph.weights.\n\n%s",
        FlagsHelp(kFlags).c_str());
    return kExitOk;
  }
  if (args->positional.size() != 1) return Fail(kExitUsage, "import: give one checkpoint folder or file");
  if (!args->has("output")) return Fail(kExitUsage, "import: -o OUT.kgraph is required");
  import::ImportOptions options;
  auto context = args->GetInt("context", 4096, 1, int64_t{1} << 24);
  if (!context.ok()) return Fail(kExitUsage, absl::StrCat("import: ", context.status().message()));
  auto tokens = args->GetInt("tokens", std::min<int64_t>(512, *context), 1, *context);
  if (!tokens.ok()) return Fail(kExitUsage, absl::StrCat("import: ", tokens.status().message()));
  options.context = *context;
  options.tokens = *tokens;
  const std::string dtype = args->Get("dtype", "keep");
  if (dtype != "keep") {
    auto t = ParseDType(dtype);
    if (!t.ok() || !IsFloat(*t)) return Fail(kExitUsage, "import: --dtype is keep, f16, bf16 or f32");
    options.dtype = *t;
  }
  if (args->has("cache-dtype")) {
    auto t = ParseDType(args->Get("cache-dtype"));
    if (!t.ok() || !IsFloat(*t)) return Fail(kExitUsage, "import: --cache-dtype is f16, bf16 or f32");
    options.cache_dtype = *t;
  }
  auto result = import::ImportModel(args->positional[0], args->Get("output"), options);
  if (!result.ok()) return Fail(kExitRunError, absl::StrCat("import: ", result.status().message()));
  const double mib = 1.0 / (1 << 20);
  std::printf("imported %s (%s): %lld layers, hidden %lld, vocab %lld\n", result->config.name.c_str(),
              result->source.c_str(), static_cast<long long>(result->config.num_layers),
              static_cast<long long>(result->config.hidden_size), static_cast<long long>(result->config.vocab_size));
  std::printf("wrote %s (prefill, %lld tokens) and %s (decode), context %lld\n", result->prefill_path.c_str(),
              static_cast<long long>(options.tokens), result->decode_path.c_str(),
              static_cast<long long>(options.context));
  std::printf("%lld weights: %.1f MiB referenced in place, %.1f MiB written%s%s\n",
              static_cast<long long>(result->weights), result->bytes_in_place * mib, result->bytes_written * mib,
              result->weights_path.empty() ? "" : " to ", result->weights_path.c_str());
  if (result->unaligned_in_folder > 0) {
    std::printf("note: %lld checkpoint tensors in OUT's folder lie at offsets that are not multiples of 64 bytes "
                "(what kiln maps in place), so they were copied\n",
                static_cast<long long>(result->unaligned_in_folder));
  }
  return kExitOk;
}

}  // namespace kiln::tools
