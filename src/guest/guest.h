/*
 * guest.h - the GUEST and VMM engine: probes a QEMU virtual machine and the
 * OS inside it through QEMU's gdb stub (src/guest/gdb.h), with guest symbols
 * from a kallsyms file (src/sym/ksym.h).  This header is the whole interface
 * the controller uses.
 *
 * `-m VM` is a QEMU pid (its -gdb and -qmp endpoints are read from
 * /proc/PID/cmdline) or `gdb=ADDR[,qmp=PATH]` with ADDR `unix:/path` or
 * `host:port`.  Unload (Ctrl-C, -d, the end) removes every breakpoint and
 * watchpoint and lets the VM run on.
 */
#ifndef GUEST_H
#define GUEST_H

#include "ctl/ctl.h"

/* Load s->img into each VM of s->vms (-m, once per VM) and run until it
 * is time to unload.
 * Returns the exit status (0, or 1 after a one-line error). */
int guest_run(ctl_session *s);

/* Print the probe points of the VM (`vprobe -m VM -p [GLOB]`): the static
 * ones, then GUEST:sym for every guest function matching glob. */
int guest_list(ctl_session *s, const char *glob);

#endif
