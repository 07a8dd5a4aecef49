/* probename.c - split probe names by the one grammar (see probename.h). */
#include "vp/probename.h"

#include <ctype.h>
#include <fnmatch.h>
#include <stdio.h>
#include <string.h>

#include "vp/vp.h"

#define HOUR_NS 3600000000000ull

/* Legacy static probes of the seeds (Table 3-3) fire in the VMM. */
static const char *const vmm_static[] = {
  "VMM1Hz", "VMM10Hz", "VMMLoad", "VMMUnload", "Guest_DE", "Guest_DB",
  "Guest_NMI", "Guest_BP", "Guest_OF", "Guest_BR", "Guest_UD", "Guest_NM",
  "Guest_DF", "Guest_TS", "Guest_RESERVED_FAULT", "Guest_NP", "Guest_SS",
  "Guest_GP", "Guest_PF", "Guest_MF", "Guest_AC", "Guest_MC", "Guest_XF",
  "Guest_CR3Write", "Guest_IRQ", "Guest_TripleFault", "HV_Exit",
  "HV_Resume", "HV_NPF", "In", "Out", "SMM_SMIPre", "SMM_SMIPost",
  "SMM_RSMPre", "SMM_RSMPost", "Disk_IOStart", "Disk_IOFinish", NULL};

static const char *const domains[] = {"GUEST_READ", "GUEST_WRITE", "GUEST_EXEC",
                                      "GUEST", "VMM", "VMX", "VMK", NULL};

/* "N<unit>" with N decimal (leading zeros are decimal too, never octal)
 * times the unit; DEFUNIT (ns per unit) when there is no unit, none
 * allowed if it is 0.  -1 unless the result lies in [1 ns, 1 hour]. */
static int period_value(const char *s, uint64_t defunit, uint64_t *ns) {
  static const struct { const char *name; uint64_t ns; } units[] = {
    {"nsec", 1}, {"ns", 1}, {"usec", 1000}, {"us", 1000},
    {"msec", 1000000}, {"ms", 1000000}, {"sec", 1000000000}, {"s", 1000000000}};
  uint64_t v = 0, unit = defunit;
  const char *d = s;
  for (; isdigit((unsigned char)*d); d++)
    if ((v = v * 10 + (uint64_t)(*d - '0')) > HOUR_NS) return -1;
  if (d == s || !v) return -1;
  if (*d) {
    unit = 0;
    for (size_t i = 0; i < sizeof units / sizeof *units; i++)
      if (!strcmp(d, units[i].name)) unit = units[i].ns;
  }
  if (!unit || v > HOUR_NS / unit) return -1;
  *ns = v * unit;
  return 0;
}

int vpn_period(const char *name, uint64_t *ns, char *err, size_t cap) {
  const char *num = NULL;
  uint64_t defunit = 0;
  if (!strcmp(name, "VMX1Hz") || !strcmp(name, "VMM1Hz")) return *ns = 1000000000ull, 1;
  if (!strcmp(name, "VMX10Hz") || !strcmp(name, "VMM10Hz")) return *ns = 100000000ull, 1;
  if (!strncmp(name, "USEC:", 5)) num = name + 5, defunit = 1000;
  else if (!strncmp(name, "VMM:TIMER:", 10)) num = name + 10;
  else if (!strncmp(name, "VMX:PROFILE:", 12)) num = name + 12, defunit = 1000000;
  if (!num) return 0;
  /* USEC:N takes no unit: its unit is in its name */
  int bad = num == name + 5 ? !*num || strspn(num, "0123456789") != strlen(num) : 0;
  if (bad || period_value(num, defunit, ns) < 0) {
    if (err && cap) snprintf(err, cap, "%s: bad period (want decimal N%s, 1 ns to 1 hour)",
                             name, num == name + 5 ? "" : "[nsec|usec|msec|sec]");
    return -1;
  }
  return 1;
}

static int fail(char *err, size_t cap, const char *name, const char *why) {
  if (err && cap) snprintf(err, cap, "%s: %s", name, why);
  return -1;
}

