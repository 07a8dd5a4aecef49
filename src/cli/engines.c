/*
 * engines.c - vprobe's calls into the engines of the domains.
 */
#include "cli/cli.h"
#include "guest/guest.h"
#include "vmx/vmx.h"

int cli_vmx_run(ctl_session *s) { return vmx_run(s); }
int cli_vmx_list(ctl_session *s, const char *glob) { return vmx_list(s, glob); }
int cli_vmx_reset(int pid, FILE *err) { return vmx_reset(pid, err); }
int cli_guest_run(ctl_session *s) { return guest_run(s); }
int cli_guest_list(ctl_session *s, const char *glob) {
  return guest_list(s, glob);
}
