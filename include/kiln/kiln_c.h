/* kiln's C API: the same as <kiln/kiln.h> (read it for what each call does),
 * for C programs and foreign-function interfaces. C99 or later; usable from
 * C++ too.
 *
 *   kiln_backend* cpu;  kiln_model* model;  kiln_entry* entry;
 *   if (kiln_backend_open("cpu", NULL, &cpu) != KILN_OK) fail(kiln_last_error());
 *   if (kiln_model_load("out/hybrid-block-prefill.kgraph", &model) != KILN_OK) ...
 *   kiln_model_prepare(model, &cpu, 1, NULL);
 *   kiln_model_entry(model, "prefill", &entry);
 *   kiln_entry_set_input(entry, "x", KILN_F32, dims, 3, x, sizeof x);
 *   kiln_entry_run(entry);
 *   kiln_entry_read_output(entry, "y", y, sizeof y);
 *   kiln_model_free(model);  kiln_backend_free(cpu);
 *
 * Errors: every call that can fail returns a kiln_code (KILN_OK = 0; the
 * others mirror absl::StatusCode's numbers). The message of the last failed
 * call is kept per thread: kiln_last_error() returns it (the empty string
 * after a call that succeeded). The pointer stays valid until the next kiln
 * call on the same thread; copy it to keep it. Every call checks its
 * pointers (NULL where a handle or out-pointer is needed is
 * KILN_INVALID_ARGUMENT) and its sizes, and no C++ exception leaves it.
 *
 * Ownership: each kiln_*_open / _load / _create / _from_* result is freed by
 * its kiln_*_free (which accepts NULL). A kiln_entry belongs to its model
 * (valid until kiln_model_free; never freed on its own). Strings returned
 * through `char**` are freed by kiln_string_free. `const char*` results
 * (names, tensor infos) stay valid as long as the handle they came from.
 *
 * Threads: as in kiln.h. Backends and free functions: any thread. A model:
 * load, add entries and prepare from one thread, then read-only queries
 * from any. An entry's calls are serialized by its lock; runs of one
 * model's entries exclude each other; different models run concurrently.
 * kiln_last_error() is per thread. */
#ifndef KILN_KILN_C_H_
#define KILN_KILN_C_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The numbers of absl::StatusCode. */
typedef enum kiln_code {
  KILN_OK = 0,
  KILN_CANCELLED = 1,
  KILN_UNKNOWN = 2,
  KILN_INVALID_ARGUMENT = 3,
  KILN_DEADLINE_EXCEEDED = 4,
  KILN_NOT_FOUND = 5,
  KILN_ALREADY_EXISTS = 6,
  KILN_PERMISSION_DENIED = 7,
  KILN_RESOURCE_EXHAUSTED = 8,
  KILN_FAILED_PRECONDITION = 9,
  KILN_ABORTED = 10,
  KILN_OUT_OF_RANGE = 11,
  KILN_UNIMPLEMENTED = 12,
  KILN_INTERNAL = 13,
  KILN_UNAVAILABLE = 14,
  KILN_DATA_LOSS = 15,
  KILN_UNAUTHENTICATED = 16
} kiln_code;

/* Element types, numbered as kiln::api::DType. */
typedef enum kiln_dtype {
  KILN_F32 = 0,
  KILN_F16 = 1,
  KILN_BF16 = 2,
  KILN_I32 = 3,
  KILN_Q8_0 = 4 /* blocks of 32 values, 34 bytes each (f16 scale, 32 int8) */
} kiln_dtype;

#define KILN_MAX_RANK 4

typedef struct kiln_backend kiln_backend;
typedef struct kiln_model kiln_model;
typedef struct kiln_entry kiln_entry;

/* A tensor's name, type and shape. `name` is owned by the handle it came
 * from and lives as long as it. */
typedef struct kiln_tensor_info {
  const char* name;
  kiln_dtype dtype;
  int rank;                     /* 1..4 */
  int64_t dims[KILN_MAX_RANK];  /* outermost first; dims[rank..] are 0 */
  size_t bytes;                 /* contiguous size */
} kiln_tensor_info;

/* ---- Errors, versions, types ------------------------------------------ */

/* The message of this thread's last failed call; "" after a success. */
const char* kiln_last_error(void);
/* "OK", "INVALID_ARGUMENT", ...; "UNKNOWN_CODE" for other values. */
const char* kiln_code_name(kiln_code code);
/* "0.1.0". */
const char* kiln_version(void);
/* "f32", ...; NULL for a value that is no dtype. */
const char* kiln_dtype_name(kiln_dtype dtype);
/* Bytes of a contiguous tensor of that type and shape (rank 1..4). */
kiln_code kiln_contiguous_bytes(kiln_dtype dtype, const int64_t* dims, size_t rank, size_t* bytes);

/* Frees a string returned through a char** by this API (NULL is fine). */
void kiln_string_free(char* s);

/* ---- Backends ----------------------------------------------------------- */

/* The backends compiled in, in default priority order: count, then names
 * (static strings; NULL for an index out of range). */
size_t kiln_backend_name_count(void);
const char* kiln_backend_name_at(size_t index);
/* The devices backend `name` can use here, one per line:
 * "index<TAB>kind<TAB>name<TAB>driver<TAB>memory_bytes". Free with
 * kiln_string_free. */
kiln_code kiln_list_devices(const char* name, char** text);

/* Options for kiln_backend_open; zero (or NULL) fields take the defaults of
 * kiln::api::BackendOptions. `flags` is "key=value,key=value" (or NULL). */
typedef struct kiln_backend_options {
  int threads;
  const char* device;
  const char* cache_dir;
  const char* flags;
} kiln_backend_options;