/* A legacy name (no DOMAIN:): its domain, or 0. */
static int legacy_domain(const char *s) {
  if (!strcmp(s, "VMXLoad") || !strcmp(s, "VMXUnload") || !strcmp(s, "VMX1Hz") ||
      !strcmp(s, "VMX10Hz"))
    return VP_DOM_LOCAL;
  /* target-free, and in the seeds a VMM sampling probe: with a VM it
   * samples the vCPUs (VCPUID, registers), without one it is a timer */
  if (!strncmp(s, "USEC:", 5)) return VP_DOM_LOCAL | VP_DOM_VMM;
  for (int i = 0; vmm_static[i]; i++)
    if (!strcmp(s, vmm_static[i])) return VP_DOM_VMM;
  return 0;
}

static int domain_bit(const char *d) {
  if (!strcmp(d, "VMX")) return VP_DOM_VMX;
  if (!strcmp(d, "VMK")) return VP_DOM_VMK;
  if (!strcmp(d, "VMM")) return VP_DOM_VMM;
  return VP_DOM_GUEST;
}

/* S after DOMAIN: into kind, location and detail.  An address or a
 * watched symbol has the kind ADDR. */
static void split_rest(vpn_name *n, char *s) {
  char *c;
  if (!strncmp(n->domain, "GUEST_", 6) || isdigit((unsigned char)*s) || !strchr(s, ':')) {
    n->kind = "ADDR", n->location = s;
    return;
  }
  n->kind = s;
  c = strchr(s, ':');
  *c = 0, n->location = c + 1;
  /* OFFSET's offset is the last piece; TRACE's event is the rest */
  if ((c = !strcmp(n->kind, "OFFSET") ? strrchr(c + 1, ':') : strchr(c + 1, ':')))
    *c = 0, n->detail = c + 1;
}

int vpn_parse(const char *name, vpn_name *n, char *err, size_t cap) {
  size_t len = strlen(name);
  memset(n, 0, sizeof *n);
  n->vm = n->domain = n->kind = n->location = n->detail = n->params = "";
  if (len > VPN_MAX) return fail(err, cap, "probe name", "too long");
  char *s = n->buf;
  memcpy(s, name, len + 1);
  char *par = strchr(s, '(');
  if (par) { /* typed parameters: GUEST:ENTER:f(int a) */
    n->params = memcpy(s + len + 1, par, strlen(par) + 1);
    *par = 0;
  }
  size_t vm = vp_vm_name_len(s);
  if (vm) s[vm] = 0, n->vm = s, s += vm + 1;
  const char *plain = s; /* the name without its VM */
  int rc = vpn_period(plain, &n->period_ns, err, cap);
  if (rc < 0) return -1;
  if ((n->dom = legacy_domain(s))) {
    n->kind = s;
    char *c = strchr(s, ':');
    if (c) *c = 0, n->location = c + 1;
  } else {
    for (int i = 0; domains[i] && !n->dom; i++) {
      size_t k = strlen(domains[i]);
      if (!strncmp(s, domains[i], k) && s[k] == ':' && s[k + 1]) {
        s[k] = 0, n->domain = s, n->dom = domain_bit(s);
        split_rest(n, s + k + 1);
      }
    }
  }
  /* NAME:probe: the probe in the VM named NAME (vprobe -m NAME:VM) */
  if (*n->vm) n->dom &= VP_DOM_GUEST | VP_DOM_VMM;
  if (!n->dom) return fail(err, cap, name, "unknown probe");
  n->glob = strpbrk(n->location, "*?[") != NULL;
  return 0;
}

/* ---- names in the VP interface (vp.h) ---- */

