#include "tools/args.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace kiln::tools {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

const FlagSpec kSpecs[] = {
    {"iters", "N", "runs"},
    {"input", "NAME=SRC", "an input", true},
    {"output", "FILE", "output", false, 'o'},
    {"verbose", "", "talk"},
};

absl::StatusOr<ParsedArgs> Parse(std::vector<std::string> args) { return ParseArgs(args, kSpecs); }

TEST(ArgsTest, ParsesFlagsAndPositionals) {
  auto a = Parse({"graph.kgraph", "--iters", "3", "--input=x=a.npy", "--input", "y=random", "-o",
                  "out", "--verbose", "more"});
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_THAT(a->positional, ElementsAre("graph.kgraph", "more"));
  EXPECT_EQ(a->Get("iters"), "3");
  EXPECT_THAT(a->GetAll("input"), ElementsAre("x=a.npy", "y=random"));
  EXPECT_EQ(a->Get("output"), "out");
  EXPECT_TRUE(a->has("verbose"));
  EXPECT_FALSE(a->help);
  auto iters = a->GetInt("iters", 1, 1, 10);
  ASSERT_TRUE(iters.ok());
  EXPECT_EQ(*iters, 3);
  EXPECT_EQ(*a->GetInt("missing", 7, 0, 9), 7);
}

TEST(ArgsTest, HelpAndDoubleDash) {
  auto a = Parse({"--help"});
  ASSERT_TRUE(a.ok());
  EXPECT_TRUE(a->help);
  a = Parse({"--", "--iters"});
  ASSERT_TRUE(a.ok());
  EXPECT_THAT(a->positional, ElementsAre("--iters"));
  a = Parse({"--verbose=false"});
  ASSERT_TRUE(a.ok());
  EXPECT_FALSE(a->has("verbose"));
}

TEST(ArgsTest, ErrorsNameTheFlag) {
  auto a = Parse({"--nope"});
  ASSERT_FALSE(a.ok());
  EXPECT_THAT(a.status().message(), HasSubstr("unknown flag --nope"));
  a = Parse({"--iters"});
  ASSERT_FALSE(a.ok());
  EXPECT_THAT(a.status().message(), HasSubstr("--iters needs a value"));
  a = Parse({"--iters", "1", "--iters", "2"});
  ASSERT_FALSE(a.ok());
  EXPECT_THAT(a.status().message(), HasSubstr("more than once"));
  a = Parse({"--verbose=yes"});
  ASSERT_FALSE(a.ok());
  a = Parse({"--iters", "x"});
  ASSERT_TRUE(a.ok());
  auto bad = a->GetInt("iters", 1, 1, 10);
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(bad.status().message(), HasSubstr("expects an integer"));
  a = Parse({"--iters", "11"});
  ASSERT_TRUE(a.ok());
  EXPECT_FALSE(a->GetInt("iters", 1, 1, 10).ok());
}

TEST(ArgsTest, HelpListsEveryFlag) {
  const std::string help = FlagsHelp(kSpecs);
  EXPECT_THAT(help, HasSubstr("--iters N"));
  EXPECT_THAT(help, HasSubstr("-o, --output FILE"));
  EXPECT_THAT(help, HasSubstr("(repeatable)"));
}

}  // namespace
}  // namespace kiln::tools
