/* The C API, from C (compiled as C11): load a graph file, run it, read its
 * output and a state, and the error paths (a bad file, a wrong input size,
 * an unknown input name, NULL arguments). argv[1]: the
 * attention-block-decode example graph (ctest makes it with
 * `kiln make-example`). Prints each failed check and exits non-zero. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kiln/kiln_c.h"

static int failures = 0;

#define CHECK(cond)                                                                          \
  do {                                                                                       \
    if (!(cond)) {                                                                           \
      fprintf(stderr, "%s:%d: check failed: %s (last error: %s)\n", __FILE__, __LINE__, #cond, \
              kiln_last_error());                                                            \
      ++failures;                                                                            \
    }                                                                                        \
  } while (0)

#define CHECK_OK(call) CHECK((call) == KILN_OK)

int main(int argc, char** argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s GRAPH.kgraph\n", argv[0]);
    return 2;
  }
  const char* path = argv[1];

  CHECK(strlen(kiln_version()) > 0);
  CHECK(strcmp(kiln_code_name(KILN_NOT_FOUND), "NOT_FOUND") == 0);
  CHECK(strcmp(kiln_dtype_name(KILN_BF16), "bf16") == 0);
  CHECK(kiln_dtype_name((kiln_dtype)99) == NULL);
  size_t bytes = 0;
  const int64_t shape[2] = {2, 64};
  CHECK_OK(kiln_contiguous_bytes(KILN_Q8_0, shape, 2, &bytes));
  CHECK(bytes == 2 * 2 * 34);
  CHECK(kiln_contiguous_bytes(KILN_F32, shape, 0, &bytes) == KILN_INVALID_ARGUMENT);

  /* Backends. */
  size_t n = kiln_backend_name_count();
  CHECK(n >= 1);
  CHECK(strcmp(kiln_backend_name_at(n - 1), "cpu") == 0);
  CHECK(kiln_backend_name_at(n) == NULL);
  char* devices = NULL;
  CHECK_OK(kiln_list_devices("cpu", &devices));
  CHECK(devices != NULL && strlen(devices) > 0);
  kiln_string_free(devices);
  kiln_backend* cpu = NULL;
  kiln_backend* none = NULL;
  CHECK(kiln_backend_open("no-such-backend", NULL, &none) == KILN_NOT_FOUND);
  CHECK(none == NULL);
  CHECK(strstr(kiln_last_error(), "cpu") != NULL);
  kiln_backend_options options = {0, NULL, NULL, "not-a-flag"};
  CHECK(kiln_backend_open("cpu", &options, &none) == KILN_INVALID_ARGUMENT);
  CHECK_OK(kiln_backend_open("cpu", NULL, &cpu));
  CHECK(strlen(kiln_last_error()) == 0);
  CHECK(strcmp(kiln_backend_name(cpu), "cpu") == 0);
  CHECK(kiln_backend_device_name(cpu) != NULL);

  /* A bad file. */
  kiln_model* model = NULL;
  CHECK(kiln_model_load("/nonexistent/graph.kgraph", &model) != KILN_OK);
  CHECK(strstr(kiln_last_error(), "/nonexistent/graph.kgraph") != NULL);
  CHECK(model == NULL);
  CHECK(kiln_model_from_bytes("junk", 4, NULL, NULL, &model) != KILN_OK);
  CHECK(kiln_model_load(NULL, &model) == KILN_INVALID_ARGUMENT);
  CHECK(kiln_model_load(path, NULL) == KILN_INVALID_ARGUMENT);

  /* Load, prepare, bind, run. */
  if (kiln_model_load(path, &model) != KILN_OK) {
    fprintf(stderr, "cannot load %s: %s\n", path, kiln_last_error());
    return 1;
  }
  CHECK(kiln_model_entry_count(model) == 1);
  CHECK(strcmp(kiln_model_entry_name(model, 0), "prefill") == 0);
  kiln_entry* entry = NULL;
  CHECK(kiln_model_entry(model, "decode", &entry) == KILN_NOT_FOUND);
  CHECK_OK(kiln_model_entry(model, NULL, &entry));
  CHECK(entry != NULL);
  /* Before Prepare. */
  CHECK(kiln_entry_run(entry) == KILN_FAILED_PRECONDITION);
  kiln_prepare_options prepare = kiln_prepare_options_default();
  prepare.profile = 1;
  CHECK(kiln_model_prepare(model, NULL, 1, &prepare) == KILN_INVALID_ARGUMENT);
  CHECK_OK(kiln_model_prepare(model, &cpu, 1, &prepare));

  CHECK(kiln_entry_input_count(entry) == 3); /* x, pos, mask */
  kiln_tensor_info info;
  int found_x = 0;
  for (size_t i = 0; i < kiln_entry_input_count(entry); ++i) {
    CHECK_OK(kiln_entry_input_info(entry, i, &info));
    if (strcmp(info.name, "x") == 0) {
      found_x = 1;
      CHECK(info.dtype == KILN_F32 && info.rank == 3 && info.dims[2] == 1024 && info.bytes == 4096);
    }
  }
  CHECK(found_x);
  CHECK(kiln_entry_input_info(entry, 3, &info) == KILN_OUT_OF_RANGE);
  CHECK(kiln_entry_output_count(entry) >= 1);
  CHECK(kiln_model_state_count(model) == 2); /* blk.0.k_cache, blk.0.v_cache */

  static float x[1024];
  static float mask[4096];
  static float y[1024];
  for (int i = 0; i < 1024; ++i) x[i] = (float)((i % 7) - 3) * 0.25f;
  for (int i = 0; i < 4096; ++i) mask[i] = i == 0 ? 0.0f : -INFINITY;
  const int32_t pos = 0;
  const int64_t x_dims[3] = {1, 1, 1024};
  const int64_t pos_dims[1] = {1};
  const int64_t mask_dims[4] = {1, 1, 1, 4096};

  /* Wrong input size, dtype, unknown name, NULLs. */
  CHECK(kiln_entry_set_input(entry, "x", KILN_F32, x_dims, 3, x, sizeof x - 4) == KILN_INVALID_ARGUMENT);
  CHECK(strstr(kiln_last_error(), "'x'") != NULL);
  CHECK(kiln_entry_set_input(entry, "x", KILN_F16, x_dims, 3, x, sizeof x) == KILN_INVALID_ARGUMENT);
  CHECK(kiln_entry_set_input(entry, "x", KILN_F32, x_dims, 2, x, sizeof x) == KILN_INVALID_ARGUMENT);
  CHECK(kiln_entry_set_input(entry, "x", KILN_F32, x_dims, 9, x, sizeof x) == KILN_INVALID_ARGUMENT);
  CHECK(kiln_entry_set_input(entry, "x", (kiln_dtype)42, x_dims, 3, x, sizeof x) == KILN_INVALID_ARGUMENT);
  CHECK(kiln_entry_set_input(entry, "nope", KILN_F32, x_dims, 3, x, sizeof x) == KILN_NOT_FOUND);
  CHECK(strstr(kiln_last_error(), "'nope'") != NULL);
  CHECK(kiln_entry_set_input(entry, "x", KILN_F32, x_dims, 3, NULL, sizeof x) == KILN_INVALID_ARGUMENT);
  CHECK(kiln_entry_set_input(NULL, "x", KILN_F32, x_dims, 3, x, sizeof x) == KILN_INVALID_ARGUMENT);
  CHECK(kiln_entry_run(NULL) == KILN_INVALID_ARGUMENT);
  CHECK(kiln_entry_set_input_npy(entry, "x", "/nonexistent/x.npy") != KILN_OK);
  /* A run with inputs missing. */
  CHECK(kiln_entry_run(entry) == KILN_FAILED_PRECONDITION);

  CHECK_OK(kiln_entry_set_input(entry, "x", KILN_F32, x_dims, 3, x, sizeof x));
  CHECK_OK(kiln_entry_set_input(entry, "pos", KILN_I32, pos_dims, 1, &pos, sizeof pos));
  CHECK_OK(kiln_entry_set_input(entry, "mask", KILN_F32, mask_dims, 4, mask, sizeof mask));
  CHECK_OK(kiln_entry_run(entry));
  CHECK(kiln_entry_read_output(entry, "y", y, sizeof y - 1) == KILN_INVALID_ARGUMENT);
  CHECK(kiln_entry_read_output(entry, "nope", y, sizeof y) == KILN_NOT_FOUND);
  CHECK_OK(kiln_entry_read_output(entry, "y", y, sizeof y));
  int finite = 1, differs = 0;
  for (int i = 0; i < 1024; ++i) {
    finite = finite && isfinite(y[i]);
    differs = differs || y[i] != x[i];
  }
  CHECK(finite);
  CHECK(differs); /* the layer added something to the residual stream */

  /* Submit and wait give the same output (the same inputs, pos 0 again). */
  static float y2[1024];
  CHECK_OK(kiln_entry_submit(entry));
  CHECK(kiln_entry_submit(entry) == KILN_FAILED_PRECONDITION);
  CHECK_OK(kiln_entry_wait(entry));
  CHECK_OK(kiln_entry_read_output(entry, "y", y2, sizeof y2));
  CHECK(memcmp(y, y2, sizeof y) == 0);

  /* Zero-copy: write x into kiln's buffer, read y in place (the CPU). */
  void* x_buffer = NULL;
  size_t x_size = 0;
  CHECK_OK(kiln_entry_input_buffer(entry, "x", &x_buffer, &x_size));
  CHECK(x_buffer != NULL && x_size == sizeof x);
  if (x_buffer) memcpy(x_buffer, x, sizeof x);
  CHECK(kiln_entry_input_buffer(entry, "x", NULL, &x_size) == KILN_INVALID_ARGUMENT);
  CHECK_OK(kiln_entry_run(entry));
  const void* y_buffer = NULL;
  size_t y_size = 0;
  CHECK_OK(kiln_entry_output_buffer(entry, "y", &y_buffer, &y_size));
  CHECK(y_buffer != NULL && y_size == sizeof y);
  if (y_buffer) CHECK(memcmp(y_buffer, y, sizeof y) == 0);

  /* The KV cache row 0 was written; zeroing clears it. */
  CHECK_OK(kiln_model_state_info(model, 0, &info));
  CHECK(info.dtype == KILN_F16 && info.bytes == (size_t)4096 * 1024 * 2);
  unsigned char* cache = malloc(info.bytes);
  CHECK(cache != NULL);
  if (cache) {
    CHECK(kiln_model_read_state(model, info.name, cache, info.bytes - 2) == KILN_INVALID_ARGUMENT);
    CHECK_OK(kiln_model_read_state(model, info.name, cache, info.bytes));
    int nonzero = 0;
    for (size_t i = 0; i < 2048; ++i) nonzero = nonzero || cache[i] != 0;
    CHECK(nonzero);
    CHECK_OK(kiln_model_zero_states(model));
    CHECK_OK(kiln_model_read_state(model, info.name, cache, info.bytes));
    nonzero = 0;
    for (size_t i = 0; i < 2048; ++i) nonzero = nonzero || cache[i] != 0;
    CHECK(!nonzero);
    CHECK(kiln_model_write_state(model, "no-state", cache, info.bytes) == KILN_NOT_FOUND);
    free(cache);
  }

  /* Plan and profile. */
  char* text = NULL;
  CHECK_OK(kiln_entry_plan_text(entry, &text));
  CHECK(text != NULL && strstr(text, "flash_attn") != NULL);
  kiln_string_free(text);
  CHECK_OK(kiln_entry_plan_json(entry, &text));
  CHECK(text != NULL && text[0] == '{');
  kiln_string_free(text);
  CHECK_OK(kiln_entry_profile_json(entry, &text));
  CHECK(text != NULL && strstr(text, "\"runs\": 3") != NULL);
  kiln_string_free(text);
  CHECK(kiln_entry_metadata(entry, "no-such-key") == NULL);

  kiln_model_free(model);
  kiln_backend_free(cpu);
  kiln_model_free(NULL);
  kiln_backend_free(NULL);
  kiln_string_free(NULL);
  if (failures) fprintf(stderr, "%d checks failed\n", failures);
  else printf("kiln C API: all checks passed\n");
  return failures ? 1 : 0;
}
