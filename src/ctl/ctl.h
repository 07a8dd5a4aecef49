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
  uint64_t reported_drops;     /* lost records already reported */
} ctl_session;

/* An rt_sink writing one record to the session's stream (ctx: session). */
void ctl_sink(void *session, int stream, const void *data, size_t n);
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
