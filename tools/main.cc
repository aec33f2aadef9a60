// The kiln command: dispatches to one subcommand per file.
#include <cstdio>
#include <exception>
#include <new>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "tools/command.h"

namespace kiln::tools {
namespace {

struct Subcommand {
  const char* name;
  const char* summary;
  int (*run)(const std::vector<std::string>& args);
};

const Subcommand kCommands[] = {
    {"run", "run a graph file: inputs from .npy or random, timings, profile, outputs", RunCommand},
    {"plan", "where each node would run and why, splits, transfers, memory per backend", PlanCommand},
    {"info", "backends, devices, features and the pipeline cache folder", InfoCommand},
    {"make-example", "write an example model graph", MakeExampleCommand},
    {"import", "import a Hugging Face or GGUF checkpoint as prefill and decode graphs", ImportCommand},
    {"conformance", "check a backend against the op references over a grid of cases", ConformanceCommand},
    {"bench", "time flash attention, gated delta net and linear against this machine's limits", BenchCommand},
};

void PrintUsage() {
  std::printf("usage: kiln <command> [args]\n\ncommands:\n");
  for (const Subcommand& c : kCommands) std::printf("  %-14s %s\n", c.name, c.summary);
  std::printf("\nRun 'kiln <command> --help' for a command's arguments.\n");
}

int Main(int argc, char** argv) {
  if (argc < 2) return Fail(kExitUsage, "no command given (see kiln --help)");
  const std::string cmd = argv[1];
  if (cmd == "--help" || cmd == "-h" || cmd == "help") {
    PrintUsage();
    return kExitOk;
  }
  if (cmd == "--version") {
    std::printf("kiln %s\n", KILN_VERSION);
    return kExitOk;
  }
  for (const Subcommand& c : kCommands) {
    if (cmd == c.name) return c.run(std::vector<std::string>(argv + 2, argv + argc));
  }
  return Fail(kExitUsage, absl::StrCat("unknown command '", cmd, "' (see kiln --help)"));
}

}  // namespace

}  // namespace kiln::tools

int main(int argc, char** argv) {
  // kiln code reports errors through absl::Status; this only catches what the
  // standard library may still throw (std::bad_alloc), so it ends in one line
  // too rather than in std::terminate.
  try {
    return kiln::tools::Main(argc, argv);
  } catch (const std::bad_alloc&) {
    return kiln::tools::Fail(kiln::tools::kExitRunError, "out of memory");
  } catch (const std::exception& e) {
    return kiln::tools::Fail(kiln::tools::kExitRunError, e.what());
  }
}
