/* Embedding kiln from C: what embed.cc does, through the C API
 * (<kiln/kiln_c.h>). Load the hybrid example as one model of two entries
 * (prefill and decode over the same weights and states), prefill a prompt,
 * then decode token after token with the states kept on the device; prints
 * tokens/s for each phase and the same checksum as embed.cc and embed.py.
 *
 *   embed_c out/prefill.kgraph out/decode.kgraph [--steps N] [--backend cpu] */
#include <kiln/kiln_c.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_BACKENDS 4

static double now_seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int fail(const char* what) {
  fprintf(stderr, "embed_c: %s: %s\n", what, kiln_last_error());
  return 1;
}

/* The prompt: token t's activations, the same formula as embed.cc's. */
static float prompt_value(int64_t t, int64_t c) { return 0.5f * sinf(0.37f * t + 0.011f * c); }

/* Finds input `name` of `entry`; returns 0 when found. */
static int find_input(const kiln_entry* entry, const char* name, kiln_tensor_info* info) {
  size_t n = kiln_entry_input_count(entry);
  for (size_t i = 0; i < n; ++i) {
    if (kiln_entry_input_info(entry, i, info) == KILN_OK && strcmp(info->name, name) == 0) return 0;
  }
  return 1;
}

int main(int argc, char** argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: embed_c PREFILL.kgraph DECODE.kgraph [--steps N] [--backend NAME[,NAME...]]\n");
    return 2;
  }
  int steps = 16;
  const char* backend_list = "cpu";
  for (int i = 3; i + 1 < argc; i += 2) {
    if (strcmp(argv[i], "--steps") == 0) {
      steps = atoi(argv[i + 1]);
    } else if (strcmp(argv[i], "--backend") == 0) {
      backend_list = argv[i + 1];
    } else {
      fprintf(stderr, "embed_c: unknown flag %s\n", argv[i]);
      return 2;
    }
  }

  /* Backends, in priority order. */
  kiln_backend* backends[MAX_BACKENDS];
  size_t backend_count = 0;
  char names[256];
  snprintf(names, sizeof names, "%s", backend_list);
  for (char* name = strtok(names, ","); name != NULL; name = strtok(NULL, ",")) {
    if (backend_count == MAX_BACKENDS) {
      fprintf(stderr, "embed_c: at most %d backends\n", MAX_BACKENDS);
      return 2;
    }
    if (kiln_backend_open(name, NULL, &backends[backend_count]) != KILN_OK) return fail(name);
    ++backend_count;
  }

  /* One model, two entries: the file's own graph is "prefill". */
  kiln_model* model;
  if (kiln_model_load(argv[1], &model) != KILN_OK) return fail(argv[1]);
  kiln_entry* decode;
  if (kiln_model_entry(model, "decode", &decode) != KILN_OK &&
      kiln_model_add_entry_file(model, "decode", argv[2]) != KILN_OK) {
    return fail(argv[2]);
  }
  if (kiln_model_prepare(model, backends, backend_count, NULL) != KILN_OK) return fail("prepare");
  kiln_entry* prefill;
  if (kiln_model_entry(model, "prefill", &prefill) != KILN_OK) return fail("prefill");
  if (kiln_model_entry(model, "decode", &decode) != KILN_OK) return fail("decode");

  /* Prefill: x is [1, T, hidden]. */
  kiln_tensor_info x_info;
  if (find_input(prefill, "x", &x_info) != 0 || x_info.rank != 3) {
    fprintf(stderr, "embed_c: prefill: expected an input x of shape [1, T, hidden]\n");
    return 1;
  }
  const int64_t tokens = x_info.dims[1], hidden = x_info.dims[2];
  float* prompt = malloc(x_info.bytes);
  float* x = malloc(hidden * sizeof(float));
  if (prompt == NULL || x == NULL) return 1;
  for (int64_t t = 0; t < tokens; ++t) {
    for (int64_t c = 0; c < hidden; ++c) prompt[t * hidden + c] = prompt_value(t, c);
  }
  if (kiln_model_zero_states(model) != KILN_OK) return fail("zero states");
  if (kiln_entry_set_input(prefill, "x", KILN_F32, x_info.dims, 3, prompt, x_info.bytes) != KILN_OK) {
    return fail("prefill input");
  }
  double t0 = now_seconds();
  if (kiln_entry_run(prefill) != KILN_OK) return fail("prefill");
  const double prefill_s = now_seconds() - t0;
  /* y has x's shape; its last row is the first decode step's input. */
  if (kiln_entry_read_output(prefill, "y", prompt, x_info.bytes) != KILN_OK) return fail("prefill output");
  memcpy(x, prompt + (tokens - 1) * hidden, hidden * sizeof(float));

  /* Decode: position and mask inputs as the decode graph's metadata names them. */
  const char* pos_name = kiln_entry_metadata(decode, "decode.position");
  const char* mask_name = kiln_entry_metadata(decode, "decode.mask");
  if (pos_name == NULL) pos_name = "pos";
  if (mask_name == NULL) mask_name = "mask";
  kiln_tensor_info mask_info;
  if (find_input(decode, mask_name, &mask_info) != 0 || mask_info.dtype != KILN_F32) {
    fprintf(stderr, "embed_c: decode: expected an f32 input %s\n", mask_name);
    return 1;
  }
  const int64_t cells = mask_info.dims[mask_info.rank - 1];
  if (tokens + steps > cells) {
    fprintf(stderr, "embed_c: prefill tokens + steps exceed the cache\n");
    return 1;
  }
  float* mask = malloc(mask_info.bytes);
  if (mask == NULL) return 1;
  for (int64_t j = 0; j < cells; ++j) mask[j] = j < tokens ? 0.0f : -INFINITY;
  const int64_t x_dims[3] = {1, 1, hidden};
  const int64_t pos_dims[1] = {1};
  t0 = now_seconds();
  for (int step = 0; step < steps; ++step) {
    const int32_t pos = (int32_t)(tokens + step);
    mask[pos] = 0.0f;
    if (kiln_entry_set_input(decode, "x", KILN_F32, x_dims, 3, x, hidden * sizeof(float)) != KILN_OK ||
        kiln_entry_set_input(decode, pos_name, KILN_I32, pos_dims, 1, &pos, sizeof pos) != KILN_OK ||
        kiln_entry_set_input(decode, mask_name, KILN_F32, mask_info.dims, (size_t)mask_info.rank, mask,
                             mask_info.bytes) != KILN_OK ||
        kiln_entry_run(decode) != KILN_OK ||
        kiln_entry_read_output(decode, "y", x, hidden * sizeof(float)) != KILN_OK) {
      return fail("decode step");
    }
  }
  const double decode_s = now_seconds() - t0;

  double checksum = 0;
  for (int64_t c = 0; c < hidden; ++c) checksum += x[c];
  printf("backends  %s\n", backend_list);
  printf("prefill   %lld tokens in %.3f ms = %.1f tokens/s\n", (long long)tokens, prefill_s * 1e3,
         tokens / prefill_s);
  printf("decode    %d tokens in %.3f ms = %.1f tokens/s\n", steps, decode_s * 1e3,
         steps > 0 ? steps / decode_s : 0.0);
  printf("checksum  %.6e\n", checksum);

  free(mask);
  free(x);
  free(prompt);
  kiln_model_free(model);
  for (size_t i = 0; i < backend_count; ++i) kiln_backend_free(backends[i]);
  return isfinite(checksum) ? 0 : 1;
}
