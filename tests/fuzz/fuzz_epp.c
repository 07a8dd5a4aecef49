/*
 * fuzz_epp.c - libFuzzer harness for the Emmett preprocessor: any input must
 * give either text or one error line, never a crash, leak or hang.  The input
 * is named as a file in a private directory holding a few include files, so
 * #include has something to find (and a file that includes itself).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "emmett/epp.h"

static char dir[] = "/tmp/fuzz_epp.XXXXXX";
static char name[64], incdir[64];
static const char *const files[][2] = {
    {"a.emh", "#define A 1\n#if A && !defined(B)\nint a;\n#endif\n"},
    {"b.emh", "#include \"a.emh\"\n#define B A + 1\n"},
    {"self.emh", "#include \"self.emh\"\n"},
    {"inc/c.emh", "/* c */\n#line 10 \"c\"\n__LINE__ __FILE__\n"},
};

static void remove_dir(void) {
  char path[128];
  for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
    snprintf(path, sizeof path, "%s/%s", dir, files[i][0]);
    unlink(path);
  }
  rmdir(incdir);
  rmdir(dir);
}

static void setup(void) {
  if (!mkdtemp(dir))
    abort();
  snprintf(name, sizeof name, "%s/input.emt", dir);
  snprintf(incdir, sizeof incdir, "%s/inc", dir);
  mkdir(incdir, 0700);
  for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
    char path[128];
    snprintf(path, sizeof path, "%s/%s", dir, files[i][0]);
    FILE *f = fopen(path, "w");
    if (!f)
      abort();
    fputs(files[i][1], f);
    fclose(f);
  }
  atexit(remove_dir);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static FILE *devnull;
  if (!devnull) {
    devnull = fopen("/dev/null", "w");
    setup();
  }
  char *text = malloc(size + 1);
  if (!text)
    return 0;
  memcpy(text, data, size);
  text[size] = 0;
  static const char *const defines[] = {"FUZZ", "LEVEL=3", "EMPTY="};
  const char *incdirs[] = {incdir};
  em_opts opts = {defines, 3, incdirs, 1, NULL, 0, devnull};
  char err[512];
  err[0] = 0;
  char *out = epp_run(text, name, &opts, err, sizeof err);
  if (out) {
    size_t n = strlen(out);
    if (n && out[n - 1] != '\n')
      abort(); /* every output line is ended */
  } else if (!strstr(err, ": error: ") || strchr(err, '\n')) {
    abort(); /* a failure is one line saying where and why */
  }
  free(out);
  free(text);
  return 0;
}
