/* qtrace: QEMU trace events as VP static probes (VMM domain).
 *
 * QEMU here is built with the "log" trace backend.  Events are switched on
 * at run time through QMP's human-monitor-command: "logfile FIFO", then
 * "log trace:EV1,trace:EV2", and off with "log none".  The log goes into a
 * FIFO this module reads, so nothing grows on disk; lines are parsed into
 * static probe fires with the reference's argument lists (Table 3-3) as far
 * as QEMU's events carry them:
 *
 *   In, Out          memory_region_ops_read/_write on I/O-space regions:
 *                    ARG0 port, ARG1 size in bytes, ARG2 value, ARG3 rep
 *                    count (always 1: QEMU splits rep ins/outs)
 *   Disk_IOStart     virtio_blk_handle_read/_write
 *   Disk_IOFinish    virtio_blk_req_complete:
 *                    ARG0 adapter type (QTRACE_ADAPTER_VIRTIO), ARG1
 *                    controller id (0, 1.. in order of first use), ARG2
 *                    drive id (0), ARG3 1 read / 0 write, ARG4 I/O id
 *                    (QEMU's request pointer, unique while in flight),
 *                    ARG5 start sector, ARG6 number of sectors, ARG7
 *                    scatter/gather entries (0: unknown);
 *                    Disk_IOFinish adds ARG8 = the virtio status (0 ok)
 *   Guest_TripleFault  the QMP RESET (or SHUTDOWN, with -no-reboot) event
 *                    whose reason is "guest-reset"
 *   VMM:TRACE:EVENT  any QEMU trace event by name: ARG0.. are the numbers
 *                    on its log line, in order
 *
 * Fires arrive after the fact, from the log: no vCPU is stopped for them, so
 * a probe can use ARG0..9, PROBENAME, VCPUID (the event's cpu where it names
 * one), TSC and time, strings, aggregates and globals, but no guest
 * registers or guest memory.  QEMU has one log per process: one qtrace per
 * VM at a time.
 */
#ifndef VPROBE_GUEST_QTRACE_H
#define VPROBE_GUEST_QTRACE_H

#include <stddef.h>
#include <stdint.h>

#include "guest/qmp.h"

enum { QTRACE_ADAPTER_IDE = 1, QTRACE_ADAPTER_VIRTIO = 4 };

typedef struct qtrace qtrace;

typedef struct qtrace_event {
  char probe[64];    /* the static probe name as the script wrote it */
  int vcpu;          /* vCPU index the event names, -1 if none */
  int nargs;
  uint64_t args[10];
} qtrace_event;

/* 1 if NAME is a static probe this module delivers (In, Out, Disk_IOStart,
 * Disk_IOFinish, Guest_TripleFault, VMM:TRACE:EVENT, with or without a
 * "VMM:" prefix); 2 for HV_Exit/HV_Resume (known, but they need KVM);
 * 0 otherwise. */
int qtrace_known(const char *name);

/* Turns on the QEMU events behind PROBES.  NULL with a reason in err when a
 * probe is unknown or QEMU refuses. */
qtrace *qtrace_start(qmp *q, const char *const *probes, int n, char *err, size_t cap);

/* Waits up to timeout_ms (-1 forever) for the next fire: 1 with ev filled,
 * 0 on timeout, -1 on error. */
int qtrace_next(qtrace *t, qtrace_event *ev, int timeout_ms);

/* A descriptor that is readable while fires are waiting (to poll with
 * others); qtrace_next resets it. */
int qtrace_fd(qtrace *t);

/* Fires lost because the caller did not take them fast enough. */
uint64_t qtrace_dropped(qtrace *t);

/* Turns QEMU's logging off and frees everything. */
void qtrace_stop(qtrace *t);

#endif
