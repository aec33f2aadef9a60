#include "programs.h"

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "cl_util.h"

namespace kiln::opencl {
namespace {

uint64_t Fnv1a(absl::string_view s, uint64_t h = 1469598103934665603ull) {
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

constexpr std::string_view kMagic = "KILNCLB1\n";

std::string BuildLog(cl_program p, cl_device_id d) {
  size_t n = 0;
  clGetProgramBuildInfo(p, d, CL_PROGRAM_BUILD_LOG, 0, nullptr, &n);
  std::string log(n, '\0');
  if (n) clGetProgramBuildInfo(p, d, CL_PROGRAM_BUILD_LOG, n, log.data(), nullptr);
  while (!log.empty() && (log.back() == '\0' || log.back() == '\n')) log.pop_back();
  if (log.size() > 4000) log = log.substr(0, 4000) + "\n...";
  return log;
}

}  // namespace

std::optional<std::string> LoadProgramBinary(const std::string& dir, const std::string& key) {
  if (dir.empty()) return std::nullopt;
  const std::string path = absl::StrFormat("%s/%016x.bin", dir, Fnv1a(key));
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string data = ss.str();
  // Layout: magic, key, '\0', binary. A different key (a hash collision, a
  // file from another build) is a miss.
  if (data.size() < kMagic.size() + key.size() + 1 || data.compare(0, kMagic.size(), kMagic) != 0 ||
      data.compare(kMagic.size(), key.size(), key) != 0 || data[kMagic.size() + key.size()] != '\0') {
    return std::nullopt;
  }
  return data.substr(kMagic.size() + key.size() + 1);
}

void StoreProgramBinary(const std::string& dir, const std::string& key, const std::string& binary) {
  if (dir.empty() || binary.empty()) return;
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  const std::string path = absl::StrFormat("%s/%016x.bin", dir, Fnv1a(key));
  // Written aside, then renamed: a reader never sees half a file.
  const std::string tmp = absl::StrCat(path, ".tmp", static_cast<uint64_t>(std::hash<std::thread::id>{}(std::this_thread::get_id())));
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) return;
    out << kMagic << key << '\0' << binary;
    if (!out) return;
  }
  std::filesystem::rename(tmp, path, ec);
  if (ec) std::filesystem::remove(tmp, ec);
}

ProgramCache::ProgramCache(cl_context context, const DeviceFacts& device, std::string disk_dir)
    : context_(context), device_(device), disk_dir_(std::move(disk_dir)) {}

absl::StatusOr<cl_program> ProgramCache::Get(absl::string_view source, const std::string& options) {
  const std::string key = absl::StrCat(source, "|", options);
  auto p = cache_.GetOrCreate(key, [&] { return Build(source, options); });
  if (!p.ok()) return p.status();
  return (*p)->program;
}

absl::StatusOr<std::unique_ptr<Program>> ProgramCache::Build(absl::string_view source, const std::string& options) {
  const char* common = OpenClSource("common");
  const char* body = OpenClSource(std::string_view(source.data(), source.size()));
  if (!common || !body) return absl::InternalError(absl::StrCat("opencl: no kernel source '", source, ".cl'"));
  const std::string text = absl::StrCat(common, "\n", body);
  const std::string full_options = absl::StrCat("-cl-std=CL1.2 ", options);
  const std::string disk_key = absl::StrFormat("%s|src=%016x|%s|%s", device_.Identity(), Fnv1a(text), source, full_options);
  cl_device_id dev = device_.device;
  auto program = std::make_unique<Program>();

  const auto t0 = std::chrono::steady_clock::now();
  if (auto bin = LoadProgramBinary(disk_dir_, disk_key)) {
    const unsigned char* bytes = reinterpret_cast<const unsigned char*>(bin->data());
    const size_t size = bin->size();
    cl_int status = CL_SUCCESS, err = CL_SUCCESS;
    cl_program p = clCreateProgramWithBinary(context_, 1, &dev, &size, &bytes, &status, &err);
    if (err == CL_SUCCESS && status == CL_SUCCESS && clBuildProgram(p, 1, &dev, full_options.c_str(), nullptr, nullptr) == CL_SUCCESS) {
      program->program = p;
      disk_hits_++;
      disk_us_ += std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - t0).count();
      return program;
    }
    // A binary the driver rejects (another driver, corrupt) is rebuilt from source.
    if (p) clReleaseProgram(p);
  }

  const char* src = text.c_str();
  cl_int err = CL_SUCCESS;
  cl_program p = clCreateProgramWithSource(context_, 1, &src, nullptr, &err);
  if (err != CL_SUCCESS) return ClError(err, absl::StrCat("creating program ", source, ".cl"));
  program->program = p;
  err = clBuildProgram(p, 1, &dev, full_options.c_str(), nullptr, nullptr);
  if (err != CL_SUCCESS) {
    return absl::InternalError(absl::StrCat("opencl: building ", source, ".cl with '", full_options,
                                            "' failed: ", ClErrorName(err), "\n", BuildLog(p, dev)));
  }
  size_t bin_size = 0;
  if (!disk_dir_.empty() &&
      clGetProgramInfo(p, CL_PROGRAM_BINARY_SIZES, sizeof(bin_size), &bin_size, nullptr) == CL_SUCCESS && bin_size) {
    std::string bin(bin_size, '\0');
    unsigned char* ptr = reinterpret_cast<unsigned char*>(bin.data());
    if (clGetProgramInfo(p, CL_PROGRAM_BINARIES, sizeof(ptr), &ptr, nullptr) == CL_SUCCESS) {
      StoreProgramBinary(disk_dir_, disk_key, bin);
    }
  }
  return program;
}

PipelineStats ProgramCache::stats() const {
  PipelineStats s = cache_.stats();
  // PipelineCache counts every made program; disk loads are not compiles.
  const int64_t hits = disk_hits_.load();
  const double disk_ms = disk_us_.load() / 1000.0;
  s.created -= hits;
  s.disk_hits += hits;
  s.compile_ms -= disk_ms;
  s.disk_ms += disk_ms;
  return s;
}

}  // namespace kiln::opencl
