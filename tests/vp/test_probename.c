/* test_probename.c - the one probe-name grammar: pieces, domains, VM
 * prefixes, globs, legacy names, bad names and decimal periods. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "vp/probename.h"
#include "vp/vp.h"

/* NAME splits into VM, DOMAIN, KIND, LOCATION, DETAIL in domain mask DOM. */
static void split(const char *name, const char *vm, const char *domain, const char *kind,
                  const char *loc, const char *detail, int dom) {
  vpn_name n;
  char err[256] = "";
  if (vpn_parse(name, &n, err, sizeof err) != 0) fail_msg("%s: %s", name, err);
  assert_string_equal(n.vm, vm);
  assert_string_equal(n.domain, domain);
  assert_string_equal(n.kind, kind);
  assert_string_equal(n.location, loc);
  assert_string_equal(n.detail, detail);
  assert_int_equal(n.dom, dom);
  assert_int_equal(vp_probe_domain(name), dom);
}

/* NAME is refused with exactly the line WANT. */
static void refused(const char *name, const char *want) {
  vpn_name n;
  char err[256] = "";
  assert_int_equal(vpn_parse(name, &n, err, sizeof err), -1);
  assert_string_equal(err, want);
  assert_null(strchr(err, '\n'));
  assert_int_equal(vp_probe_domain(name), 0);
}

static uint64_t period(const char *name) {
  vpn_name n;
  char err[256] = "";
  if (vpn_parse(name, &n, err, sizeof err) != 0) fail_msg("%s: %s", name, err);
  return n.period_ns;
}

static void every_kind(void **state) {
  (void)state;
  split("GUEST:ENTER:do_sys_openat2", "", "GUEST", "ENTER", "do_sys_openat2", "", VP_DOM_GUEST);
  split("GUEST:EXIT:vfs_read", "", "GUEST", "EXIT", "vfs_read", "", VP_DOM_GUEST);
  split("GUEST:OFFSET:vfs_read:0x10", "", "GUEST", "OFFSET", "vfs_read", "0x10", VP_DOM_GUEST);
  split("GUEST:0xffffffff81000000", "", "GUEST", "ADDR", "0xffffffff81000000", "", VP_DOM_GUEST);
  split("GUEST:schedule", "", "GUEST", "ADDR", "schedule", "", VP_DOM_GUEST);
  split("GUEST_WRITE:0xb8000", "", "GUEST_WRITE", "ADDR", "0xb8000", "", VP_DOM_GUEST);
  split("GUEST_READ:jiffies", "", "GUEST_READ", "ADDR", "jiffies", "", VP_DOM_GUEST);
  split("GUEST_EXEC:0x1000", "", "GUEST_EXEC", "ADDR", "0x1000", "", VP_DOM_GUEST);
  split("VMX:ENTER:malloc", "", "VMX", "ENTER", "malloc", "", VP_DOM_VMX);
  split("VMX:EXIT:malloc", "", "VMX", "EXIT", "malloc", "", VP_DOM_VMX);
  split("VMX:OFFSET:main:0x4", "", "VMX", "OFFSET", "main", "0x4", VP_DOM_VMX);
  split("VMX:0x401000", "", "VMX", "ADDR", "0x401000", "", VP_DOM_VMX);
  split("VMX:PROFILE:1msec", "", "VMX", "PROFILE", "1msec", "", VP_DOM_VMX);
  split("VMM:TIMER:1msec", "", "VMM", "TIMER", "1msec", "", VP_DOM_VMM);
  split("VMM:TRACE:EV", "", "VMM", "TRACE", "EV", "", VP_DOM_VMM);
  split("VMK:TRACE:kvm:kvm_exit", "", "VMK", "TRACE", "kvm", "kvm_exit", VP_DOM_VMK);
  split("VMK:ENTER:vfs_read", "", "VMK", "ENTER", "vfs_read", "", VP_DOM_VMK);
}

static void legacy_names(void **state) {
  (void)state;
  split("VMXLoad", "", "", "VMXLoad", "", "", VP_DOM_LOCAL);
  split("VMXUnload", "", "", "VMXUnload", "", "", VP_DOM_LOCAL);
  split("VMX1Hz", "", "", "VMX1Hz", "", "", VP_DOM_LOCAL);
  split("VMX10Hz", "", "", "VMX10Hz", "", "", VP_DOM_LOCAL);
  split("USEC:999", "", "", "USEC", "999", "", VP_DOM_LOCAL | VP_DOM_VMM);
  split("VMM1Hz", "", "", "VMM1Hz", "", "", VP_DOM_VMM);
  split("VMMLoad", "", "", "VMMLoad", "", "", VP_DOM_VMM);
  split("Guest_PF", "", "", "Guest_PF", "", "", VP_DOM_VMM);
  split("Guest_IRQ", "", "", "Guest_IRQ", "", "", VP_DOM_VMM);
  split("Disk_IOStart", "", "", "Disk_IOStart", "", "", VP_DOM_VMM);
  split("HV_Exit", "", "", "HV_Exit", "", "", VP_DOM_VMM);
}

