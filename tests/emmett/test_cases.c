/* test_cases.c - golden programs: every cases/NAME.emt compiles to exactly
 * cases/NAME.vp, and the VP layer accepts it.  EMMETT_REGEN=1 rewrites the
 * .vp files (review the diff before keeping it). */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "emmett/emmett.h"
#include "vp/vp.h"

static char *slurp(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *p = malloc((size_t)n + 1);
  size_t got = fread(p, 1, (size_t)n, f);
  p[got] = 0;
  fclose(f);
  return p;
}

static int one(const char *dir, const char *name) {
  char emt[2048], vpf[2048], err[1024];
  snprintf(emt, sizeof emt, "%s/%s", dir, name);
  snprintf(vpf, sizeof vpf, "%s/%.*s.vp", dir, (int)(strlen(name) - 4), name);
  char *vp = em_compile_file(emt, NULL, err, sizeof err);
  if (!vp) {
    printf("%s: %s\n", name, err);
    return 1;
  }
  int bad = 0;
  if (getenv("EMMETT_REGEN")) {
    FILE *f = fopen(vpf, "w");
    if (f) {
      fputs(vp, f);
      fclose(f);
    }
  }
  char *want = slurp(vpf);
  if (!want) {
    printf("%s: no %s\n", name, vpf);
    bad = 1;
  } else if (strcmp(want, vp)) {
    printf("%s: output differs from %s\n--- got ---\n%s", name, vpf, vp);
    bad = 1;
  }
  vp_limits lim;
  vp_limits_default(&lim);
  vp_diag d;
  memset(&d, 0, sizeof d);
  vp_image *img = vp_compile(vp, strlen(vp), vpf, &lim, &d);
  if (!img) {
    printf("%s: VP refused it: %s\n", name, d.error);
    bad = 1;
  }
  vp_image_free(img);
  free(want);
  free(vp);
  return bad;
}

static void t_cases(void **state) {
  (void)state;
  const char *top = getenv("VPROBE_TOP");
  char dir[1024];
  snprintf(dir, sizeof dir, "%s/tests/emmett/cases", top ? top : ".");
  DIR *d = opendir(dir);
  if (!d) fail_msg("cannot open %s", dir);
  int n = 0, bad = 0;
  struct dirent *e;
  while ((e = readdir(d))) {
    size_t l = strlen(e->d_name);
    if (l < 5 || strcmp(e->d_name + l - 4, ".emt")) continue;
    n++;
    bad += one(dir, e->d_name);
  }
  closedir(d);
  printf("%d cases, %d bad\n", n, bad);
  assert_true(n >= 5);
  assert_int_equal(bad, 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(t_cases)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
