/*
 * engines.c - vprobe's calls into the engines of the domains.
 */
#include "cli/cli.h"

/* Engines still being built are weak references, so the command line links
 * without them and says plainly what is missing. */
int vmx_run(ctl_session *s) __attribute__((weak));
int vmx_list(ctl_session *s, const char *glob) __attribute__((weak));
int vmx_reset(int pid, FILE *err) __attribute__((weak));
int guest_run(ctl_session *s) __attribute__((weak));
int guest_list(ctl_session *s, const char *glob) __attribute__((weak));

static int missing(const char *what) {
  fprintf(stderr, "vprobe: %s: not available in this build\n", what);
  return 1;
}

int cli_vmx_run(ctl_session *s) { return vmx_run ? vmx_run(s) : missing("VMX domain"); }
int cli_vmx_list(ctl_session *s, const char *glob) {
  return vmx_list ? vmx_list(s, glob) : missing("VMX domain");
}
int cli_vmx_reset(int pid, FILE *err) {
  return vmx_reset ? vmx_reset(pid, err) : missing("VMX domain");
}
int cli_guest_run(ctl_session *s) {
  return guest_run ? guest_run(s) : missing("GUEST domain");
}
int cli_guest_list(ctl_session *s, const char *glob) {
  return guest_list ? guest_list(s, glob) : missing("GUEST domain");
}
