#include "scheduler/npy.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <future>
#include <random>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace kiln {
namespace {

using ::testing::HasSubstr;

HostTensor Iota(DType dtype, std::vector<int64_t> dims) {
  HostTensor t = HostTensor::Zeros(dtype, std::move(dims));
  for (size_t i = 0; i < t.data.size(); ++i) t.data[i] = static_cast<std::byte>(i * 7 + 3);
  return t;
}

// A file as NumPy would write it, from a header dict and raw data.
std::string NpyFile(const std::string& dict, const std::string& data, int major = 1) {
  std::string header = dict;
  const size_t prefix = major == 1 ? 10 : 12;
  header.append((64 - (prefix + header.size() + 1) % 64) % 64, ' ');
  header.push_back('\n');
  std::string out("\x93NUMPY", 6);
  out.push_back(static_cast<char>(major));
  out.push_back('\0');
  const uint32_t n = static_cast<uint32_t>(header.size());
  out.append(reinterpret_cast<const char*>(&n), major == 1 ? 2 : 4);
  return out + header + data;
}

template <typename T>
std::string Raw(const std::vector<T>& v) {
  return std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(T));
}

TEST(NpyTest, RoundTripsEveryDTypeAndRank) {
  for (DType dtype : {DType::kF32, DType::kF16, DType::kI32}) {
    for (const std::vector<int64_t>& dims :
         std::vector<std::vector<int64_t>>{{5}, {2, 3}, {2, 1, 4}, {1, 2, 3, 4}, {0, 3}}) {
      const HostTensor t = Iota(dtype, dims);
      auto bytes = SerializeNpy(t);
      ASSERT_TRUE(bytes.ok()) << bytes.status();
      // The data starts 64-byte aligned, after a header ending in a newline.
      const size_t header_len = static_cast<uint8_t>((*bytes)[8]) | (static_cast<uint8_t>((*bytes)[9]) << 8);
      EXPECT_EQ((10 + header_len) % 64, 0u);
      EXPECT_EQ((*bytes)[10 + header_len - 1], '\n');
      auto back = ParseNpy(*bytes);
      ASSERT_TRUE(back.ok()) << back.status();
      EXPECT_EQ(back->dtype, dtype);
      EXPECT_EQ(back->dims, dims);
      EXPECT_EQ(back->data, t.data);
    }
  }
}

TEST(NpyTest, WritesTheHeaderNumPyExpects) {
  auto bytes = SerializeNpy(Iota(DType::kF16, {3}));
  ASSERT_TRUE(bytes.ok());
  EXPECT_THAT(*bytes, HasSubstr("{'descr': '<f2', 'fortran_order': False, 'shape': (3,), }"));
  bytes = SerializeNpy(Iota(DType::kI32, {2, 5}));
  ASSERT_TRUE(bytes.ok());
  EXPECT_THAT(*bytes, HasSubstr("'descr': '<i4'"));
  EXPECT_THAT(*bytes, HasSubstr("'shape': (2, 5)"));
}

TEST(NpyTest, WriteAndReadAFileAtomically) {
  const std::filesystem::path dir = std::filesystem::path(testing::TempDir()) / "npy_test_files";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  const std::string path = (dir / "x.npy").string();
  const HostTensor t = Iota(DType::kF32, {4, 4});
  ASSERT_TRUE(WriteNpy(path, t).ok());
  ASSERT_TRUE(WriteNpy(path, t).ok());  // replaces it
  auto back = ReadNpy(path);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->data, t.data);
  // Only the file itself is left: no temporaries.
  int files = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir)) files += e.is_regular_file();
  EXPECT_EQ(files, 1);
  EXPECT_FALSE(ReadNpy((dir / "missing.npy").string()).ok());
  EXPECT_FALSE(ReadNpy(dir.string()).ok());  // a folder
  EXPECT_FALSE(WriteNpy((dir / "no" / "such" / "x.npy").string(), t).ok());
}

