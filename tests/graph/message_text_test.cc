// Names, attribute values and lists inside error messages: bytes a file put
// there are escaped, and long ones shortened, so a message is one whole line.
#include "graph/message_text.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "graph/builder.h"
#include "gtest/gtest.h"

namespace kiln {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

TEST(MessageTextTest, EscapesAndShortens) {
  EXPECT_EQ(QuoteName("x"), "'x'");
  EXPECT_EQ(QuoteName(std::string("a\0z", 3)), "'a\\x00z'");
  EXPECT_EQ(QuoteName("\x1b[31mred"), "'\\x1b[31mred'");
  const std::string long_name(5000, 'n');
  const std::string q = QuoteName(long_name);
  EXPECT_LT(q.size(), kMaxNameInMessage + 40);
  EXPECT_THAT(q, HasSubstr("(5000 bytes)"));
  EXPECT_EQ(ShortList({1, 2, 3}), "[1,2,3]");
  std::vector<int64_t> many(4096, 7);
  many.back() = 9;
  EXPECT_EQ(ShortList(many), "[7,7,7,7,7,7,7,...,9 (4096 entries)]");
  EXPECT_EQ(ShortJoin({"a", "b", "c"}, 2), "a, b, ... (3 in all)");
}

// A NUL inside a name or a string attribute no longer ends the message: the
// text after it is still there.
TEST(MessageTextTest, NulBytesInNamesAndAttributesAreEscaped) {
  GraphBuilder b("nul");
  Tensor x = b.Input(std::string("in\0put", 6), DType::kF32, {4});
  b.Op1("gelu", {x}, {{"approximate", AttrValue(std::string("ta\0nh", 5))}}, std::string("no\0pe", 5));
  const absl::Status st = b.status();
  ASSERT_FALSE(st.ok());
  EXPECT_THAT(st.message(), HasSubstr("node 'no\\x00pe' (gelu)"));
  EXPECT_THAT(st.message(), HasSubstr("\"ta\\x00nh\" is not one of: tanh, none"));
  EXPECT_EQ(std::string(st.message()).find('\0'), std::string::npos);

  GraphBuilder b2("nul-input");
  Tensor a = b2.Input(std::string("x\0y", 3), DType::kF32, {4});
  Tensor c = b2.Input("c", DType::kF32, {5});
  b2.Op1("add", {a, c});
  ASSERT_FALSE(b2.status().ok());
  EXPECT_THAT(b2.status().message(), HasSubstr("'x\\x00y'"));
  EXPECT_EQ(std::string(b2.status().message()).find('\0'), std::string::npos);
}

// A reshape to a 4096-entry shape: the error names the list in a few dozen
// bytes, not 8 KB.
TEST(MessageTextTest, LongAttributeListsAreShortened) {
  GraphBuilder b("long-list");
  Tensor x = b.Input("x", DType::kF32, {4});
  b.Op1("reshape", {x}, {{"shape", AttrValue(std::vector<int64_t>(4096, 1))}});
  const absl::Status st = b.status();
  ASSERT_FALSE(st.ok());
  EXPECT_THAT(st.message(), HasSubstr("(4096 entries)"));
  EXPECT_LT(st.message().size(), 300u) << st.message();
  EXPECT_THAT(st.message(), Not(HasSubstr("1,1,1,1,1,1,1,1,1")));
}

}  // namespace
}  // namespace kiln
