/* probename.h - the one probe-name grammar: [VM:][DOMAIN:]KIND:LOCATION[:DETAIL].
 *
 * Every place that reads a probe name (verifier, engines, -p listings)
 * splits it here, so a name means one thing everywhere.  In particular a
 * period is decimal in every domain (USEC:0100 is 100 us, never octal).
 *
 *   web:GUEST:ENTER:f    vm "web", domain GUEST, kind ENTER, location f
 *   VMX:OFFSET:f:0x10    domain VMX, kind OFFSET, location f, detail 0x10
 *   GUEST:0xffff8000     domain GUEST, kind ADDR, location 0xffff8000
 *   GUEST_WRITE:jiffies  domain GUEST_WRITE, kind ADDR, location jiffies
 *   VMM:TIMER:5msec      domain VMM, kind TIMER, period 5000000 ns
 *   USEC:100, VMX1Hz, Guest_PF  legacy: domain "", kind = the name's head
 *
 * Periods: USEC:N is N microseconds; VMX1Hz/VMM1Hz 1 s; VMX10Hz/VMM10Hz
 * 100 ms; VMM:TIMER:N<unit> and VMX:PROFILE:N[<unit>] (no unit: msec) with
 * unit nsec, usec, msec, sec (or ns, us, ms, s).  N is decimal digits,
 * leading zeros allowed; the period lies in [1 ns, 1 hour]. */
#ifndef VP_PROBENAME_H
#define VP_PROBENAME_H

#include <stddef.h>
#include <stdint.h>

enum { VPN_MAX = 512 }; /* longest name vpn_parse splits */

typedef struct vpn_name {
  char buf[2 * VPN_MAX + 8]; /* the pieces below, NUL-terminated */
  const char *vm;        /* "web" of web:GUEST:..., "" if none */
  const char *domain;    /* GUEST, GUEST_READ, GUEST_WRITE, GUEST_EXEC, VMM,
                          * VMX, VMK; "" for a legacy name */
  const char *kind;      /* ENTER, EXIT, OFFSET, ADDR, TIMER, PROFILE, ...;
                          * a legacy name's head (USEC, VMX1Hz, Guest_PF) */
  const char *location;  /* function, glob, address, period; "" if none */
  const char *detail;    /* OFFSET's offset, "" if none */
  const char *params;    /* typed parameters "(int a)", "" if none */
  uint64_t period_ns;    /* periodic probes; 0 otherwise */
  int dom;               /* VP_DOM_* mask, as vp_probe_domain */
  int glob;              /* location holds * ? or [ */
} vpn_name;

/* Split NAME into N.  0 if it is a name some engine knows; -1 with a
 * one-line reason in ERR ("bad period", "unknown probe") otherwise. */
int vpn_parse(const char *name, vpn_name *n, char *err, size_t cap);

/* Period of a periodic probe name (without the VM prefix): 1 and *NS set,
 * 0 if NAME is not a periodic probe, -1 with ERR if its period is
 * malformed.  ERR may be NULL. */
int vpn_period(const char *name, uint64_t *ns, char *err, size_t cap);

/* The fixed (static) probe names -p lists for a target of domain DOM:
 * VP_DOM_VMX a process, VP_DOM_GUEST or VP_DOM_VMM a VM, anything else no
 * target (VP_DOM_LOCAL).  NULL-terminated; a period is written N. */
const char *const *vpn_fixed(int dom);

/* Whether -p GLOB selects the listed probe NAME: GLOB matches NAME whole
 * (VMX:ENTER:libc.mall*, VMX*Hz); or GLOB has no DOMAIN: prefix and matches
 * NAME's location (libc.mall*) or the function after the module (mall*);
 * or GLOB has one and NAME is of its domain and kind (ENTER and ADDR alike:
 * GUEST:ENTER:f selects GUEST:f) with a location GLOB's matches.  A NULL or
 * empty GLOB selects every name. */
int vpn_glob_match(const char *glob, const char *name);

#endif