TEST(NpyTest, ReadsWideTypesAndOtherVersions) {
  auto f = ParseNpy(NpyFile("{'descr': '<f8', 'fortran_order': False, 'shape': (3,), }",
                            Raw(std::vector<double>{1.5, -2.25, 1e10})));
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ(f->dtype, DType::kF32);
  std::vector<float> got(3);
  std::memcpy(got.data(), f->data.data(), 12);
  EXPECT_THAT(got, ::testing::ElementsAre(1.5f, -2.25f, 1e10f));

  auto i = ParseNpy(NpyFile("{\"shape\": (2,), \"fortran_order\": False, \"descr\": \"<i8\"}",
                            Raw(std::vector<int64_t>{7, -9}), /*major=*/2));
  ASSERT_TRUE(i.ok()) << i.status();
  EXPECT_EQ(i->dtype, DType::kI32);
  std::vector<int32_t> ints(2);
  std::memcpy(ints.data(), i->data.data(), 8);
  EXPECT_THAT(ints, ::testing::ElementsAre(7, -9));

  auto scalar = ParseNpy(NpyFile("{'descr': '<f4', 'fortran_order': False, 'shape': (), }",
                                 Raw(std::vector<float>{3.f})));
  ASSERT_TRUE(scalar.ok()) << scalar.status();
  EXPECT_EQ(scalar->dims, std::vector<int64_t>{1});

  auto big = ParseNpy(NpyFile("{'descr': '<i8', 'fortran_order': False, 'shape': (1,), }",
                              Raw(std::vector<int64_t>{int64_t{1} << 40})));
  ASSERT_FALSE(big.ok());
  EXPECT_THAT(big.status().message(), HasSubstr("does not fit"));
}

TEST(NpyTest, MalformedFilesAreErrors) {
  const std::string f4 = Raw(std::vector<float>{1, 2, 3, 4, 5, 6});
  struct Case {
    std::string name, bytes, message;
  };
  const std::string good_dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";
  std::string long_header = NpyFile(good_dict, f4);
  long_header[8] = '\xff';
  long_header[9] = '\xff';
  const std::vector<Case> cases = {
      {"empty", "", "magic"},
      {"bad magic", "\x93NUMPX\x01\x00\x10\x00" + std::string(16, ' '), "magic"},
      {"version 9", NpyFile(good_dict, f4, 9), "version"},
      {"header past the end", long_header, "header length"},
      {"truncated data", NpyFile(good_dict, f4.substr(0, 20)), "data bytes"},
      {"extra data", NpyFile(good_dict, f4 + "xx"), "data bytes"},
      {"no dict", NpyFile("[1, 2]", f4), "'{'"},
      {"missing key", NpyFile("{'descr': '<f4', 'shape': (2, 3)}", f4), "lacks"},
      {"duplicate key", NpyFile("{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (6,)}", f4), "twice"},
      {"unknown key", NpyFile("{'descr': '<f4', 'fortran_order': False, 'shape': (6,), 'x': 1}", f4), "unexpected"},
      {"fortran order", NpyFile("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }", f4), "Fortran"},
      {"big endian", NpyFile("{'descr': '>f4', 'fortran_order': False, 'shape': (6,), }", f4), "big-endian"},
      {"complex", NpyFile("{'descr': '<c8', 'fortran_order': False, 'shape': (3,), }", f4), "unsupported dtype"},
      {"object", NpyFile("{'descr': '|O', 'fortran_order': False, 'shape': (3,), }", f4), "unsupported dtype"},
      {"negative dim", NpyFile("{'descr': '<f4', 'fortran_order': False, 'shape': (-6,), }", f4), "non-negative"},
      {"float dim", NpyFile("{'descr': '<f4', 'fortran_order': False, 'shape': (6.0,), }", f4), "shape"},
      {"huge dims", NpyFile("{'descr': '<f4', 'fortran_order': False, 'shape': (999999999999, 999999999999), }", f4), "too large"},
      {"too many digits", NpyFile("{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,), }", f4), "too large"},
      {"rank 5", NpyFile("{'descr': '<f4', 'fortran_order': False, 'shape': (1, 1, 2, 1, 3), }", f4), "rank 5"},
      {"unterminated string", NpyFile("{'descr': '<f4", f4), "string"},
      {"unclosed tuple", NpyFile("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3", f4), "shape"},
      {"trailing text", NpyFile(good_dict + " x", f4), "after the header"},
      {"bad bool", NpyFile("{'descr': '<f4', 'fortran_order': 0, 'shape': (6,), }", f4), "True or False"},
  };
  for (const Case& c : cases) {
    auto r = ParseNpy(c.bytes);
    ASSERT_FALSE(r.ok()) << c.name;
    EXPECT_THAT(r.status().message(), HasSubstr(c.message)) << c.name << ": " << r.status();
  }
}

// Every prefix of a valid file, and random corruptions of it, parse to a
// value or an error; never a crash (run under the sanitizers to see more).
// A v2 header longer than the 64 KiB kiln reads says so, not "past the end".
TEST(NpyTest, OverLongHeaderIsReportedAsSuch) {
  std::string dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }";
  dict.append(70000, ' ');
  const std::string file = NpyFile(dict, Raw(std::vector<float>{1}), 2);
  auto r = ParseNpy(file);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), HasSubstr("kiln reads headers of up to 65536 bytes"));
  EXPECT_THAT(r.status().message(), testing::Not(HasSubstr("past the end")));
}