/* Opens a backend ("cpu", "vulkan", "opencl"); `options` may be NULL. */
kiln_code kiln_backend_open(const char* name, const kiln_backend_options* options, kiln_backend** out);
/* Frees the handle; a prepared model that uses the backend keeps it alive. */
void kiln_backend_free(kiln_backend* backend);
/* The backend's name and its device's name (valid while the handle lives). */
const char* kiln_backend_name(const kiln_backend* backend);
const char* kiln_backend_device_name(const kiln_backend* backend);

/* ---- Models ------------------------------------------------------------- */

/* Loads a model file (its graph is entry "prefill"; "model.entry.<name>"
 * metadata adds entries from files in the same folder). */
kiln_code kiln_model_load(const char* path, kiln_model** out);
/* One entry named `entry` (NULL: "prefill") from a serialized graph of
 * `size` bytes; external weights resolve inside `folder` (NULL: none). */
kiln_code kiln_model_from_bytes(const void* data, size_t size, const char* folder, const char* entry,
                                kiln_model** out);
void kiln_model_free(kiln_model* model);

/* Adds an entry (a new name) from a graph file or serialized bytes. */
kiln_code kiln_model_add_entry_file(kiln_model* model, const char* entry, const char* path);
kiln_code kiln_model_add_entry_bytes(kiln_model* model, const char* entry, const void* data, size_t size,
                                     const char* folder);

/* Options for kiln_model_prepare; NULL = the defaults below. Set every
 * field (kiln_prepare_options_default fills them). */
typedef struct kiln_prepare_options {
  int strict;           /* default 0 */
  int allow_profiling;  /* default 1 */
  int profile;          /* default 0 */
  int merge_islands;    /* default 1 */
  int wrap_constants;   /* default 1 */
} kiln_prepare_options;
kiln_prepare_options kiln_prepare_options_default(void);

/* Prepares every entry on `backends` (priority order, `count` of them). */
kiln_code kiln_model_prepare(kiln_model* model, kiln_backend* const* backends, size_t count,
                             const kiln_prepare_options* options);

/* Entries: count, name by index (NULL when out of range), handle by name
 * (NULL or "": the first entry). */
size_t kiln_model_entry_count(const kiln_model* model);
const char* kiln_model_entry_name(const kiln_model* model, size_t index);
kiln_code kiln_model_entry(kiln_model* model, const char* name, kiln_entry** out);

/* States, by name: `bytes` must be the state's contiguous size. */
size_t kiln_model_state_count(const kiln_model* model);
kiln_code kiln_model_state_info(const kiln_model* model, size_t index, kiln_tensor_info* info);
kiln_code kiln_model_read_state(const kiln_model* model, const char* name, void* dst, size_t bytes);
kiln_code kiln_model_write_state(kiln_model* model, const char* name, const void* data, size_t bytes);
kiln_code kiln_model_zero_states(kiln_model* model);

/* ---- Entries ------------------------------------------------------------ */

/* Inputs (states not included) and outputs, by index; by name for inputs. */
size_t kiln_entry_input_count(const kiln_entry* entry);
kiln_code kiln_entry_input_info(const kiln_entry* entry, size_t index, kiln_tensor_info* info);
size_t kiln_entry_output_count(const kiln_entry* entry);
kiln_code kiln_entry_output_info(const kiln_entry* entry, size_t index, kiln_tensor_info* info);
/* The value of metadata `key`, or NULL when the graph has none. */
const char* kiln_entry_metadata(const kiln_entry* entry, const char* key);

/* Binds an input from host memory (copied once before the call returns):
 * `dtype`, `dims` (rank of them) and `size` must match the input. */
kiln_code kiln_entry_set_input(kiln_entry* entry, const char* name, kiln_dtype dtype, const int64_t* dims,
                               size_t rank, const void* data, size_t size);
/* Binds an input from a .npy file (conversions as in kiln.h). */
kiln_code kiln_entry_set_input_npy(kiln_entry* entry, const char* name, const char* path);

/* Zero-copy (kiln::api::Entry::InputBuffer / OutputBuffer): kiln's own
 * buffer of input `name` to write the input's bytes into instead of
 * kiln_entry_set_input, or the bytes of output `name` of the last run (valid
 * until the next run). KILN_UNIMPLEMENTED where the backend's memory is not
 * host-addressable. */
kiln_code kiln_entry_input_buffer(kiln_entry* entry, const char* name, void** data, size_t* size);
kiln_code kiln_entry_output_buffer(const kiln_entry* entry, const char* name, const void** data, size_t* size);

/* Runs and waits; or submits, then waits (possibly on another thread). */
kiln_code kiln_entry_run(kiln_entry* entry);
kiln_code kiln_entry_submit(kiln_entry* entry);
kiln_code kiln_entry_wait(kiln_entry* entry);

/* Copies output (or state) `name` of the last run into `dst`, whose `size`
 * must be its contiguous size. */
kiln_code kiln_entry_read_output(const kiln_entry* entry, const char* name, void* dst, size_t size);

/* The plan (kiln::api::Plan) as text or JSON; the profile as JSON. */
kiln_code kiln_entry_plan_text(const kiln_entry* entry, char** text);
kiln_code kiln_entry_plan_json(const kiln_entry* entry, char** json);
kiln_code kiln_entry_set_profiling(kiln_entry* entry, int on);
kiln_code kiln_entry_profile_json(const kiln_entry* entry, char** json);

#ifdef __cplusplus
}  /* extern "C" */
#endif

#endif  /* KILN_KILN_C_H_ */
