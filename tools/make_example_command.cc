// kiln make-example NAME -o FILE: writes one of the example model graphs, or
// a whole model with seeded random weights in a published model's shapes
// (models/published_configs.h): its prefill entry FILE, the decode entry
// next to it and one weights file both reference (models/example_model.h).
#include <cstdio>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_format.h"
#include "examples/example_graphs.h"
#include "models/example_model.h"
#include "models/published_configs.h"
#include "proto/graph_io.h"
#include "tools/args.h"
#include "tools/command.h"

namespace kiln::tools {
namespace {

const FlagSpec kFlags[] = {
    {"output", "FILE", "where to write the graph (required)", false, 'o'},
    {"seed", "S", "seed of the random weights (default 0)"},
    {"external-weights", "", "put large weights in FILE.weights, mapped on load"},
    {"tokens", "N", "tokens a prefill form takes (default 512)"},
    {"dtype", "f16|bf16", "models: dtype of the projection weights (default f16; norms stay f32)"},
    {"layers", "N", "models: only the first N layers (the layer pattern kept)"},
    {"context", "N", "models: KV cache cells (default 4096)"},
    {"list", "", "print the example names and exit"},
};

int MakeModel(const ParsedArgs& args, models::ModelConfig config, uint64_t seed) {
  if (args.has("external-weights")) {
    return Fail(kExitUsage, "make-example: models always keep their weights in FILE.weights");
  }
  models::ExampleModelOptions o;
  o.weights.seed = seed;
  const std::string dtype = args.Get("dtype", "f16");
  if (dtype == "f16") {
    o.weights.projection_dtype = DType::kF16;
  } else if (dtype == "bf16") {
    o.weights.projection_dtype = DType::kBF16;
  } else {
    return Fail(kExitUsage, absl::StrCat("make-example: --dtype ", dtype, ": expected f16 or bf16"));
  }
  auto context = args.GetInt("context", 4096, 1, int64_t{1} << 24);
  if (!context.ok()) return Fail(kExitUsage, absl::StrCat("make-example: ", context.status().message()));
  auto tokens = args.GetInt("tokens", std::min<int64_t>(512, *context), 1, *context);
  if (!tokens.ok()) return Fail(kExitUsage, absl::StrCat("make-example: ", tokens.status().message()));
  auto layers = args.GetInt("layers", config.num_layers, 1, config.num_layers);
  if (!layers.ok()) return Fail(kExitUsage, absl::StrCat("make-example: ", layers.status().message()));
  auto small = models::WithLayers(std::move(config), *layers);
  if (!small.ok()) return Fail(kExitUsage, absl::StrCat("make-example: ", small.status().message()));
  o.context = *context;
  o.prefill_tokens = *tokens;
  const std::string path = args.Get("output");
  auto files = models::WriteExampleModel(*small, o, path);
  if (!files.ok()) return Fail(kExitRunError, absl::StrCat(path, ": ", files.status().message()));
  std::printf("wrote %s (prefill, %lld tokens) and %s (decode), %lld layers, context %lld\n", files->prefill.c_str(),
              static_cast<long long>(o.prefill_tokens), files->decode.c_str(), static_cast<long long>(*layers),
              static_cast<long long>(o.context));
  std::printf("weights %s: %.2f GiB of random %s/f32 weights in %.1f s (%.0f MiB/s)\n", files->weights.c_str(),
              files->weight_bytes / 1073741824.0, dtype.c_str(), files->weights_seconds,
              files->weights_seconds > 0 ? files->weight_bytes / 1048576.0 / files->weights_seconds : 0.0);
  return kExitOk;
}

}  // namespace

int MakeExampleCommand(const std::vector<std::string>& argv) {
  auto args = ParseArgs(argv, kFlags);
  if (!args.ok()) {
    return Fail(kExitUsage, absl::StrCat("make-example: ", args.status().message(),
                                         " (see kiln make-example --help)"));
  }
  std::vector<std::string> all = ExampleNames();
  for (const std::string& m : models::PublishedModelNames()) all.push_back(m);
  const std::string names = absl::StrJoin(all, ", ");
  if (args->help) {
    std::printf("usage: kiln make-example NAME -o FILE [flags]\n\n"
                "Writes an example model graph with seeded random weights. For a model\n"
                "(qwen3.5-0.8b, qwen3-4b, llama-3-8b: the published shapes), FILE is the\n"
                "prefill entry, FILE minus .kgraph plus .decode.kgraph the decode entry, and\n"
                "FILE.weights the weights both reference; run it with kiln run FILE --steps N.\n"
                "Examples: %s\n\n%s",
                names.c_str(), FlagsHelp(kFlags).c_str());
    return kExitOk;
  }
  if (args->has("list")) {
    for (const std::string& n : all) std::printf("%s\n", n.c_str());
    return kExitOk;
  }
  if (args->positional.size() != 1) {
    return Fail(kExitUsage, absl::StrCat("make-example: give one example name (", names, ")"));
  }
  if (!args->has("output")) return Fail(kExitUsage, "make-example: -o FILE is required");
  auto seed = args->GetInt("seed", 0, 0, INT64_MAX);
  if (!seed.ok()) return Fail(kExitUsage, absl::StrCat("make-example: ", seed.status().message()));

  if (auto model = models::PublishedModelConfig(args->positional[0]); model.ok()) {
    return MakeModel(*args, *model, static_cast<uint64_t>(*seed));
  }
  for (const char* flag : {"dtype", "layers", "context"}) {
    if (args->has(flag)) return Fail(kExitUsage, absl::StrCat("make-example: --", flag, " is for models only"));
  }
  auto tokens = args->GetInt("tokens", 512, 1, 4096);
  if (!tokens.ok()) return Fail(kExitUsage, absl::StrCat("make-example: ", tokens.status().message()));
  ExampleOptions example;
  example.seed = static_cast<uint64_t>(*seed);
  example.prefill_tokens = *tokens;
  auto graph = MakeExample(args->positional[0], example);
  if (!graph.ok()) {
    if (absl::IsNotFound(graph.status())) {
      return Fail(kExitUsage, absl::StrCat("make-example: unknown example '", args->positional[0],
                                           "' (examples: ", names, ")"));
    }
    return Fail(kExitRunError, graph.status());
  }
  SaveOptions options;
  options.external_weights = args->has("external-weights");
  const std::string path = args->Get("output");
  if (auto st = SaveGraph(*graph, path, options); !st.ok()) {
    return Fail(kExitRunError, absl::StrCat(path, ": ", st.message()));
  }
  std::printf("wrote %s (%zu nodes, %zu tensors)%s\n", path.c_str(), graph->nodes.size(),
              graph->tensors.size(),
              options.external_weights ? absl::StrCat(", weights in ", WeightsPathFor(path)).c_str() : "");
  return kExitOk;
}

}  // namespace kiln::tools
