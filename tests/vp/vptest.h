/* vptest.h - helpers for the VP tests: compile VP text, lay out a local
 * rt_space, fire probes with vp_run and collect what they wrote. */
#ifndef VPTEST_H
#define VPTEST_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "rt/rt.h"
#include "vp/vp.h"

typedef struct vt {
  vp_image *img;
  void *mem;
  rt_space *sp;
  rt_thread *th;
  vp_diag diag;
  char out[65536], err[8192];
  unsigned char bin[4096];
  size_t nout, nerr, nbin;
} vt;

static inline void vt_sink(void *ctx, int stream, const void *data, size_t n) {
  vt *t = ctx;
  char *dst = stream == RT_OUT ? t->out : stream == RT_ERR ? t->err
                                                           : (char *)t->bin;
  size_t *len = stream == RT_OUT ? &t->nout : stream == RT_ERR ? &t->nerr
                                                               : &t->nbin;
  size_t cap = stream == RT_OUT ? sizeof t->out : stream == RT_ERR
                                                      ? sizeof t->err
                                                      : sizeof t->bin;
  if (*len + n + 1 > cap)
    n = cap - *len - 1;
  memcpy(dst + *len, data, n);
  *len += n;
  dst[*len] = 0;
}

static inline void vt_space(vt *t) {
  rt_layout l;
  vp_image_layout(t->img, &l);
  l.max_threads = 8;
  l.ring_bytes = 1 << 16;
  l.aggr_buckets = 256;
  size_t n = rt_space_size(&l);
  t->mem = calloc(1, n);
  assert_non_null(t->mem);
  t->sp = rt_space_init(t->mem, n, &l);
  assert_non_null(t->sp);
  t->th = rt_thread_get(t->sp, 1);
  assert_non_null(t->th);
}

/* Compile src with lim (NULL: defaults); NULL image on error. */
static inline vt *vt_new(const char *src, const vp_limits *lim) {
  vt *t = calloc(1, sizeof *t);
  vp_limits d;
  vp_limits_default(&d);
  t->img = vp_compile(src, strlen(src), "t.vp", lim ? lim : &d, &t->diag);
  if (t->img)
    vt_space(t);
  return t;
}

static inline vt *vt_ok(const char *src) {
  vt *t = vt_new(src, NULL);
  if (!t->img)
    fail_msg("compile failed: %s", t->diag.error);
  return t;
}

static inline void vt_drain(vt *t) {
  rt_drain(t->sp, UINT64_MAX, vt_sink, t);
}

static inline int vt_probe(vt *t, const char *name) {
  for (int i = 0; i < vp_image_nprobes(t->img); i++)
    if (!strcmp(vp_image_probe(t->img, i), name))
      return i;
  fail_msg("no probe %s", name);
  return -1;
}

static inline int vt_fire_t(vt *t, const char *probe, const vp_target *tg) {
  vp_fire f;
  memset(&f, 0, sizeof f);
  f.probe = vt_probe(t, probe);
  f.target = tg;
  int e = vp_run(t->th, t->img, &f);
  vt_drain(t);
  return e;
}

static inline int vt_fire(vt *t, const char *probe) {
  return vt_fire_t(t, probe, NULL);
}

static inline void vt_free(vt *t) {
  vp_image_free(t->img);
  free(t->mem);
  free(t);
}

/* Compile and fire every probe in order; returns the output. */
static inline void vt_expect(const char *src, const char *out) {
  vt *t = vt_ok(src);
  for (int i = 0; i < vp_image_nprobes(t->img); i++) {
    vp_fire f;
    memset(&f, 0, sizeof f);
    f.probe = i;
    vp_run(t->th, t->img, &f);
  }
  vt_drain(t);
  assert_string_equal(t->out, out);
  assert_string_equal(t->err, "");
  vt_free(t);
}

/* Expect a compile error with exactly this message. */
static inline void vt_error(const char *src, const char *msg) {
  vt *t = vt_new(src, NULL);
  if (t->img)
    fail_msg("compiled, expected: %s", msg);
  assert_string_equal(t->diag.error, msg);
  vt_free(t);
}

#endif
