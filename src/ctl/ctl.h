/*
 * ctl.h - the controller: what vprobe hands an engine, and where the
 * records an engine drains end up.  Engines (src/vmx, src/guest, the local
 * engine here) take a ctl_session and run until it is time to unload.
 */
#ifndef CTL_H
#define CTL_H

#include <signal.h>
#include <stdio.h>

#include "rt/rt.h"
#include "vp/vp.h"

/* One -m [NAME:]VM: a QEMU VM, its name in probe prefixes (NAME:GUEST:...)
 * and its guest symbols (-s [NAME:]FILE). */
#define CTL_MAX_VMS 8
typedef struct ctl_vm {
  const char *name;            /* NULL for a lone unnamed -m */
  const char *spec;            /* QEMU pid, or gdb=ADDR[,qmp=PATH] */
  const char *syms;            /* kallsyms file, NULL if none */
} ctl_vm;

/* A recent distinct line of the error stream and how often it came again:
 * a probe failing on every hit of a hot function must not turn into
 * hundreds of thousands of identical lines a second. */
#define CTL_REPEAT_SLOTS 16   /* distinct lines tracked at once */
#define CTL_REPEAT_LINE 512   /* longer lines are always printed */
typedef struct ctl_repeat {
  uint64_t since_ns;          /* start of the current counting window */
  uint64_t last_ns;           /* last seen (the least recent is replaced) */
  uint64_t count;             /* repeats in it, not yet reported */
  uint32_t hash, len;         /* len 0: a free slot */
  char line[CTL_REPEAT_LINE];
} ctl_repeat;

typedef struct ctl_session {
  const vp_image *img;
  const vp_limits *lim;
  FILE *out, *err, *bin;       /* -o, -e, -b (bin NULL: binary records dropped) */
  double duration;             /* -d seconds; 0: until Ctrl-C, target exit, or
                                  nothing left that can fire */
  int destructive;             /* --destructive */
  uint32_t cpu_limit_ppm;      /* --cpu-limit: a probe's share of one CPU
                                  (millionths), 0 for no limit */
  volatile sig_atomic_t *stop; /* set on SIGINT/SIGTERM */
  /* targets */
  int pid;                     /* -x PID, 0 if none */
  char *const *cmd;            /* -- CMD ARGS, NULL if none */
  int nvms;                    /* -m given this many times */
  ctl_vm vms[CTL_MAX_VMS];
  const char *list_glob;       /* -p [GLOB]: list probe points instead of running */
  int listing;                 /* -p given */
  ctl_repeat repeats[CTL_REPEAT_SLOTS]; /* ctl_sink's, zeroed at start */
  uint64_t repeats_check_ns;   /* when ctl_sink next looks for ended windows */
} ctl_session;

/* An rt_sink writing one record to the session's stream (ctx: session).
 * An error record identical to a recent one is counted instead: the first
 * is written at once, the repeats as one line ("... (repeated N times in
 * the last 1 s)") when its second is over.  ctl_sink, ctl_tick and
 * ctl_flush_repeats take one caller at a time (drains are serialized). */
void ctl_sink(void *session, int stream, const void *data, size_t n);
/* Report the repeats of every line whose second is over, and forget lines
 * that stopped: call it at least once a second, errors or not (ctl_sink
 * does while records arrive).  Cheap; flushes the error stream if it wrote. */
void ctl_tick(ctl_session *s);
/* Report every repeat still counted (at unload, however the run ends). */
void ctl_flush_repeats(ctl_session *s);
/* Drain every record stamped before upto from sp to the streams, flushing
 * them; reports records lost to full rings on the error stream. */
size_t ctl_drain(ctl_session *s, rt_space *sp, uint64_t upto);
/* Seconds left before -d expires (a large number without -d); <= 0: stop. */
double ctl_time_left(const ctl_session *s, uint64_t start_ns);
/* True once Ctrl-C, SIGTERM or -d asks the engine to unload. */
int ctl_stopping(const ctl_session *s, uint64_t start_ns);

/* The local engine: target-free probes (VMXLoad, VMXUnload, VMX1Hz,
 * VMX10Hz, USEC:N) run in this process, on one thread. Returns the exit
 * status. */
int ctl_local_run(ctl_session *s);

#endif
