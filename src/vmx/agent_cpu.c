/*
 * agent_cpu.c - overload control (agent.h): each probe's share of one CPU,
 * measured on the hit path in TSC cycles (per thread, per probe: no shared
 * cache line is written), summed here on the agent thread every scan, and
 * taken over the last second.  A probe over vmx_shared.cpu_limit_ppm is
 * disabled for the rest of the load: its fires are skipped, one line on
 * the error stream says which and why, and a site where every point is
 * disabled is unpatched (the code runs at full speed again).
 *
 * Runs on the agent thread only, outside the patch windows: libc is fine.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <x86intrin.h>

#include "vmx/agent.h"

const char *agent_cpu_plan(agent *ag) {
  int n = vp_image_nprobes(ag->img);
  ag->nprobes = n > 0 ? (uint32_t)n : 0;
  ag->off = calloc(ag->nprobes + 1, 1);
  ag->win = calloc(AGENT_CPU_WINDOW, sizeof *ag->win);
  if (!ag->off || !ag->win)
    return "out of memory";
  ag->nwin = 0;
  ag->tsc0 = __rdtsc(), ag->ns0 = rt_clock();
  return NULL;
}

/* Every probe's cycles so far, over all threads' blocks. */
static void sum_cycles(agent *ag, uint64_t *sum) {
  agent_tls *pool = agent_tls_pool();
  memset(sum, 0, sizeof(uint64_t) * AGENT_CPU_PROBES);
  for (uint32_t i = 0, n = agent_tls_used(); i < n && pool; i++)
    for (uint32_t p = 0; p < ag->nprobes && p < AGENT_CPU_PROBES; p++)
      sum[p] += __atomic_load_n(&pool[i].cyc[p], __ATOMIC_RELAXED);
}

/* The probe's name: as written, else its first point's. */
static const char *probe_name(agent *ag, uint32_t p) {
  const char *w = vp_image_probe(ag->img, (int)p);
  if (w && *w)
    return w;
  for (uint32_t i = 0; i < ag->npoints; i++)
    if (ag->pts[i].probe == p && ag->pts[i].name_off < ag->strs_len)
      return ag->strs + ag->pts[i].name_off;
  return "?";
}

/* Unpatch the sites whose points are all disabled (on this thread, the
 * one that patches; the same steps as an unload's). */
static void unpatch_idle(agent *ag, tramp_set *ts) {
  for (int i = 0; i < ag->nsites; i++) {
    agent_site *s = &ag->sites[i];
    if (!s->ts)
      continue;
    int busy = 0;
    for (uint32_t k = s->first; k < s->first + s->n && !busy; k++)
      busy = !ag->off[ag->fps[k].probe];
    for (uint32_t k = s->xfirst; k < s->xfirst + s->xn && !busy; k++)
      busy = !ag->off[ag->fps[k].probe];
    if (!busy)
      tramp_unpatch(ts, s->ts);
  }
}

static void disable(agent *ag, uint32_t p, double share) {
  __atomic_store_n(&ag->off[p], 1, __ATOMIC_RELEASE);
  char msg[400];
  int n = snprintf(msg, sizeof msg,
                   "vprobe: probe %s disabled: %.1f%% of a CPU over 1 s (limit %g%%, see "
                   "--cpu-limit)\n",
                   probe_name(ag, p), share * 100, ag->sh->cpu_limit_ppm / 10000.0);
  rt_thread *th = ag->me ? rt_thread_get(ag->sp, ag->me->tid) : NULL;
  if (th && n > 0)
    rt_emit(th, RT_ERR, msg, (size_t)n < sizeof msg ? (size_t)n : sizeof msg - 1);
}

void agent_cpu_scan(agent *ag, tramp_set *ts) {
  if (!ag->win || !ag->off)
    return;
  uint32_t slot = ag->nwin % AGENT_CPU_WINDOW;
  uint64_t now = rt_clock();
  sum_cycles(ag, ag->win[slot]);
  ag->win_ns[slot] = now;
  ag->nwin++;
  uint32_t limit = ag->sh->cpu_limit_ppm;
  if (!limit || ag->nwin <= AGENT_CPU_WINDOW || now <= ag->ns0)
    return;
  double hz = (double)(__rdtsc() - ag->tsc0) / ((double)(now - ag->ns0) / 1e9);
  uint32_t old = ag->nwin % AGENT_CPU_WINDOW; /* the oldest kept: a second ago */
  double secs = (double)(now - ag->win_ns[old]) / 1e9;
  if (hz <= 0 || secs <= 0)
    return;
  int any = 0;
  for (uint32_t p = 0; p < ag->nprobes && p < AGENT_CPU_PROBES; p++) {
    if (ag->off[p])
      continue;
    double share = (double)(ag->win[slot][p] - ag->win[old][p]) / hz / secs;
    if (share * 1e6 > limit)
      disable(ag, p, share), any = 1;
  }
  if (any)
    unpatch_idle(ag, ts);
}