std::filesystem::path TempPath(const std::string& name) {
  return std::filesystem::temp_directory_path() /
         (name + "." + std::to_string(::getpid()) + "." +
          ::testing::UnitTest::GetInstance()->current_test_info()->name());
}

// A FIFO opened for reading waits for a writer: with O_NONBLOCK it is an
// error at once. The read runs on another thread so a regression fails the
// test (after the timeout) instead of hanging it.
TEST(NpyTest, AFifoIsAnErrorNotAHang) {
  const std::filesystem::path fifo = TempPath("input.npy");
  std::filesystem::remove(fifo);
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  for (int reader = 0; reader < 2; ++reader) {
    auto read = std::async(std::launch::async, [&] {
      return reader == 0 ? NpyFile::Open(fifo.string()).status() : ReadNpy(fifo.string()).status();
    });
    if (read.wait_for(std::chrono::seconds(5)) != std::future_status::ready) {
      // Release the blocked reader (a writer appears), then fail.
      const int w = ::open(fifo.c_str(), O_WRONLY | O_NONBLOCK);
      if (w >= 0) ::close(w);
      ADD_FAILURE() << (reader == 0 ? "NpyFile::Open" : "ReadNpy") << " blocked on a FIFO";
      continue;
    }
    const absl::Status st = read.get();
    EXPECT_FALSE(st.ok());
    EXPECT_THAT(st.message(), HasSubstr("not a regular file"));
  }
  std::filesystem::remove(fifo);
}

// The header and the file's size are checked before any data is read: a
// file whose size disagrees with its header is rejected having read only
// the header, and NpyFile::Open reads nothing past it.
TEST(NpyTest, HeaderIsCheckedBeforeTheData) {
  const std::filesystem::path path = TempPath("big.npy");
  {
    std::ofstream out(path, std::ios::binary);
    out << NpyFile("{'descr': '<f4', 'fortran_order': False, 'shape': (4, 4), }", Raw(std::vector<float>(16, 1.f)));
  }
  auto file = NpyFile::Open(path.string());
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_EQ(file->header().dims, (std::vector<int64_t>{4, 4}));
  EXPECT_EQ(file->header().element, NpyElement::kF32);
  EXPECT_EQ(file->header().data_bytes, 64);
  float row[4];
  ASSERT_TRUE(file->ReadElements(4, 4, row).ok());
  EXPECT_EQ(row[0], 1.f);
  EXPECT_FALSE(file->ReadElements(14, 4, row).ok());  // past the end of the array

  // A sparse 4 GiB file: its header is read, its size disagrees, and
  // nothing else is read (this would take seconds and 4 GiB if it were).
  const std::filesystem::path sparse = TempPath("sparse.npy");
  {
    std::ofstream out(sparse, std::ios::binary);
    out << NpyFile("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 8), }", "");
  }
  std::filesystem::resize_file(sparse, int64_t{4} << 30);
  const auto t0 = std::chrono::steady_clock::now();
  auto big = NpyFile::Open(sparse.string());
  ASSERT_FALSE(big.ok());
  EXPECT_THAT(big.status().message(), HasSubstr("needs 64 data bytes"));
  EXPECT_FALSE(ReadNpy(sparse.string()).ok());
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 1.0);
  std::filesystem::remove(path);
  std::filesystem::remove(sparse);
}

TEST(NpyTest, TruncatedAndCorruptedFilesNeverCrash) {
  auto bytes = SerializeNpy(Iota(DType::kF32, {3, 5}));
  ASSERT_TRUE(bytes.ok());
  for (size_t n = 0; n < bytes->size(); ++n) {
    EXPECT_FALSE(ParseNpy(bytes->substr(0, n)).ok()) << n;
  }
  std::mt19937 rng(1);
  for (int i = 0; i < 2000; ++i) {
    std::string b = *bytes;
    for (int k = 0; k < 3; ++k) b[rng() % 128 % b.size()] = static_cast<char>(rng());
    auto r = ParseNpy(b);
    if (r.ok()) {
      EXPECT_EQ(static_cast<int64_t>(r->data.size()), ContiguousBytes(r->dtype, r->dims));
    }
  }
}

TEST(NpyTest, SerializeRejectsTypesWithoutANpyType) {
  EXPECT_EQ(ToNpyDType(DType::kBF16), DType::kF32);
  EXPECT_EQ(ToNpyDType(DType::kQ8_0), DType::kF32);
  EXPECT_EQ(ToNpyDType(DType::kF16), DType::kF16);
  EXPECT_FALSE(SerializeNpy(HostTensor::Zeros(DType::kBF16, {4})).ok());
  HostTensor bad = HostTensor::Zeros(DType::kF32, {4});
  bad.data.resize(3);
  EXPECT_FALSE(SerializeNpy(bad).ok());
}

}  // namespace
}  // namespace kiln
