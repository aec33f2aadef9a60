#include "tools/command.h"

#include <cstdio>
#include <string>

#include "absl/strings/str_replace.h"

namespace kiln::tools {

int Fail(int exit_code, absl::string_view message) {
  const std::string line = absl::StrReplaceAll(message, {{"\r\n", " "}, {"\n", " "}, {"\r", " "}});
  std::fflush(stdout);  // keep the order of what was printed before
  std::fprintf(stderr, "kiln: error: %s\n", line.c_str());
  return exit_code;
}

int Fail(int exit_code, const absl::Status& status) { return Fail(exit_code, status.message()); }

}  // namespace kiln::tools
