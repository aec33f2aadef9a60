// The safetensors reader on good files and on hostile ones: truncated,
// oversized or corrupt headers, bad dtypes, shapes and offsets, overlaps,
// duplicate names, and shard indexes that point outside the folder.
#include "import/safetensors.h"

#include <cstring>
#include <filesystem>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/import/import_test_util.h"

namespace kiln::import {
namespace {

using testing::FixturesDir;
using testing::Safetensors;
using testing::TempDir;
using testing::WriteBytes;
using ::testing::HasSubstr;

// Opens a file of these bytes and returns the error message ("" if it opened).
std::string OpenError(const std::string& bytes, const SafetensorsLimits& limits = {}) {
  TempDir dir;
  WriteBytes(dir.File("m.safetensors"), bytes);
  auto f = SafetensorsFile::Open(dir.File("m.safetensors"), limits);
  return f.ok() ? "" : std::string(f.status().message());
}

std::string Header(const std::string& tensors) { return "{" + tensors + "}"; }

TEST(Safetensors, ReadsTensorsInPlaceWithMetadata) {
  const std::string data(24, '\x01');
  const std::string bytes = Safetensors(
      Header(R"("__metadata__":{"format":"pt"},)"
             R"("a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]},)"
             R"("b":{"dtype":"BF16","shape":[4],"data_offsets":[16,24]})"),
      data);
  TempDir dir;
  WriteBytes(dir.File("m.safetensors"), bytes);
  auto f = SafetensorsFile::Open(dir.File("m.safetensors"));
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ((*f)->metadata().at("format"), "pt");
  ASSERT_EQ((*f)->tensors().size(), 2u);
  const SafetensorsTensor* a = (*f)->Find("a");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->dims, (std::vector<int64_t>{2, 2}));
  EXPECT_EQ(a->offset, bytes.size() - data.size());
  EXPECT_EQ(*(*f)->KilnDType(*a), DType::kF32);
  EXPECT_EQ(*(*f)->KilnDType(*(*f)->Find("b")), DType::kBF16);
  auto c = (*f)->Data(*a);
  EXPECT_EQ(c->size, 16u);
  EXPECT_EQ(static_cast<uint8_t>(c->data[0]), 1);
  EXPECT_THAT(c->origin, HasSubstr(":" + std::to_string(a->offset) + ":16"));
}

TEST(Safetensors, ReadsTheTransformersFixture) {
  auto f = SafetensorsFile::Open(FixturesDir() + "/llama/model.safetensors");
  ASSERT_TRUE(f.ok()) << f.status();
  const SafetensorsTensor* q = (*f)->Find("model.layers.0.self_attn.q_proj.weight");
  ASSERT_NE(q, nullptr);
  EXPECT_EQ(q->dtype_name, "F32");
  EXPECT_EQ(q->dims, (std::vector<int64_t>{128, 64}));
}

TEST(Safetensors, RefusesTruncatedAndOversizedHeaders) {
  EXPECT_THAT(OpenError(""), HasSubstr("too short"));
  EXPECT_THAT(OpenError(std::string(5, '\0')), HasSubstr("too short"));
  std::string huge(8, '\0');
  const uint64_t n = uint64_t{1} << 62;
  std::memcpy(huge.data(), &n, 8);
  EXPECT_THAT(OpenError(huge + "{}"), HasSubstr("more than the cap"));
  std::string longer = Safetensors("{}", "");
  longer[0] = 100;  // says 100 bytes, has 2
  EXPECT_THAT(OpenError(longer), HasSubstr("has only 2"));
  SafetensorsLimits small;
  small.max_header_bytes = 4;
  EXPECT_THAT(OpenError(Safetensors(Header(R"("__metadata__":{})"), ""), small), HasSubstr("cap of 4"));
}

TEST(Safetensors, RefusesCorruptJson) {
  EXPECT_THAT(OpenError(Safetensors("{\"a\":", "")), HasSubstr("not valid JSON"));
  EXPECT_THAT(OpenError(Safetensors("[1,2]", "")), HasSubstr("not a JSON object"));
  EXPECT_THAT(OpenError(Safetensors("{\"a\":\"\xff\"}", "")), HasSubstr("not valid JSON"));
  EXPECT_THAT(OpenError(Safetensors(std::string(10000, '[') + std::string(10000, ']'), "")),
              HasSubstr("nested deeper"));
  EXPECT_THAT(OpenError(Safetensors(Header(R"("a":7)"), "")), HasSubstr("'a' is not an object"));
  EXPECT_THAT(OpenError(Safetensors(Header(R"("__metadata__":{"k":1})"), "")), HasSubstr("not a string"));
}

