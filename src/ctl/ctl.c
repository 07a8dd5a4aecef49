/*
 * ctl.c - the controller's streams and clock, and the local engine: the
 * target-free probes (VMXLoad, VMXUnload, VMX1Hz, VMX10Hz, USEC:N) run in
 * vprobe itself, all on one thread so that per-thread globals set in
 * VMXLoad are the ones the periodic probes see.
 */
#include "ctl/ctl.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

void ctl_sink(void *session, int stream, const void *data, size_t n) {
  ctl_session *s = session;
  FILE *f = stream == RT_OUT ? s->out : stream == RT_ERR ? s->err : s->bin;
  if (f) fwrite(data, 1, n, f);
}

size_t ctl_drain(ctl_session *s, rt_space *sp, uint64_t upto) {
  size_t n = rt_drain(sp, upto, ctl_sink, s);
  uint64_t lost = rt_dropped(sp);
  /* Say once per growth of the count, not per record: a flooded ring would
   * otherwise flood the error stream too. */
  if (lost > s->reported_drops) {
    fprintf(s->err, "vprobe: %llu records lost to full buffers so far\n",
            (unsigned long long)lost);
    s->reported_drops = lost;
  }
  fflush(s->out);
  fflush(s->err);
  if (s->bin) fflush(s->bin);
  return n;
}

double ctl_time_left(const ctl_session *s, uint64_t start_ns) {
  if (s->duration <= 0) return 1e9;
  return s->duration - (double)(rt_clock() - start_ns) / 1e9;
}

int ctl_stopping(const ctl_session *s, uint64_t start_ns) {
  return (s->stop && *s->stop) || ctl_time_left(s, start_ns) <= 0;
}

/* ---- the local engine ---- */

enum { LOCAL_LOAD, LOCAL_UNLOAD, LOCAL_PERIODIC };

typedef struct local_probe {
  int probe;
  int kind;
  uint64_t period_ns, next_ns;
} local_probe;

/* Period of a target-free periodic probe name, 0 if it is not one. */
static uint64_t local_period(const char *name) {
  if (!strcmp(name, "VMX1Hz")) return 1000000000ull;
  if (!strcmp(name, "VMX10Hz")) return 100000000ull;
  if (!strncmp(name, "USEC:", 5)) {
    char *end;
    errno = 0;
    unsigned long long us = strtoull(name + 5, &end, 10);
    if (errno || *end || end == name + 5 || us == 0 || us > 3600000000ull)
      return 0;
    return us * 1000ull;
  }
  return 0;
}

/* Nothing to read and no registers: a target-free probe has no target. */
static int local_reg(void *self, int reg, uint64_t *val) {
  (void)self, (void)reg, (void)val;
  return -1;
}

static int local_read(void *self, int model, uint64_t addr, void *buf,
                      size_t n) {
  (void)self, (void)model, (void)addr, (void)buf, (void)n;
  return -1;
}

static int local_call(void *self, int fn, const uint64_t *iargs,
                      const char *const *sargs, int nargs, uint64_t *iret,
                      char *sret) {
  (void)self, (void)iargs, (void)sargs, (void)nargs, (void)sret;
  if (fn == VP_FN_CURPID) {
    *iret = (uint64_t)getpid();
    return 0;
  }
  if (fn == VP_FN_CURPROCNAME) {
    snprintf(sret, VP_STR_MAX, "vprobe");
    return 0;
  }
  return -VP_EXC_MEM;
}

static const vp_target local_target = {NULL, local_reg, local_read, local_call};

static void local_fire(rt_thread *th, const vp_image *img, int probe) {
  vp_fire f = {.probe = probe, .target = &local_target};
  vp_run(th, img, &f);
}

/* Sort the probes into load, unload and periodic ones; refuse probes that
 * need a target. */
static int local_plan(ctl_session *s, local_probe *lp, int n) {
  for (int i = 0; i < n; i++) {
    const char *name = vp_image_probe(s->img, i);
    lp[i] = (local_probe){.probe = i};
    if (!strcmp(name, "VMXLoad")) lp[i].kind = LOCAL_LOAD;
    else if (!strcmp(name, "VMXUnload")) lp[i].kind = LOCAL_UNLOAD;
    else if ((lp[i].period_ns = local_period(name))) lp[i].kind = LOCAL_PERIODIC;
    else {
      fprintf(s->err,
              "vprobe: %s: needs a target (-x PID, -- CMD, -m VM or -k)\n",
              name);
      return -1;
    }
  }
  return 0;
}

static void sleep_ns(uint64_t ns) {
  struct timespec ts = {(time_t)(ns / 1000000000ull), (long)(ns % 1000000000ull)};
  nanosleep(&ts, NULL);
}

int ctl_local_run(ctl_session *s) {
  int n = vp_image_nprobes(s->img);
  local_probe *lp = calloc((size_t)n + 1, sizeof *lp);
  if (!lp || local_plan(s, lp, n) < 0) {
    free(lp);
    return 1;
  }
  rt_layout layout;
  vp_image_layout(s->img, &layout);
  layout.max_threads = 4;
  size_t size = rt_space_size(&layout);
  void *mem = calloc(1, size);
  rt_space *sp = mem ? rt_space_init(mem, size, &layout) : NULL;
  rt_thread *th = sp ? rt_thread_get(sp, (uint32_t)syscall(SYS_gettid)) : NULL;
  if (!th) {
    fprintf(s->err, "vprobe: cannot set up the runtime (%zu bytes)\n", size);
    free(mem);
    free(lp);
    return 1;
  }
  uint64_t start = rt_clock();
  int periodic = 0;
  for (int i = 0; i < n; i++) {
    if (lp[i].kind == LOCAL_LOAD) local_fire(th, s->img, lp[i].probe);
    if (lp[i].kind == LOCAL_PERIODIC) {
      lp[i].next_ns = start + lp[i].period_ns;
      periodic = 1;
    }
  }
  ctl_drain(s, sp, UINT64_MAX);
  /* Without periodic probes nothing else can fire: unload at once, unless
   * the user asked for a duration. */
  while ((periodic || s->duration > 0) && !ctl_stopping(s, start)) {
    uint64_t now = rt_clock(), next = now + 50000000ull; /* recheck stop */
    for (int i = 0; i < n; i++)
      if (lp[i].kind == LOCAL_PERIODIC && lp[i].next_ns < next)
        next = lp[i].next_ns;
    if (next > now) sleep_ns(next - now);
    now = rt_clock();
    for (int i = 0; i < n && !ctl_stopping(s, start); i++) {
      if (lp[i].kind != LOCAL_PERIODIC || lp[i].next_ns > now) continue;
      local_fire(th, s->img, lp[i].probe);
      /* A slow probe must not make the engine fire a backlog: skip to the
       * next period in the future. */
      do lp[i].next_ns += lp[i].period_ns; while (lp[i].next_ns <= now);
    }
    ctl_drain(s, sp, UINT64_MAX);
  }
  for (int i = 0; i < n; i++)
    if (lp[i].kind == LOCAL_UNLOAD) local_fire(th, s->img, lp[i].probe);
  ctl_drain(s, sp, UINT64_MAX);
  free(mem);
  free(lp);
  return 0;
}
