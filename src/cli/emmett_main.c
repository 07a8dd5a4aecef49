/*
 * emmett - the Emmett compiler alone: Emmett in, readable VP out.
 *   emmett [-D NAME[=VAL]] [-I DIR] [-o OUT.vp] FILE.emt
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "emmett/emmett.h"

#define MAXOPT 64

static int usage(void) {
  fputs("usage: emmett [-D NAME[=VAL]] [-I DIR] [-o OUT.vp] FILE.emt\n", stderr);
  return 2;
}

/* The value of an option written either "-DX" or "-D X". */
static const char *optval(int argc, char **argv, int *i) {
  if (argv[*i][2]) return argv[*i] + 2;
  if (*i + 1 >= argc) return NULL;
  return argv[++*i];
}

int main(int argc, char **argv) {
  const char *defs[MAXOPT], *incs[MAXOPT], *out = NULL, *in = NULL;
  int ndefs = 0, nincs = 0;
  for (int i = 1; i < argc; i++) {
    char *a = argv[i];
    if (!strcmp(a, "--version")) { puts("emmett 1.0"); return 0; }
    if (a[0] != '-' || !a[1]) {
      if (in) return usage();
      in = a;
      continue;
    }
    const char *v = optval(argc, argv, &i);
    if (!v) return usage();
    switch (a[1]) {
    case 'D': if (ndefs == MAXOPT) return usage(); defs[ndefs++] = v; break;
    case 'I': if (nincs == MAXOPT) return usage(); incs[nincs++] = v; break;
    case 'o': out = v; break;
    default: return usage();
    }
  }
  if (!in) return usage();
  em_opts o = {.defines = defs, .ndefines = ndefs, .incdirs = incs,
               .nincdirs = nincs};
  char err[1024];
  char *vp = em_compile_file(in, &o, err, sizeof err);
  if (!vp) {
    fprintf(stderr, "%s\n", err);
    return 1;
  }
  if (out && !strcmp(out, "-")) out = NULL; /* -o - is standard output */
  char why[PATH_MAX + 128];
  FILE *f = out ? cli_open_out(out, 0644, why, sizeof why) : stdout;
  if (!f) {
    fprintf(stderr, "emmett: %s\n", why);
    free(vp);
    return 1;
  }
  fputs(vp, f);
  free(vp);
  if (f != stdout ? fclose(f) != 0 : fflush(f) != 0) {
    fprintf(stderr, "emmett: %s: write error\n", out ? out : "<stdout>");
    return 1;
  }
  return 0;
}