TEST(Safetensors, RefusesDuplicateNames) {
  const std::string t = R"({"dtype":"F32","shape":[1],"data_offsets":[0,4]})";
  EXPECT_THAT(OpenError(Safetensors("{\"a\":" + t + ",\"a\":" + t + "}", std::string(4, '\0'))),
              HasSubstr("'a' appears twice"));
}

TEST(Safetensors, RefusesBadDtypesAndShapes) {
  EXPECT_THAT(OpenError(Safetensors(Header(R"("a":{"dtype":"F33","shape":[1],"data_offsets":[0,4]})"),
                                    std::string(4, '\0'))),
              HasSubstr("'F33', which is no safetensors dtype"));
  EXPECT_THAT(OpenError(Safetensors(Header(R"("a":{"shape":[1],"data_offsets":[0,4]})"), std::string(4, '\0'))),
              HasSubstr("no \"dtype\""));
  EXPECT_THAT(OpenError(Safetensors(Header(R"("a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]})"),
                                    std::string(4, '\0'))),
              HasSubstr("dim -1"));
  EXPECT_THAT(OpenError(Safetensors(Header(R"("a":{"dtype":"F32","shape":[1.5],"data_offsets":[0,4]})"),
                                    std::string(4, '\0'))),
              HasSubstr("dim 1.5"));
  EXPECT_THAT(OpenError(Safetensors(Header(R"("a":{"dtype":"F32","shape":[1,1,1,1,1,1,1,1,1],)"
                                           R"("data_offsets":[0,4]})"),
                                    std::string(4, '\0'))),
              HasSubstr("rank 9"));
  // 2^40 * 2^40 elements: more than 64 bits count.
  EXPECT_THAT(OpenError(Safetensors(Header(R"("a":{"dtype":"F32","shape":[1099511627776,1099511627776],)"
                                           R"("data_offsets":[0,4]})"),
                                    std::string(4, '\0'))),
              HasSubstr("more elements than 64 bits"));
}

TEST(Safetensors, AnUnsupportedDtypeIsAnErrorNamingTheTensor) {
  TempDir dir;
  WriteBytes(dir.File("m.safetensors"),
             Safetensors(Header(R"("ids":{"dtype":"I64","shape":[2],"data_offsets":[0,16]})"), std::string(16, '\0')));
  auto f = SafetensorsFile::Open(dir.File("m.safetensors"));
  ASSERT_TRUE(f.ok()) << f.status();
  auto dtype = (*f)->KilnDType(*(*f)->Find("ids"));
  ASSERT_FALSE(dtype.ok());
  EXPECT_THAT(dtype.status().message(), HasSubstr("tensor 'ids'"));
  EXPECT_THAT(dtype.status().message(), HasSubstr("dtype I64"));
}

TEST(Safetensors, RefusesBadOffsets) {
  const std::string data(16, '\0');
  auto one = [&](const std::string& offsets, const std::string& shape = "[2]") {
    return OpenError(Safetensors(Header(R"("a":{"dtype":"F32","shape":)" + shape + R"(,"data_offsets":)" + offsets +
                                        "}"),
                                 data));
  };
  EXPECT_THAT(one("[0,12]"), HasSubstr("has 12 data bytes, expected 2 x 4"));
  EXPECT_THAT(one("[8,0]"), HasSubstr("outside the 16 data bytes"));
  EXPECT_THAT(one("[16,24]"), HasSubstr("outside the 16 data bytes"));
  EXPECT_THAT(one("[18446744073709551608,0]"), HasSubstr("outside"));
  EXPECT_THAT(one("[0,18446744073709551615]"), HasSubstr("outside"));
  EXPECT_THAT(one("[0]"), HasSubstr("data_offsets"));
  EXPECT_THAT(one("[-8,0]"), HasSubstr("data_offsets"));
  EXPECT_THAT(one("[0,99999999999999999999999]"), HasSubstr("data_offsets"));
  EXPECT_THAT(OpenError(Safetensors(Header(R"("a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                                           R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]})"),
                                    data)),
              HasSubstr("'a' and 'b' overlap"));
}

