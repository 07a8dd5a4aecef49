/*
 * timer.c - periodic probe deadlines, shared by every engine (the local one,
 * the agent's timer thread, the guest engine).  Pure arithmetic: the agent
 * runs it, so no libc.
 */
#include "rt.h"

/* A tick due at `next` fired at `now`: the next deadline.  The phase is
 * kept (deadlines stay start + k * period), and an engine that fell behind
 * (a slow probe, a stopped VM, a descheduled thread) skips the ticks it
 * missed instead of firing them in a burst. */
uint64_t rt_timer_next(uint64_t next, uint64_t period, uint64_t now) {
  if (period == 0) return UINT64_MAX;
  next += period;
  if (next <= now) next += ((now - next) / period + 1) * period;
  return next;
}