static void vm_prefixes(void **state) {
  (void)state;
  split("web:GUEST:ENTER:f", "web", "GUEST", "ENTER", "f", "", VP_DOM_GUEST);
  split("db_2:VMMUnload", "db_2", "", "VMMUnload", "", "", VP_DOM_VMM);
  split("web:USEC:100", "web", "", "USEC", "100", "", VP_DOM_VMM); /* a VM's: no timer */
  split("web:VMM:TIMER:2usec", "web", "VMM", "TIMER", "2usec", "", VP_DOM_VMM);
  assert_int_equal(vp_probe_vm_prefix("web:GUEST:ENTER:f"), 4);
  assert_int_equal(vp_probe_vm_prefix("GUEST:ENTER:f"), 0);
  /* a process or the host kernel has no VM */
  refused("web:VMX:ENTER:f", "web:VMX:ENTER:f: unknown probe");
  refused("web:VMXLoad", "web:VMXLoad: unknown probe");
  refused("a:b:GUEST:f", "a:b:GUEST:f: unknown probe");
  refused("1web:GUEST:f", "1web:GUEST:f: unknown probe");
}

static void globs_and_params(void **state) {
  (void)state;
  vpn_name n;
  assert_int_equal(vpn_parse("VMX:ENTER:str*", &n, NULL, 0), 0);
  assert_true(n.glob);
  assert_string_equal(n.location, "str*");
  assert_int_equal(vpn_parse("GUEST:ENTER:vfs_[rw]*", &n, NULL, 0), 0);
  assert_true(n.glob);
  assert_int_equal(vpn_parse("GUEST:ENTER:vfs_read", &n, NULL, 0), 0);
  assert_false(n.glob);
  assert_int_equal(vpn_parse("GUEST:ENTER:f(int a, char *b)", &n, NULL, 0), 0);
  assert_string_equal(n.location, "f");
  assert_string_equal(n.params, "(int a, char *b)");
  assert_false(n.glob); /* the * of a parameter is no glob */
}

static void bad_names(void **state) {
  (void)state;
  refused("NoSuchProbe", "NoSuchProbe: unknown probe");
  refused("GUEST:", "GUEST:: unknown probe");
  refused("VMX:", "VMX:: unknown probe");
  refused("FOO:ENTER:f", "FOO:ENTER:f: unknown probe");
  refused("", ": unknown probe");
  char big[VPN_MAX + 20];
  memset(big, 'a', sizeof big - 1);
  big[sizeof big - 1] = 0;
  memcpy(big, "VMX:ENTER:", 10);
  refused(big, "probe name: too long");
  const char *usec = ": bad period (want decimal N, 1 ns to 1 hour)";
  const char *unit = ": bad period (want decimal N[nsec|usec|msec|sec], 1 ns to 1 hour)";
  const char *bad_usec[] = {"USEC:", "USEC:0", "USEC:0x10", "USEC:-5", "USEC:10ms",
                            "USEC: 5", "USEC:3600000001", "USEC:99999999999999999999999"};
  const char *bad_unit[] = {"VMM:TIMER:5", "VMM:TIMER:msec", "VMM:TIMER:0msec",
                            "VMM:TIMER:5minutes", "VMM:TIMER:0x5msec", "VMM:TIMER:3601sec",
                            "VMX:PROFILE:abc", "VMX:PROFILE:0", "VMX:PROFILE:1e3"};
  char want[256];
  for (size_t i = 0; i < sizeof bad_usec / sizeof *bad_usec; i++) {
    snprintf(want, sizeof want, "%s%s", bad_usec[i], usec);
    refused(bad_usec[i], want);
  }
  for (size_t i = 0; i < sizeof bad_unit / sizeof *bad_unit; i++) {
    snprintf(want, sizeof want, "%s%s", bad_unit[i], unit);
    refused(bad_unit[i], want);
  }
}

/* One period string is one length of time in every domain: decimal, even
 * with leading zeros (USEC:0100 was 64 us in a process: octal). */
static void periods_agree(void **state) {
  (void)state;
  assert_int_equal(period("USEC:100"), 100000);
  assert_int_equal(period("USEC:0100"), 100000);
  assert_int_equal(period("web:USEC:0100"), 100000);
  assert_int_equal(period("VMM:TIMER:0100usec"), 100000);
  assert_int_equal(period("VMM:TIMER:100us"), 100000);
  assert_int_equal(period("VMX:PROFILE:0100usec"), 100000);
  assert_int_equal(period("VMM:TIMER:010msec"), 10000000);
  assert_int_equal(period("VMX:PROFILE:010msec"), 10000000);
  assert_int_equal(period("VMX:PROFILE:010"), 10000000); /* msec by default */
  assert_int_equal(period("VMX:PROFILE:10ms"), 10000000);
  assert_int_equal(period("VMM:TIMER:2sec"), 2000000000ull);
  assert_int_equal(period("VMM:TIMER:08nsec"), 8);
  assert_int_equal(period("VMM:TIMER:3600sec"), 3600000000000ull);
  assert_int_equal(period("USEC:3600000000"), 3600000000000ull);
  assert_int_equal(period("VMX1Hz"), 1000000000ull);
  assert_int_equal(period("VMM1Hz"), 1000000000ull);
  assert_int_equal(period("VMX10Hz"), 100000000ull);
  assert_int_equal(period("VMM10Hz"), 100000000ull);
  assert_int_equal(period("VMXLoad"), 0);
  assert_int_equal(period("GUEST:ENTER:f"), 0);
  uint64_t ns = 7;
  assert_int_equal(vpn_period("VMXLoad", &ns, NULL, 0), 0);
  assert_int_equal(ns, 7);
  assert_int_equal(vpn_period("USEC:08", &ns, NULL, 0), 1);
  assert_int_equal(ns, 8000);
  assert_int_equal(vpn_period("USEC:x", &ns, NULL, 0), -1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(every_kind),    cmocka_unit_test(legacy_names),
      cmocka_unit_test(vm_prefixes),   cmocka_unit_test(globs_and_params),
      cmocka_unit_test(bad_names),     cmocka_unit_test(periods_agree),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