// A folder with an index naming shard files.
std::string IndexError(const std::string& weight_map, bool make_shard = true) {
  TempDir dir;
  if (make_shard) {
    WriteBytes(dir.File("s1.safetensors"),
               Safetensors(Header(R"("a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]})"), std::string(4, '\0')));
  }
  WriteBytes(dir.File("model.safetensors.index.json"), "{\"metadata\":{},\"weight_map\":" + weight_map + "}");
  auto c = SafetensorsCheckpoint::Open(dir.path());
  return c.ok() ? "" : std::string(c.status().message());
}

TEST(SafetensorsCheckpoint, ReadsShardsListedInTheIndex) {
  TempDir dir;
  WriteBytes(dir.File("s1.safetensors"),
             Safetensors(Header(R"("a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]})"), std::string(4, '\0')));
  WriteBytes(dir.File("s2.safetensors"),
             Safetensors(Header(R"("b":{"dtype":"F16","shape":[2],"data_offsets":[0,4]})"), std::string(4, '\0')));
  WriteBytes(dir.File("model.safetensors.index.json"),
             R"({"weight_map":{"a":"s1.safetensors","b":"s2.safetensors"}})");
  auto c = SafetensorsCheckpoint::Open(dir.path());
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ((*c)->files().size(), 2u);
  EXPECT_EQ((*c)->tensor_count(), 2u);
  auto b = (*c)->Find("b");
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->tensor->dtype_name, "F16");
  EXPECT_TRUE(absl::IsNotFound((*c)->Find("c").status()));
}

TEST(SafetensorsCheckpoint, RefusesIndexesThatLeaveTheFolder) {
  EXPECT_EQ(IndexError(R"({"a":"s1.safetensors"})"), "");
  EXPECT_THAT(IndexError(R"({"a":"../s1.safetensors"})"), HasSubstr("tensor 'a'"));
  EXPECT_THAT(IndexError(R"({"a":"/etc/passwd"})"), HasSubstr("tensor 'a'"));
  EXPECT_THAT(IndexError(R"({"a":"sub/../../x"})"), HasSubstr("tensor 'a'"));
  EXPECT_THAT(IndexError(R"({"a":""})"), HasSubstr("tensor 'a'"));
  EXPECT_THAT(IndexError(R"({"a":"s1.safetensors\u0000x"})"), HasSubstr("tensor 'a'"));
  EXPECT_THAT(IndexError(R"({"a":7})"), HasSubstr("not a string"));
  EXPECT_THAT(IndexError(R"({"zz":"s1.safetensors"})"), HasSubstr("which that file does not have"));
  EXPECT_THAT(IndexError(R"({"a":"s1.safetensors","a":"s1.safetensors"})"), HasSubstr("appears twice"));
  EXPECT_THAT(IndexError("[]"), HasSubstr("weight_map"));
  EXPECT_THAT(IndexError(R"({"a":"missing.safetensors"})", false), HasSubstr("tensor 'a'"));
}

TEST(SafetensorsCheckpoint, RefusesASymlinkedShardOutsideTheFolder) {
  TempDir outside, dir;
  WriteBytes(outside.File("s.safetensors"),
             Safetensors(Header(R"("a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]})"), std::string(4, '\0')));
  std::filesystem::create_symlink(outside.File("s.safetensors"), dir.File("s.safetensors"));
  WriteBytes(dir.File("model.safetensors.index.json"), R"({"weight_map":{"a":"s.safetensors"}})");
  auto c = SafetensorsCheckpoint::Open(dir.path());
  ASSERT_FALSE(c.ok());
  EXPECT_THAT(c.status().message(), HasSubstr("tensor 'a'"));
}

TEST(SafetensorsCheckpoint, AFolderWithoutWeightsIsAnError) {
  TempDir dir;
  auto c = SafetensorsCheckpoint::Open(dir.path());
  ASSERT_FALSE(c.ok());
  EXPECT_THAT(c.status().message(), HasSubstr("neither model.safetensors nor"));
}

}  // namespace
}  // namespace kiln::import
