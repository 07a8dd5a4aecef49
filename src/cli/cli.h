/*
 * cli.h - the pieces of vprobe's command line that are more than option
 * parsing: reading sources, the programs -t and -a generate, the site
 * policy, the guest preload, and the calls into the engines.
 */
#ifndef CLI_H
#define CLI_H

#include <stdio.h>
#include <sys/types.h>

#include "ctl/ctl.h"

/* A growing NUL-terminated text buffer. */
typedef struct cli_buf {
  char *data;
  size_t len, cap;
} cli_buf;
void cli_buf_add(cli_buf *b, const char *text);

/* Whole file or stream as malloc'd text; NULL (err set) on failure. */
char *cli_read_file(const char *path, char *err, size_t errcap);
char *cli_read_stream(FILE *f);

/* -t [MOD.]FUN[:NARGS]: the VP program that traces calls of FUN. */
char *cli_trace_vp(const char *spec, char *err, size_t errcap);
/* -a: vptext plus a probe (named tick, e.g. VMX1Hz) that logs and clears
 * every aggregate each second. */
char *cli_aggr_reporting(const char *vptext, const char *tick);

/* The site policy for users other than root: vprobe.allow in
 * /etc/vprobe.conf (key and value case-insensitive; TRUE/FALSE, yes/no, 1/0,
 * quoted or not; # comments; the last setting wins).  No file: allowed; a
 * file that cannot be read or a value that cannot be understood: refused.
 * $VPROBE_CONF names a further policy file that can only narrow it (tests
 * use it).  -1 if this user may go on, else the exit status (after one
 * line on stderr). */
#define CLI_SITE_POLICY "/etc/vprobe.conf"
int cli_check_allowed(void);

/* Open an output file (-o, -e, -b, emmett -o) for writing from the start,
 * the way a program run by root in a shared directory must: no symbolic
 * link followed as the last component (unless root or we own both it and
 * its directory), no existing file of another user written into in a
 * sticky shared directory, a new file created exclusively with mode.  NULL
 * with "PATH: why" in err. */
FILE *cli_open_out(const char *path, mode_t mode, char *err, size_t cap);

/* -m [NAME:]VM, in order; then, once every option is read, -s [NAME:]FILE
 * (a NAME: matching a VM gives that VM its symbols, a plain FILE every VM
 * without its own).  -1 with one line in err. */
int cli_add_vm(ctl_session *s, const char *arg, char *err, size_t cap);
int cli_bind_syms(ctl_session *s, const char *const *syms, int nsyms, char *err,
                  size_t cap);

/* The Linux guest preload (curprocname/curpid) applies when a VM is probed
 * with Linux symbols; writes its path and returns 1 if so. */
int cli_guest_preload(const char *vm, const char *syms, char *path,
                      size_t cap);

/* Engines. */
int cli_vmx_run(ctl_session *s);
int cli_vmx_list(ctl_session *s, const char *glob);
int cli_vmx_reset(int pid, FILE *err);
int cli_guest_run(ctl_session *s);
int cli_guest_list(ctl_session *s, const char *glob);

#endif
