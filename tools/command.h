// The kiln subcommands and how they report failure: one line on stderr,
// "kiln: error: ...", and exit status 2 for usage errors, 1 for run errors.
#pragma once

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace kiln::tools {

inline constexpr int kExitOk = 0;
inline constexpr int kExitRunError = 1;
inline constexpr int kExitUsage = 2;

// Prints "kiln: error: <message>" (newlines folded, so it stays one line)
// and returns `exit_code`.
int Fail(int exit_code, absl::string_view message);
int Fail(int exit_code, const absl::Status& status);

// Each takes the arguments after its name (argv[2:]) and returns the exit status.
int RunCommand(const std::vector<std::string>& args);
int InfoCommand(const std::vector<std::string>& args);
int MakeExampleCommand(const std::vector<std::string>& args);
int ConformanceCommand(const std::vector<std::string>& args);  // conformance_command.cc
int PlanCommand(const std::vector<std::string>& args);         // plan_command.cc
int BenchCommand(const std::vector<std::string>& args);        // bench_command.cc
int ImportCommand(const std::vector<std::string>& args);       // import_command.cc
int BenchModelCommand(const std::vector<std::string>& args);   // bench_model_command.cc ("bench model")

}  // namespace kiln::tools
