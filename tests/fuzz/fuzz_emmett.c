/*
 * fuzz_emmett.c - libFuzzer harness for the whole Emmett compiler: any input
 * must give either VP text or one error line, never a crash, leak or hang.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "emmett/emmett.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static FILE *devnull;
  if (!devnull)
    devnull = fopen("/dev/null", "w");
  char *text = malloc(size + 1);
  if (!text)
    return 0;
  memcpy(text, data, size);
  text[size] = 0;
  em_opts opts = {NULL, 0, NULL, 0, NULL, 0, devnull};
  char err[512];
  err[0] = 0;
  char *vp = em_compile_text(text, "/nonexistent-fuzz-dir/input.emt", &opts,
                             err, sizeof err);
  if (!vp && !strstr(err, "error: "))
    abort(); /* a failure always says why */
  free(vp);
  free(text);
  return 0;
}
