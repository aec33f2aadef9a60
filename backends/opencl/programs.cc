#include "programs.h"

#include "absl/strings/str_cat.h"
#include "base/stable_hash.h"
#include "cl_util.h"

namespace kiln::opencl {
namespace {

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

ProgramCache::ProgramCache(cl_context context, const DeviceFacts& device, DiskCacheOptions disk)
    : context_(context), device_(device), disk_(std::move(disk)) {}

absl::StatusOr<cl_program> ProgramCache::Get(absl::string_view source, const std::string& options) {
  const char* common = OpenClSource("common");
  const char* body = OpenClSource(std::string_view(source.data(), source.size()));
  if (!common || !body) return absl::InternalError(absl::StrCat("opencl: no kernel source '", source, ".cl'"));
  // The embedded text is fixed for the process: hashing it per call is cheap
  // next to building, and keeps the key honest.
  const std::string text = absl::StrCat(common, "\n", body);
  PipelineKey key;
  key.kernel = options.empty() ? std::string(source) : absl::StrCat(source, " ", options);
  key.source_hash = StableHash64(text);
  auto p = cache_.GetOrCreate(key, [&](PipelineOrigin& origin) {
    return Build(source, options, text, key.source_hash, origin);
  });
  if (!p.ok()) return p.status();
  return (*p)->program;
}

absl::StatusOr<std::unique_ptr<Program>> ProgramCache::Build(absl::string_view source, const std::string& options,
                                                             const std::string& text, uint64_t source_hash,
                                                             PipelineOrigin& origin) {
  const std::string full_options = absl::StrCat("-cl-std=CL1.2 ", options);
  const DiskCacheKey dk{"opencl", absl::StrCat(device_.platform_name, "|", device_.vendor, "|", device_.name),
                        absl::StrCat(device_.driver, "|", device_.version), source_hash,
                        absl::StrCat(source, "|", full_options)};
  cl_device_id dev = device_.device;
  auto program = std::make_unique<Program>();

  if (std::optional<std::string> bin = disk_.Load(dk)) {
    const unsigned char* bytes = reinterpret_cast<const unsigned char*>(bin->data());
    const size_t size = bin->size();
    cl_int status = CL_SUCCESS, err = CL_SUCCESS;
    cl_program p = clCreateProgramWithBinary(context_, 1, &dev, &size, &bytes, &status, &err);
    if (err == CL_SUCCESS && status == CL_SUCCESS &&
        clBuildProgram(p, 1, &dev, full_options.c_str(), nullptr, nullptr) == CL_SUCCESS) {
      program->program = p;
      origin.from_disk = true;
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
  if (disk_.enabled() &&
      clGetProgramInfo(p, CL_PROGRAM_BINARY_SIZES, sizeof(bin_size), &bin_size, nullptr) == CL_SUCCESS && bin_size) {
    std::string bin(bin_size, '\0');
    unsigned char* ptr = reinterpret_cast<unsigned char*>(bin.data());
    if (clGetProgramInfo(p, CL_PROGRAM_BINARIES, sizeof(ptr), &ptr, nullptr) == CL_SUCCESS) {
      (void)disk_.Store(dk, bin);  // the disk cache reports its own failures
    }
  }
  return program;
}

PipelineStats ProgramCache::stats() const { return cache_.stats(); }

}  // namespace kiln::opencl