size_t vp_vm_name_len(const char *p) {
  static const char *const domains[] = {"GUEST", "GUEST_READ", "GUEST_WRITE", "GUEST_EXEC",
                                        "VMM", "VMX", "VMK", "USEC"};
  size_t n = 0;
  while (isalnum((unsigned char)p[n]) || p[n] == '_') n++;
  if (!n || p[n] != ':' || isdigit((unsigned char)p[0])) return 0;
  for (size_t i = 0; i < sizeof domains / sizeof *domains; i++)
    if (strlen(domains[i]) == n && !strncmp(p, domains[i], n)) return 0;
  return n;
}

/* NAME: of a probe of one VM (web:GUEST:..., web:VMMUnload): its length
 * with the colon, or 0. */
static size_t vm_prefix(const char *p) {
  size_t n = vp_vm_name_len(p);
  return n ? n + 1 : 0;
}

size_t vp_probe_vm_prefix(const char *p) {
  size_t n = vm_prefix(p);
  return n && (vp_probe_domain(p + n) & (VP_DOM_GUEST | VP_DOM_VMM)) ? n : 0;
}

/* The grammar is probename.c's; a name it refuses is in no domain. */
int vp_probe_domain(const char *p) {
  vpn_name n;
  return vpn_parse(p, &n, NULL, 0) == 0 ? n.dom : 0;
}

/* ---- -p listings ---- */

const char *const *vpn_fixed(int dom) {
  static const char *const vmx[] = {"VMXLoad", "VMXUnload", "VMX1Hz", "VMX10Hz", "USEC:N",
                                    "VMX:PROFILE:Nmsec", NULL};
  /* the Guest_ faults in vector order, as the guest engine serves them */
  static const char *const vm[] = {
    "VMMLoad", "VMMUnload", "VMM1Hz", "VMM10Hz", "USEC:N", "VMM:TIMER:Nmsec", "Guest_IRQ",
    "Guest_DE", "Guest_DB", "Guest_NMI", "Guest_BP", "Guest_OF", "Guest_BR", "Guest_UD",
    "Guest_NM", "Guest_DF", "Guest_RESERVED_FAULT", "Guest_TS", "Guest_NP", "Guest_SS",
    "Guest_GP", "Guest_PF", "Guest_MF", "Guest_AC", "Guest_MC", "Guest_XF", "Guest_CP",
    "GUEST_READ:ADDR", "GUEST_WRITE:ADDR", NULL};
  static const char *const local[] = {"VMXLoad", "VMXUnload", "VMX1Hz", "VMX10Hz", "USEC:N",
                                      NULL};
  if (dom & VP_DOM_VMX) return vmx;
  if (dom & (VP_DOM_GUEST | VP_DOM_VMM)) return vm;
  return local;
}

/* GLOB starts with [VM:]DOMAIN: */
static int has_domain(const char *glob) {
  glob += vm_prefix(glob);
  for (int i = 0; domains[i]; i++) {
    size_t k = strlen(domains[i]);
    if (!strncmp(glob, domains[i], k) && glob[k] == ':') return 1;
  }
  return 0;
}

static int is_entry(const char *kind) { return !strcmp(kind, "ENTER") || !strcmp(kind, "ADDR"); }

int vpn_glob_match(const char *glob, const char *name) {
  if (!glob || !*glob || fnmatch(glob, name, 0) == 0) return 1;
  vpn_name n, g;
  /* names with no location (Guest_PF) or a placeholder period (USEC:N)
   * match whole only */
  if (vpn_parse(name, &n, NULL, 0) < 0 || !*n.domain) return 0;
  if (!has_domain(glob)) {
    /* VMX locations are MODULE.FUNCTION */
    const char *fn = n.dom & VP_DOM_VMX ? strchr(n.location, '.') : NULL;
    return fnmatch(glob, n.location, 0) == 0 || (fn && fnmatch(glob, fn + 1, 0) == 0);
  }
  if (vpn_parse(glob, &g, NULL, 0) < 0 || strcmp(g.domain, n.domain)) return 0;
  if (strcmp(g.kind, n.kind) && !(is_entry(g.kind) && is_entry(n.kind))) return 0;
  return fnmatch(g.location, n.location, 0) == 0;
}
