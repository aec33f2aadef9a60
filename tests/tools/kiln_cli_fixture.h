// Runs the built `kiln` binary (path from CMake: KILN_BINARY) as a user
// would, in a fresh folder per test.
#pragma once

#include <sys/wait.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace kiln::testing_cli {

namespace fs = std::filesystem;

struct Result {
  int code = -1;
  std::string out, err;
};

inline std::string Slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

class KilnCliFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::path(::testing::TempDir()) /
           absl::StrCat("kiln_cli_", ::testing::UnitTest::GetInstance()->current_test_suite()->name(),
                        "_", ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }

  // Runs kiln with `args` (each single-quoted for the shell).
  Result Kiln(const std::vector<std::string>& args) {
    std::string cmd = absl::StrCat("'", KILN_BINARY, "'");
    for (const std::string& a : args) absl::StrAppend(&cmd, " '", a, "'");
    absl::StrAppend(&cmd, " >'", (dir_ / "stdout").string(), "' 2>'", (dir_ / "stderr").string(), "'");
    const int status = std::system(cmd.c_str());
    Result r;
    r.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    r.out = Slurp(dir_ / "stdout");
    r.err = Slurp(dir_ / "stderr");
    return r;
  }

  // A failure is exactly one line on stderr: "kiln: error: ...".
  static void ExpectOneErrorLine(const Result& r, int code) {
    EXPECT_EQ(r.code, code) << r.err;
    EXPECT_THAT(r.err, ::testing::StartsWith("kiln: error: "));
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  }

  fs::path dir_;
};

}  // namespace kiln::testing_cli
