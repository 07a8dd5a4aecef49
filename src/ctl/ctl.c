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

#include "vp/probename.h"

/* ---- repeated error lines ---- */

#define REPEAT_WINDOW_NS 1000000000ull
#define REPEAT_CHECK_NS 50000000ull /* how often ctl_sink looks at windows */

static uint32_t line_hash(const char *p, size_t n) {
  uint32_t h = 2166136261u; /* FNV-1a */
  while (n--) h = (h ^ (unsigned char)*p++) * 16777619u;
  return h;
}

/* One line for the repeats of slot r counted since r->since_ns. */
static void repeat_report(ctl_session *s, ctl_repeat *r, uint64_t now) {
  if (!r->count || !s->err) return;
  size_t n = r->len;
  if (n && r->line[n - 1] == '\n') n--;
  double secs = (double)(now - r->since_ns) / 1e9;
  fprintf(s->err, "%.*s (repeated %llu time%s in the last %g s)\n", (int)n, r->line,
          (unsigned long long)r->count, r->count == 1 ? "" : "s",
          secs < 0.1 ? 0.1 : (double)(long long)(secs * 10 + 0.5) / 10);
  r->count = 0;
}

void ctl_tick(ctl_session *s) {
  uint64_t now = rt_clock();
  int wrote = 0;
  s->repeats_check_ns = now + REPEAT_CHECK_NS;
  for (int i = 0; i < CTL_REPEAT_SLOTS; i++) {
    ctl_repeat *r = &s->repeats[i];
    if (!r->len || now - r->since_ns < REPEAT_WINDOW_NS) continue;
    if (!r->count) {
      /* A second without repeats: forget the line, so that its next
       * occurrence is printed at once again. */
      r->len = 0;
      continue;
    }
    repeat_report(s, r, now);
    r->since_ns = now;
    wrote = 1;
  }
  if (wrote && s->err) fflush(s->err);
}

void ctl_flush_repeats(ctl_session *s) {
  uint64_t now = rt_clock();
  for (int i = 0; i < CTL_REPEAT_SLOTS; i++) {
    repeat_report(s, &s->repeats[i], now);
    s->repeats[i].len = 0;
  }
  if (s->err) fflush(s->err);
}

/* 1 if the error line is a repeat to count rather than print; else it is
 * remembered (in a free slot or the least recent one) and 0. */
static int repeat_seen(ctl_session *s, const char *line, size_t n) {
  if (n == 0 || n > CTL_REPEAT_LINE) return 0;
  uint64_t now = rt_clock();
  if (now >= s->repeats_check_ns) ctl_tick(s);
  uint32_t h = line_hash(line, n);
  ctl_repeat *victim = &s->repeats[0];
  for (int i = 0; i < CTL_REPEAT_SLOTS; i++) {
    ctl_repeat *r = &s->repeats[i];
    if (r->len == n && r->hash == h && !memcmp(r->line, line, n)) {
      r->count++;
      r->last_ns = now;
      return 1;
    }
    if (victim->len && (!r->len || r->last_ns < victim->last_ns)) victim = r;
  }
  /* A full table forgets the line seen least recently: a hot one stays. */
  repeat_report(s, victim, now);
  victim->since_ns = victim->last_ns = now;
  victim->hash = h;
  victim->len = (uint32_t)n;
  memcpy(victim->line, line, n);
  return 0;
}

void ctl_sink(void *session, int stream, const void *data, size_t n) {
  ctl_session *s = session;
  FILE *f = stream == RT_OUT ? s->out : stream == RT_ERR ? s->err : s->bin;
  if (!f) return;
  if (stream == RT_ERR && repeat_seen(s, data, n)) return;
  fwrite(data, 1, n, f);
}

size_t ctl_drain(ctl_session *s, rt_space *sp, uint64_t upto) {
  /* Lost records are reported by the drain itself, once a second. */
  size_t n = rt_drain(sp, upto, ctl_sink, s);
  ctl_tick(s);
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

/* Period of a target-free periodic probe name, 0 if it is not one.  The
 * grammar (and its units) is probename.c's; which kinds run here is ours. */
static uint64_t local_period(const char *name) {
  uint64_t ns;
  if (strcmp(name, "VMX1Hz") && strcmp(name, "VMX10Hz") && strncmp(name, "USEC:", 5))
    return 0;
  return vpn_period(name, &ns, NULL, 0) == 1 ? ns : 0;
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

/* When -d ends (ns on rt_clock), or never. */
static uint64_t local_end(const ctl_session *s, uint64_t start) {
  return s->duration > 0 ? start + (uint64_t)(s->duration * 1e9) : UINT64_MAX;
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
  uint64_t start = rt_clock(), end = local_end(s, start);
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
    /* A tick due by the end of -d fires even if we wake after the end:
     * `-d 3` on a 1 Hz probe is 3 ticks, the last one at 3 s. */
    uint64_t due = now < end ? now : end;
    for (int i = 0; i < n && !(s->stop && *s->stop); i++) {
      if (lp[i].kind != LOCAL_PERIODIC || lp[i].next_ns > due) continue;
      local_fire(th, s->img, lp[i].probe);
      lp[i].next_ns = rt_timer_next(lp[i].next_ns, lp[i].period_ns, now);
    }
    ctl_drain(s, sp, UINT64_MAX);
    ctl_tick(s);
  }
  for (int i = 0; i < n; i++)
    if (lp[i].kind == LOCAL_UNLOAD) local_fire(th, s->img, lp[i].probe);
  ctl_drain(s, sp, UINT64_MAX);
  ctl_flush_repeats(s);
  free(mem);
  free(lp);
  return 0;
}
