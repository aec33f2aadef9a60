// A small command-line parser for subcommands: `--name value`, `--name=value`,
// short aliases (`-o FILE`), boolean switches, repeatable flags and
// positional arguments. absl::flags is global and exits on its own terms;
// kiln needs per-subcommand flags, repeated --input, and its own exit codes.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace kiln::tools {

struct FlagSpec {
  std::string name;        // without dashes: "output-dir"
  std::string value_name;  // "DIR"; empty for a boolean switch
  std::string help;
  bool repeated = false;   // may be given more than once (values accumulate)
  char short_name = 0;     // 'o' for -o
};

class ParsedArgs {
 public:
  std::vector<std::string> positional;
  bool help = false;  // -h or --help was given

  bool has(absl::string_view name) const;
  // The value of a single-valued flag, or `fallback` when absent.
  std::string Get(absl::string_view name, absl::string_view fallback = "") const;
  // Every value of a repeated flag, in order.
  std::vector<std::string> GetAll(absl::string_view name) const;
  // An integer flag within [min, max], or `fallback` when absent.
  absl::StatusOr<int64_t> GetInt(absl::string_view name, int64_t fallback, int64_t min,
                                 int64_t max) const;

  std::map<std::string, std::vector<std::string>, std::less<>> values;
};

// Errors name the flag ("unknown flag --foo", "--iters needs a value").
absl::StatusOr<ParsedArgs> ParseArgs(absl::Span<const std::string> args,
                                     absl::Span<const FlagSpec> specs);

// Lines of "  -o, --output FILE   help" for a usage message.
std::string FlagsHelp(absl::Span<const FlagSpec> specs);

}  // namespace kiln::tools
