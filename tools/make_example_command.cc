// kiln make-example NAME -o FILE: writes one of the example model graphs.
#include <cstdio>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "examples/example_graphs.h"
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
    {"list", "", "print the example names and exit"},
};

}  // namespace

int MakeExampleCommand(const std::vector<std::string>& argv) {
  auto args = ParseArgs(argv, kFlags);
  if (!args.ok()) {
    return Fail(kExitUsage, absl::StrCat("make-example: ", args.status().message(),
                                         " (see kiln make-example --help)"));
  }
  const std::string names = absl::StrJoin(ExampleNames(), ", ");
  if (args->help) {
    std::printf("usage: kiln make-example NAME -o FILE [flags]\n\n"
                "Writes an example model graph with seeded random weights.\n"
                "Examples: %s\n\n%s",
                names.c_str(), FlagsHelp(kFlags).c_str());
    return kExitOk;
  }
  if (args->has("list")) {
    for (const std::string& n : ExampleNames()) std::printf("%s\n", n.c_str());
    return kExitOk;
  }
  if (args->positional.size() != 1) {
    return Fail(kExitUsage, absl::StrCat("make-example: give one example name (", names, ")"));
  }
  if (!args->has("output")) return Fail(kExitUsage, "make-example: -o FILE is required");
  auto seed = args->GetInt("seed", 0, 0, INT64_MAX);
  if (!seed.ok()) return Fail(kExitUsage, absl::StrCat("make-example: ", seed.status().message()));

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
