/*
 * guest.c - the GUEST and VMM engine (see guest.h): connect to the VM's gdb
 * stub, turn probe names into breakpoints, watchpoints and timers, and run
 * the probes each time the VM stops.
 *
 * QEMU's stub is all-stop: a breakpoint stops every vCPU, we run the probe
 * with the registers and memory of the vCPU that hit it, then resume.  What
 * QEMU 7.2 (TCG) does, measured on the test VM:
 *   - a vCPU resuming at a breakpoint's address hits it again (breakpoints
 *     are checked as each translated block starts; single-stepping is the
 *     exception), so a hit must be passed;
 *   - every breakpoint stop flushes the whole translation cache (watchpoint
 *     stops and 0x03 interrupts do not), and so does turning single-step
 *     on or off: the guest then retranslates its hot code.  That, not the
 *     packets, is most of what a hit costs, so a hit is passed with as few
 *     breakpoint stops as possible: the 5-byte NOP at a kernel function's
 *     entry (or any NOP) is passed by continuing the vCPU past it ('c ADDR',
 *     no extra packet), a `push $imm` by doing it for the vCPU; other
 *     instructions by a hop (guest_hop: the breakpoint moves to the
 *     instruction's successors and back); a single step when neither works.
 *
 * Sampling probes (USEC:N ...) interrupt the VM (0x03) and run on every vCPU;
 * QEMU trace-event probes (In, Out, Disk_IO..., src/guest/qtrace.h) arrive
 * while the VM runs and see no guest state.
 */
#include "guest/guest.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "guest/guest_dec.h"
#include "guest/guest_vm.h"
#include "guest/qmp.h"
#include "guest/qtrace.h"
#include "vp/probename.h"

/* ---- finding the VM ---- */

/* The value of option opt (-gdb, -qmp) in a QEMU command line, rewritten
 * as an address gdb_open takes: "unix:/p" or "host:port". */
static int cmdline_opt(const char *args, size_t len, const char *opt, char *out, size_t cap) {
  for (size_t i = 0; i < len; i += strlen(args + i) + 1) {
    const char *a = args + i;
    if (a[0] == '-' && a[1] == '-') a++; /* --gdb */
    if (strcmp(a, opt) || i + strlen(args + i) + 1 >= len) continue;
    const char *v = args + i + strlen(args + i) + 1;
    if (!strncmp(v, "unix:", 5)) {
      snprintf(out, cap, "%s", v);
      out[strcspn(out, ",")] = 0;
    } else if (!strncmp(v, "tcp:", 4)) {
      snprintf(out, cap, "%s", v + 4);
      out[strcspn(out, ",")] = 0;
    } else {
      return -1;
    }
    return 0;
  }
  if (!strcmp(opt, "-gdb")) { /* -s is -gdb tcp::1234 */
    for (size_t i = 0; i < len; i += strlen(args + i) + 1)
      if (!strcmp(args + i, "-s")) {
        snprintf(out, cap, ":1234");
        return 0;
      }
  }
  return -1;
}

/* -m VM: a pid, or gdb=ADDR[,qmp=PATH]. */
static int parse_vm(const char *vm, char *gdb, char *qmp, size_t cap, char *err, size_t errcap) {
  qmp[0] = 0;
  if (!strncmp(vm, "gdb=", 4)) {
    snprintf(gdb, cap, "%s", vm + 4);
    char *q = strstr(gdb, ",qmp=");
    if (q) {
      snprintf(qmp, cap, "%s", q + 5);
      *q = 0;
    }
    return 0;
  }
  char *end;
  long pid = strtol(vm, &end, 10);
  if (*end || pid <= 0) {
    snprintf(err, errcap, "-m %s: want a QEMU pid or gdb=ADDR[,qmp=PATH]", vm);
    return -1;
  }
  char path[64], args[8192];
  snprintf(path, sizeof path, "/proc/%ld/cmdline", pid);
  int fd = open(path, O_RDONLY);
  ssize_t n = fd < 0 ? -1 : read(fd, args, sizeof args - 1);
  if (fd >= 0) close(fd);
  if (n <= 0) {
    snprintf(err, errcap, "-m %ld: no such process", pid);
    return -1;
  }
  args[n] = 0;
  if (cmdline_opt(args, (size_t)n, "-gdb", gdb, cap) < 0) {
    snprintf(err, errcap, "-m %ld: the process has no -gdb unix:PATH or tcp::PORT option", pid);
    return -1;
  }
  if (cmdline_opt(args, (size_t)n, "-qmp", qmp, cap) < 0) qmp[0] = 0;
  return 0;
}

/* ---- the guardian ----
 *
 * QEMU 7.2 keeps a closed connection's breakpoints and leaves the VM paused
 * at the next stop (checked: kill -9 of the engine, then QMP query-status
 * says "paused" for good).  So a small child process, forked before we
 * connect (it must not hold the socket), waits on a pipe: on EOF without
 * the "done" byte (the engine died), it connects and detaches, which makes
 * QEMU remove every breakpoint and watchpoint and resume the VM. */
static int guardian_start(const char *gdbaddr, int *wfd) {
  int p[2];
  if (pipe(p) < 0) return -1;
  pid_t pid = fork();
  if (pid < 0) {
    close(p[0]);
    close(p[1]);
    return -1;
  }
  if (pid == 0) {
    signal(SIGINT, SIG_IGN); /* Ctrl-C is the engine's to handle */
    signal(SIGTERM, SIG_IGN);
    signal(SIGHUP, SIG_IGN);
    close(p[1]);
    char c = 0;
    ssize_t n;
    while ((n = read(p[0], &c, 1)) < 0 && errno == EINTR) {
    }
    if (n == 1 && c == 'd') _exit(0);
    char err[256];
    for (int tries = 0; tries < 50; tries++) {
      gdb_conn *g = gdb_open(gdbaddr, err, sizeof err);
      if (g) {
        /* QEMU may report the stop our connecting made before it answers */
        char reply[64];
        gdb_stop st;
        if (gdb_send(g, "D", 1) == 0)
          while (gdb_recv(g, reply, sizeof reply, 2000) >= 0 && gdb_parse_stop(reply, &st) == 0) {
          }
        gdb_close(g);
        _exit(0);
      }
      usleep(100000);
    }
    _exit(1);
  }
  close(p[0]);
  fcntl(p[1], F_SETFD, FD_CLOEXEC);
  *wfd = p[1];
  return pid;
}

static void guardian_stop(int pid, int wfd) {
  if (pid <= 0) return;
  if (write(wfd, "d", 1) != 1) {
  }
  close(wfd);
  waitpid(pid, NULL, 0);
}

/* ---- breakpoints ---- */

static guest_bp *bp_find(guest_vm *vm, uint64_t addr) {
  for (int i = 0; i < vm->nbps; i++)
    if (vm->bps[i].addr == addr) return &vm->bps[i];
  return NULL;
}

static int bp_ref(guest_vm *vm, uint64_t addr) {
  guest_bp *b = bp_find(vm, addr);
  if (b) {
    b->refs++;
    return 0;
  }
  if (vm->nbps == vm->capbps) {
    int cap = vm->capbps ? 2 * vm->capbps : 64;
    guest_bp *nb = realloc(vm->bps, (size_t)cap * sizeof *nb);
    if (!nb) return -1;
    vm->bps = nb;
    vm->capbps = cap;
  }
  /* Software breakpoints: QEMU keeps them in its own list (no guest memory
   * is patched), so the guest never sees them and there is no limit. */
  if (gdb_breakpoint(vm->g, 1, GDB_BP_SW, addr, 1) < 0) return -1;
  vm->bps[vm->nbps++] = (guest_bp){addr, 1};
  return 0;
}

static void bp_unref(guest_vm *vm, uint64_t addr) {
  guest_bp *b = bp_find(vm, addr);
  if (!b || --b->refs > 0) return;
  gdb_breakpoint(vm->g, 0, GDB_BP_SW, addr, 1);
  *b = vm->bps[--vm->nbps];
}

/* ---- probe names ---- */

typedef struct plan {
  guest_vm *vm;
  int probe;
  const char *vmpfx;  /* "NAME:" of a probe bound to this VM, "" */
  int kind, args;
  const char *prefix; /* "GUEST:ENTER:" ... for PROBENAME of globs */
  int glob;
  uint64_t off;
  int offset_skipped; /* glob functions without an instruction at off */
  char err[256];
} plan;

static int add_site(guest_vm *vm, const guest_site *site) {
  if (vm->nsites == GUEST_MAX_SITES) return -1;
  vm->sites[vm->nsites++] = *site;
  return 0;
}

/* GUEST:OFFSET:f:N must name an instruction of f: below the next symbol,
 * and where one starts when f is decoded from its entry (a breakpoint
 * inside an instruction would never fire).  0 ok, else p->err says why. */
static int check_offset(plan *p, const ksym *k) {
  uint64_t in_off;
  const ksym *in = ksym_by_addr(p->vm->syms, k->addr + p->off, &in_off);
  if (!in || in->addr != k->addr || p->off > 65536) {
    snprintf(p->err, sizeof p->err, "+%#llx is past the end of %s", (unsigned long long)p->off,
             k->name);
    return -1;
  }
  size_t n = (size_t)p->off + 15, start = 0;
  uint8_t *code = malloc(n);
  int r = code && gdb_read_mem(p->vm->g, k->addr, code, n) == 0
              ? x86dec_insn_at(code, n, (size_t)p->off, &start) : -2;
  free(code);
  if (r == 1)
    snprintf(p->err, sizeof p->err, "+%#llx is inside the instruction at %s+0x%zx",
             (unsigned long long)p->off, k->name, start);
  else if (r == -1)
    snprintf(p->err, sizeof p->err, "the code of %s does not decode at +0x%zx", k->name, start);
  else if (r == -2)
    snprintf(p->err, sizeof p->err, "cannot read the code of %s", k->name);
  return r ? -1 : 0;
}

static int glob_site(void *ctx, const ksym *k) {
  plan *p = ctx;
  if (p->off && check_offset(p, k) < 0) {
    if (!p->glob) return 1;
    p->offset_skipped++; /* a glob keeps the functions that have one */
    p->err[0] = 0;
    return 0;
  }
  guest_site site = {.addr = k->addr + p->off, .probe = p->probe, .kind = p->kind,
                     .args = p->args};
  if (p->glob) {
    char at[24] = ""; /* GUEST:OFFSET:f:0xN keeps its offset */
    if (p->off) snprintf(at, sizeof at, ":%#llx", (unsigned long long)p->off);
    snprintf(site.name, sizeof site.name, "%s%s%s%s", p->vmpfx, p->prefix, k->name, at);
  }
  if (add_site(p->vm, &site) < 0) {
    snprintf(p->err, sizeof p->err, "more than %d probe sites", GUEST_MAX_SITES);
    return 1;
  }
  return 0;
}

/* A LOCATION: 0xADDR, symbol, or glob over guest functions. */
static int plan_location(plan *p, const char *loc) {
  guest_vm *vm = p->vm;
  if (!strncmp(loc, "0x", 2) || isdigit((unsigned char)loc[0])) {
    char *end;
    uint64_t a = strtoull(loc, &end, 0);
    if (*end) {
      snprintf(p->err, sizeof p->err, "bad address %s", loc);
      return -1;
    }
    guest_site site = {.addr = a + p->off, .probe = p->probe, .kind = p->kind, .args = p->args};
    return add_site(vm, &site);
  }
  if (!vm->syms) {
    snprintf(p->err, sizeof p->err, "guest symbols needed for %s (-s kallsyms.txt)", loc);
    return -1;
  }
  p->glob = strpbrk(loc, "*?[") != NULL;
  if (!p->glob) {
    const ksym *k = ksym_by_name(vm->syms, loc);
    if (!k) {
      snprintf(p->err, sizeof p->err, "no guest symbol %s", loc);
      return -1;
    }
    return glob_site(p, k) ? -1 : 0;
  }
  p->err[0] = 0;
  size_t n = ksym_glob(vm->syms, loc, 1, glob_site, p);
  if (p->err[0]) return -1;
  if (n == 0) {
    snprintf(p->err, sizeof p->err, "no guest function matches %s", loc);
    return -1;
  }
  if (n == (size_t)p->offset_skipped) {
    snprintf(p->err, sizeof p->err, "no function matching %s has an instruction at +%#llx", loc,
             (unsigned long long)p->off);
    return -1;
  }
  return 0;
}

/* Exceptions by vector: name and whether the CPU pushes an error code. */
static const struct {
  const char *name;
  int errcode;
} faults[32] = {
    [0] = {"DE", 0},  [1] = {"DB", 0},  [2] = {"NMI", 0}, [3] = {"BP", 0},
    [4] = {"OF", 0},  [5] = {"BR", 0},  [6] = {"UD", 0},  [7] = {"NM", 0},
    [8] = {"DF", 1},  [9] = {"RESERVED_FAULT", 0},        [10] = {"TS", 1},
    [11] = {"NP", 1}, [12] = {"SS", 1}, [13] = {"GP", 1}, [14] = {"PF", 1},
    [16] = {"MF", 0}, [17] = {"AC", 1}, [18] = {"MC", 0}, [19] = {"XF", 0},
    [21] = {"CP", 1},
};

/* The IDT gate targets: read the guest's idt_table (IDTR is not among the
 * stub's registers, but Linux keeps its one IDT in that symbol), 16-byte
 * gates with the offset split in three. */
static int read_idt(guest_vm *vm, uint64_t *gate, char *err, size_t cap) {
  uint64_t idt;
  if (!vm->syms || ksym_resolve(vm->syms, "idt_table", &idt) < 0) {
    snprintf(err, cap, "Guest_IRQ and the fault probes need guest symbols with idt_table (-s)");
    return -1;
  }
  uint8_t raw[256 * 16];
  if (gdb_read_mem(vm->g, idt, raw, sizeof raw) < 0) {
    snprintf(err, cap, "cannot read the guest IDT at 0x%llx", (unsigned long long)idt);
    return -1;
  }
  for (int v = 0; v < 256; v++) {
    const uint8_t *e = raw + 16 * v;
    int present = e[5] & 0x80;
    gate[v] = present ? (uint64_t)(e[0] | e[1] << 8) | (uint64_t)(e[6] | e[7] << 8) << 16 |
                            (uint64_t)(e[8] | e[9] << 8 | e[10] << 16 | (uint32_t)e[11] << 24) << 32
                      : 0;
  }
  return 0;
}

static int plan_vectors(guest_vm *vm, int probe, int lo, int hi, int kind, char *err, size_t cap) {
  uint64_t gate[256];
  if (read_idt(vm, gate, err, cap) < 0) return -1;
  for (int v = lo; v <= hi; v++) {
    if (!gate[v]) continue;
    /* Vectors sharing a gate (none on Linux) fire with the first one. */
    int dup = 0;
    for (int i = 0; i < vm->nsites; i++)
      dup |= vm->sites[i].addr == gate[v] && vm->sites[i].probe == probe;
    if (dup) continue;
    guest_site site = {.addr = gate[v], .probe = probe, .kind = kind, .vector = v,
                       .errcode = v < 32 && faults[v].errcode};
    if (add_site(vm, &site) < 0) return -1;
  }
  return 0;
}

/* Period of a sampling probe this engine serves (VMM1Hz, VMM10Hz, USEC:N,
 * VMM:TIMER:N<unit>): 1 and *NS, 0 if NAME is none, -1 with ERR if its
 * period is malformed.  The grammar and units are probename.c's. */
static int period_of(const char *name, uint64_t *ns, char *err, size_t cap) {
  if (!strncmp(name, "VMX", 3)) return 0; /* VMX1Hz, VMX:PROFILE: a process's */
  return vpn_period(name, ns, err, cap);
}

/* Probe i's name as this VM sees it: without the NAME: that binds it to
 * one VM, NULL if it is bound to another. */
static const char *own_probe(const guest_vm *vm, int i) {
  const char *name = vp_image_probe(vm->s->img, i);
  size_t n = vp_probe_vm_prefix(name);
  if (!n) return name;
  const char *mine = vm->cfg->name;
  return mine && strlen(mine) == n - 1 && !strncmp(name, mine, n - 1) ? name + n : NULL;
}

/* Turn probe i's name into sites, watchpoints or timers. */
static int plan_probe(guest_vm *vm, int i, int *load, int *unload, char *err, size_t cap) {
  char name[VP_NAME_MAX + 8], vmpfx[VP_NAME_MAX];
  const char *own = own_probe(vm, i);
  if (!own) return 0;
  snprintf(vmpfx, sizeof vmpfx, "%.*s", (int)(own - vp_image_probe(vm->s->img, i)),
           vp_image_probe(vm->s->img, i));
  snprintf(name, sizeof name, "%s", own);
  name[strcspn(name, "(")] = 0; /* typed parameters: GUEST:ENTER:f(int a) */
  plan p = {.vm = vm, .probe = i, .vmpfx = vmpfx, .kind = SITE_PLAIN};
  uint64_t period;
  if (!strcmp(name, "VMMLoad")) {
    load[i] = 1;
    return 0;
  }
  if (!strcmp(name, "VMMUnload")) {
    unload[i] = 1;
    return 0;
  }
  int periodic = period_of(name, &period, err, cap);
  if (periodic < 0) return -1;
  if (periodic) {
    if (vm->ntimers == GUEST_MAX_TIMERS) return snprintf(err, cap, "%s: too many timers", name), -1;
    vm->timers[vm->ntimers++] = (guest_timer){i, period, 0, strncmp(name, "VMM1", 4) != 0};
    return 0;
  }
  if (qtrace_known(name) == 1) {
    vm->nqt++; /* In, Out, Disk_IO*, Guest_TripleFault, VMM:TRACE:EV */
    return 0;
  }
  if (!strcmp(name, "Guest_IRQ"))
    return plan_vectors(vm, i, 32, 255, SITE_IRQ, err, cap);
  if (!strncmp(name, "Guest_", 6)) {
    for (int v = 0; v < 32; v++)
      if (faults[v].name && !strcmp(name + 6, faults[v].name))
        return plan_vectors(vm, i, v, v, SITE_FAULT, err, cap);
    if (!strcmp(name, "Guest_CR3Write"))
      return snprintf(err, cap, "%s: QEMU's gdb stub cannot trap CR3 writes", name), -1;
    return snprintf(err, cap, "%s: not a guest static probe this engine has", name), -1;
  }
  if (!strcmp(name, "HV_Exit") || !strcmp(name, "HV_Resume"))
    return snprintf(err, cap, "%s needs KVM: on a KVM host use VMK:TRACE:kvm:%s", name,
                    name[3] == 'E' ? "kvm_exit" : "kvm_entry"),
           -1;
  if (!strncmp(name, "GUEST_READ:", 11) || !strncmp(name, "GUEST_WRITE:", 12)) {
    const char *loc = strchr(name, ':') + 1;
    uint64_t a;
    if (!vm->syms ? ksym_resolve(NULL, loc, &a) < 0 : ksym_resolve(vm->syms, loc, &a) < 0)
      return snprintf(err, cap, "%s: no guest symbol or address %s", name, loc), -1;
    if (vm->nwatch == GUEST_MAX_WATCH)
      return snprintf(err, cap, "%s: at most %d watchpoints", name, GUEST_MAX_WATCH), -1;
    vm->watch[vm->nwatch++] = (guest_watch){a, 8, name[6] == 'R' ? GDB_WP_READ : GDB_WP_WRITE, i};
    return 0;
  }
  const char *loc = NULL;
  if (!strncmp(name, "GUEST:ENTER:", 12)) {
    loc = name + 12, p.prefix = "GUEST:ENTER:", p.args = 1;
  } else if (!strncmp(name, "GUEST:EXIT:", 11)) {
    loc = name + 11, p.prefix = "GUEST:EXIT:", p.kind = SITE_EXITREC;
  } else if (!strncmp(name, "GUEST:OFFSET:", 13)) {
    loc = name + 13, p.prefix = "GUEST:OFFSET:";
    char *colon = strrchr(name + 13, ':'), *end;
    if (!colon || (p.off = strtoull(colon + 1, &end, 0), *end))
      return snprintf(err, cap, "%s: want GUEST:OFFSET:sym:0xNN", name), -1;
    *colon = 0;
  } else if (!strncmp(name, "GUEST:", 6)) {
    loc = name + 6, p.prefix = "GUEST:", p.args = 1;
  } else {
    return snprintf(err, cap, "%s: not a GUEST or VMM probe", name), -1;
  }
  if (plan_location(&p, loc) < 0) return snprintf(err, cap, "%s: %s", name, p.err), -1;
  return 0;
}

/* ---- firing ---- */

static void fire(guest_vm *vm, int probe, const char *name, const uint64_t *args, int nargs) {
  uint32_t vcpu = (uint32_t)(vm->thread > 0 ? vm->thread - 1 : 0);
  rt_thread *th = rt_thread_get(vm->sp, vm->tid_base + vcpu + 1);
  if (!th) return;
  vp_target t = guest_target_ops;
  t.self = vm;
  vp_fire f = {.probe = probe, .probename = name && *name ? name : NULL, .target = &t};
  for (int i = 0; i < nargs && i < VP_NARGS; i++) f.args[i] = args[i];
  vm->fires++;
  vp_run(th, vm->s->img, &f);
}

static void fire_site(guest_vm *vm, const guest_site *site) {
  uint64_t args[6] = {0};
  int nargs = 0;
  static const int argregs[6] = {VP_REG_RDI, VP_REG_RSI, VP_REG_RDX,
                                 VP_REG_RCX, VP_REG_R8, VP_REG_R9};
  if (site->kind == SITE_IRQ) {
    args[0] = (uint64_t)site->vector, nargs = 1;
  } else if (site->kind == SITE_FAULT) {
    uint64_t rsp;
    nargs = 1;
    if (site->errcode && guest_reg(vm, VP_REG_RSP, &rsp) == 0)
      gdb_read_mem(vm->g, rsp, &args[0], 8);
  } else if (site->args) {
    for (nargs = 0; nargs < 6; nargs++) guest_reg(vm, argregs[nargs], &args[nargs]);
  }
  fire(vm, site->probe, site->name, args, nargs);
}

/* Entry of an EXIT probe's function: remember where it returns to. */
static void record_exit(guest_vm *vm, int site) {
  uint64_t rsp, ret;
  if (guest_reg(vm, VP_REG_RSP, &rsp) < 0 || gdb_read_mem(vm->g, rsp, &ret, 8) < 0) return;
  if (vm->nexits == GUEST_MAX_EXITS) {
    /* A task that never returns (or sleeps for long): forget the oldest. */
    bp_unref(vm, vm->exits[0].ret);
    memmove(vm->exits, vm->exits + 1, (size_t)--vm->nexits * sizeof vm->exits[0]);
  }
  if (bp_ref(vm, ret) < 0) return;
  vm->exits[vm->nexits++] = (guest_exit){ret, rsp + 8, site};
}

/* The return of a recorded call: the same stack pointer identifies the
 * call, whichever vCPU the task resumed on. */
static void check_exits(guest_vm *vm, uint64_t rip) {
  uint64_t rsp;
  if (guest_reg(vm, VP_REG_RSP, &rsp) < 0) return;
  for (int i = 0; i < vm->nexits; i++) {
    guest_exit *e = &vm->exits[i];
    if (e->ret != rip || e->rsp != rsp) continue;
    const guest_site *site = &vm->sites[e->site];
    char name[VP_NAME_MAX];
    name[0] = 0;
    if (site->name[0]) snprintf(name, sizeof name, "%s", site->name);
    uint64_t rax = 0;
    guest_reg(vm, VP_REG_RAX, &rax);
    *e = vm->exits[--vm->nexits];
    bp_unref(vm, rip);
    fire(vm, site->probe, name, &rax, 1);
    return;
  }
}

/* Run what sits at the breakpoint the vCPU stopped on.  Returns 1 if a
 * breakpoint is still inserted at rip (so the vCPU must step over it). */
static int at_breakpoint(guest_vm *vm, uint64_t rip) {
  if (!bp_find(vm, rip)) return 0;
  vm->hits++;
  check_exits(vm, rip);
  for (int i = 0; i < vm->nsites; i++) {
    const guest_site *site = &vm->sites[i];
    if (site->addr != rip) continue;
    if (site->kind == SITE_EXITREC) record_exit(vm, i);
    else fire_site(vm, site);
  }
  return bp_find(vm, rip) != NULL;
}

static void new_stop(guest_vm *vm, const gdb_stop *st) {
  vm->thread = st->thread ? st->thread : 1;
  vm->regs_ok = vm->regs_fresh; /* read with the stop (pause_vm) */
  vm->regs_fresh = 0;
}

/* Start passing the breakpoint at rip; 0 if the VM can now continue, -1
 * if the instruction needs a single step.  A NOP (the entry of nearly
 * every kernel function: the 5-byte ftrace site) is passed by resuming
 * the vCPU past it (resume_at: 'c ADDR', no extra packet): nothing for the
 * guest to see.  Anything else by a hop (see guest_hop) while no other hop
 * is under way. */
static int hop_start(guest_vm *vm, uint64_t rip) {
  guest_hop *h = &vm->hop;
  uint8_t code[16];
  uint64_t next[2];
  if (vm->step_mode || guest_code(vm, rip, code, sizeof code) < 0) return -1;
  int nop = vm->no_emulate ? 0 : x86dec_nop_len(code, sizeof code);
  if (nop > 0) {
    vm->resume_at = rip + (uint64_t)nop;
    return 0;
  }
  /* `push $imm` (each IRQ entry stub): done for the vCPU, two packets. */
  int64_t imm;
  uint64_t rsp;
  int push = vm->no_emulate ? 0 : x86dec_push_imm(code, sizeof code, &imm);
  if (push > 0 && guest_reg(vm, VP_REG_RSP, &rsp) == 0 &&
      gdb_write_mem(vm->g, rsp - 8, &imm, 8) == 0 && gdb_write_reg(vm->g, vm->rsp, rsp - 8) == 0) {
    vm->resume_at = rip + (uint64_t)push;
    return 0;
  }
  if (h->active) return -1;
  int n = x86dec_successors(code, sizeof code, rip, next);
  if (n <= 0) return -1;
  *h = (guest_hop){.addr = rip, .n = n};
  for (int i = 0; i < n; i++) {
    h->next[i] = next[i];
    h->own[i] = !bp_find(vm, next[i]) && next[i] != rip;
    if (h->own[i] && gdb_breakpoint(vm->g, 1, GDB_BP_SW, next[i], 1) < 0) {
      for (int k = 0; k < i; k++)
        if (h->own[k]) gdb_breakpoint(vm->g, 0, GDB_BP_SW, next[k], 1);
      return -1;
    }
  }
  gdb_breakpoint(vm->g, 0, GDB_BP_SW, rip, 1);
  h->active = 1;
  h->start_ns = rt_clock();
  return 0;
}

/* The hop is over (or abandoned): the breakpoint goes back in. */
static void hop_end(guest_vm *vm) {
  guest_hop *h = &vm->hop;
  if (!h->active) return;
  h->active = 0;
  if (bp_find(vm, h->addr)) gdb_breakpoint(vm->g, 1, GDB_BP_SW, h->addr, 1);
  for (int i = 0; i < h->n; i++)
    if (h->own[i] && !bp_find(vm, h->next[i])) gdb_breakpoint(vm->g, 0, GDB_BP_SW, h->next[i], 1);
}

/* Handle a stop; leaves the VM stopped.  Returns -1 if the stub is gone. */
static int handle_stop(guest_vm *vm, gdb_stop *st) {
  for (int steps = 0;; steps++) {
    new_stop(vm, st);
    if (st->kind == GDB_STOP_EXITED) return -1;
    if (st->kind == GDB_STOP_WATCH) {
      for (int i = 0; i < vm->nwatch; i++)
        if (st->addr >= vm->watch[i].addr && st->addr < vm->watch[i].addr + (uint64_t)vm->watch[i].len) {
          uint64_t a = st->addr;
          fire(vm, vm->watch[i].probe, NULL, &a, 1);
        }
      return 0;
    }
    if (st->signal != 5) return 0; /* our interrupt */
    uint64_t rip;
    if (guest_reg(vm, VP_REG_RIP, &rip) < 0) return -1;
    int hopped = 0;
    if (vm->hop.active)
      for (int i = 0; i < vm->hop.n; i++)
        if (rip == vm->hop.next[i]) hopped = 1;
    if (hopped) hop_end(vm);
    if (!bp_find(vm, rip)) {
      /* A trap at an address we have no breakpoint for: one left over in
       * the stub (a hop of a vanished breakpoint); take it out so the
       * vCPU can go on. */
      if (!hopped && !steps) gdb_breakpoint(vm->g, 0, GDB_BP_SW, rip, 1);
      return 0;
    }
    if (!at_breakpoint(vm, rip) || steps > 8) return 0;
    if (hop_start(vm, rip) == 0) return 0;
    /* Step over the breakpoint, then look again: the step may land on
     * another probed address. */
    int thread = vm->thread;
    if (gdb_step(vm->g, thread) < 0 || gdb_wait_stop(vm->g, st, 5000) != 0) return -1;
    if (!st->thread) st->thread = thread;
  }
}

static int resume(guest_vm *vm) {
  if (vm->stopped_at) vm->stopped_ns += rt_clock() - vm->stopped_at;
  vm->stopped_at = 0;
  uint64_t at = vm->resume_at;
  vm->resume_at = 0;
  vm->running = (at ? gdb_cont_at(vm->g, at) : gdb_cont(vm->g)) == 0;
  return vm->running ? 0 : -1;
}

/* Stop the VM; a stop that was already on its way may be a breakpoint or
 * watchpoint hit, which is handled like any other.  The registers of the
 * stopped vCPU are asked for with the stop (a sample nearly always reads
 * RIP), saving a round trip. */
static int pause_vm(guest_vm *vm) {
  gdb_stop st;
  if (!vm->running) return 0;
  if (gdb_interrupt_regs(vm->g) < 0 || gdb_wait_stop(vm->g, &st, 5000) != 0) return -1;
  vm->running = 0;
  vm->stopped_at = rt_clock();
  if (st.kind != GDB_STOP_EXITED) {
    if (gdb_recv_regs(vm->g, vm->regs) < 0) return -1;
    vm->regs_fresh = 1;
  }
  vm->nstops++;
  return handle_stop(vm, &st);
}

/* ---- setup and teardown ---- */

static int vm_connect(guest_vm *vm, ctl_session *s) {
  char gdb[300], qmp[300], err[512];
  if (parse_vm(vm->cfg->spec, gdb, qmp, sizeof gdb, err, sizeof err) < 0) {
    fprintf(s->err, "vprobe: %s\n", err);
    return -1;
  }
  fflush(NULL); /* the guardian must not write our buffers twice */
  vm->guardian = guardian_start(gdb, &vm->guardian_fd);
  if (!(vm->g = gdb_open(gdb, err, sizeof err))) {
    fprintf(s->err, "vprobe: %s\n", err);
    return -1;
  }
  if (gdb_handshake(vm->g) < 0) {
    fprintf(s->err, "vprobe: %s: %s\n", gdb, vm->g->err);
    return -1;
  }
  vm->running = 0;
  snprintf(vm->qmppath, sizeof vm->qmppath, "%s", qmp);
  guest_target_init(vm);
  if (vm->cfg->syms) {
    if (!(vm->syms = ksym_load(vm->cfg->syms, err, sizeof err))) {
      fprintf(s->err, "vprobe: %s\n", err);
      return -1;
    }
    uint64_t lo, hi;
    if (ksym_resolve(vm->syms, "_stext", &lo) == 0 && ksym_resolve(vm->syms, "_etext", &hi) == 0)
      vm->text_lo = lo, vm->text_hi = hi;
  }
  return 0;
}

/* Remove every breakpoint and watchpoint and let the VM run: the stub
 * would drop them when the connection closes, but not if vprobe is merely
 * done and something else keeps the socket. */
static void vm_release(guest_vm *vm) {
  if (!vm->g) return;
  if (vm->gone) {
    gdb_close(vm->g);
    vm->g = NULL;
    return;
  }
  for (int i = 0; vm->hop.active && i < vm->hop.n; i++)
    if (vm->hop.own[i]) gdb_breakpoint(vm->g, 0, GDB_BP_SW, vm->hop.next[i], 1);
  vm->hop.active = 0;
  for (int i = vm->nbps; i-- > 0;) gdb_breakpoint(vm->g, 0, GDB_BP_SW, vm->bps[i].addr, 1);
  vm->nbps = 0;
  for (int i = 0; i < vm->nwatch; i++)
    gdb_breakpoint(vm->g, 0, vm->watch[i].type, vm->watch[i].addr, vm->watch[i].len);
  gdb_detach(vm->g); /* QEMU resumes the VM when its debugger detaches */
  gdb_close(vm->g);
  vm->g = NULL;
}

static void vm_free(guest_vm *vm) {
  qtrace_stop(vm->qt);
  if (vm->qmp) qmp_close(vm->qmp);
  vm_release(vm);
  guardian_stop(vm->guardian, vm->guardian_fd);
  ksym_free(vm->syms);
  free(vm->sites);
  free(vm->bps);
  free(vm->code);
  free(vm->load);
  free(vm->unload);
  free(vm->spmem);
}

/* One runtime space for every VM of the run: one script, one set of
 * globals and aggregates; VM k's vCPUs are threads after VM k-1's. */
static int setup_runtime(guest_vm *vms, int nvms) {
  rt_layout layout;
  vp_image_layout(vms[0].s->img, &layout);
  uint32_t threads = 0;
  for (int k = 0; k < nvms; k++) {
    vms[k].tid_base = threads;
    threads += (uint32_t)vms[k].g->nthreads;
  }
  layout.max_threads = threads + 2;
  size_t size = rt_space_size(&layout);
  vms[0].spmem = calloc(1, size);
  rt_space *sp = vms[0].spmem ? rt_space_init(vms[0].spmem, size, &layout) : NULL;
  if (!sp) {
    fprintf(vms[0].s->err, "vprobe: cannot set up the runtime (%zu bytes)\n", size);
    return -1;
  }
  for (int k = 0; k < nvms; k++) vms[k].sp = sp;
  return 0;
}

static void drain(guest_vm *vm) {
  if (!vm->sp) return;
  if (vm->drain_lock) pthread_mutex_lock(vm->drain_lock);
  ctl_drain(vm->s, vm->sp, UINT64_MAX);
  if (vm->drain_lock) pthread_mutex_unlock(vm->drain_lock);
}

static int arm(guest_vm *vm) {
  for (int i = 0; i < vm->nsites; i++)
    if (bp_ref(vm, vm->sites[i].addr) < 0) {
      fprintf(vm->s->err, "vprobe: %s: %s\n", vp_image_probe(vm->s->img, vm->sites[i].probe),
              vm->g->err);
      return -1;
    }
  for (int i = 0; i < vm->nwatch; i++) {
    guest_watch *w = &vm->watch[i];
    if (gdb_breakpoint(vm->g, 1, w->type, w->addr, w->len) < 0) {
      fprintf(vm->s->err, "vprobe: %s: %s\n", vp_image_probe(vm->s->img, w->probe), vm->g->err);
      vm->nwatch = i;
      return -1;
    }
  }
  return 0;
}

/* Turn on the QEMU trace events behind In, Out, Disk_IO..., Guest_TripleFault
 * (src/guest/qtrace.h): they need the VM's QMP socket. */
static int qtrace_setup(guest_vm *vm, const char *qmppath) {
  ctl_session *s = vm->s;
  int n = vp_image_nprobes(s->img), k = 0;
  const char **names = calloc((size_t)n + 1, sizeof *names);
  char err[512];
  if (!names) return -1;
  for (int i = 0; i < n; i++)
    if (own_probe(vm, i) && qtrace_known(own_probe(vm, i)) == 1) names[k++] = own_probe(vm, i);
  if (!*qmppath) {
    fprintf(s->err, "vprobe: %s: needs the VM's QMP socket (-m PID of a QEMU with -qmp, "
                    "or -m gdb=ADDR,qmp=PATH)\n", names[0]);
    free(names);
    return -1;
  }
  if (!strncmp(qmppath, "unix:", 5)) qmppath += 5;
  vm->qmp = qmp_open(qmppath, err, sizeof err);
  if (vm->qmp) vm->qt = qtrace_start(vm->qmp, names, k, err, sizeof err);
  free(names);
  if (!vm->qt) {
    fprintf(s->err, "vprobe: %s\n", err);
    return -1;
  }
  return 0;
}

/* Fire what QEMU's trace log delivered; the VM runs meanwhile. */
static void qtrace_drain(guest_vm *vm) {
  qtrace_event ev;
  int n = vp_image_nprobes(vm->s->img);
  while (vm->qt && qtrace_next(vm->qt, &ev, 0) == 1) {
    for (int i = 0; i < n; i++) {
      if (!own_probe(vm, i) || strcmp(own_probe(vm, i), ev.probe)) continue;
      int saved = vm->thread;
      vm->async = 1;
      vm->thread = ev.vcpu >= 0 ? ev.vcpu + 1 : 1;
      fire(vm, i, NULL, ev.args, ev.nargs);
      vm->async = 0;
      vm->thread = saved;
      break;
    }
  }
}

static void fire_all(guest_vm *vm, const int *which, int n) {
  for (int i = 0; i < n; i++)
    if (which[i]) fire(vm, i, NULL, NULL, 0);
}

/* Sampling probes (USEC:N, VMM:TIMER:...) fire once on every vCPU, each
 * with its own registers and address space (Hg selects the vCPU the stub
 * reads); VMM1Hz and VMM10Hz fire once, on the vCPU the stop reports, so
 * that `VMM1Hz { logaggr(a); }` prints once a second. */
static void fire_timer(guest_vm *vm, const guest_timer *t) {
  int stopped = vm->thread;
  fire(vm, t->probe, NULL, NULL, 0);
  if (!t->per_vcpu || vm->g->nthreads < 2) return;
  for (int i = 0; i < vm->g->nthreads; i++) {
    int th = vm->g->threads[i];
    if (th == stopped || gdb_set_thread(vm->g, th) < 0) continue;
    vm->thread = th;
    vm->regs_ok = 0;
    fire(vm, t->probe, NULL, NULL, 0);
  }
  gdb_set_thread(vm->g, stopped);
  vm->thread = stopped;
  vm->regs_ok = 0;
}

/* The VM powered off (or QEMU died).  What QEMU's trace log and QMP
 * events said last still fires: a triple fault ends a VM run with
 * -no-reboot, and its Guest_TripleFault arrives with the end. */
static int vm_gone(guest_vm *vm) {
  vm->gone = 1;
  qtrace_drain(vm);
  return 0;
}

/* The main loop: wait for stops, fire timers, until it is time to go. */
static int run_loop(guest_vm *vm, uint64_t start) {
  ctl_session *s = vm->s;
  uint64_t last_drain = start;
  uint64_t end = s->duration > 0 ? start + (uint64_t)(s->duration * 1e9) : UINT64_MAX;
  for (int i = 0; i < vm->ntimers; i++) vm->timers[i].next_ns = start + vm->timers[i].period_ns;
  /* Without anything that can fire the script is done, unless -d asks. */
  if (!vm->nsites && !vm->nwatch && !vm->ntimers && !vm->qt && s->duration <= 0) return 0;
  if (resume(vm) < 0) return -1;
  while (!ctl_stopping(s, start)) {
    uint64_t now = rt_clock(), next = now + 50000000ull;
    for (int i = 0; i < vm->ntimers; i++)
      if (vm->timers[i].next_ns < next) next = vm->timers[i].next_ns;
    int wait_ms = next > now ? (int)((next - now + 999999) / 1000000) : 0;
    if (vm->qt && wait_ms > 20) wait_ms = 20; /* trace events: 20 ms latency */
    gdb_stop st;
    int r = gdb_wait_stop(vm->g, &st, wait_ms);
    if (r == 0) {
      vm->running = 0;
      vm->stopped_at = rt_clock();
      vm->nstops++;
      r = handle_stop(vm, &st);
    }
    if (r == -1) {
      /* The VM powered off (or QEMU died): unload without it. */
      fprintf(s->err, "vprobe: %s (the VM is gone)\n", *vm->g->err ? vm->g->err : "the VM exited");
      return vm_gone(vm);
    }
    now = rt_clock();
    /* Ticks due by the end of -d fire, even when we wake after it (the
     * last of `-d N` at 1 Hz is due at exactly N s); later ones do not. */
    uint64_t due = now < end ? now : end;
    for (int i = 0; i < vm->ntimers; i++) {
      guest_timer *t = &vm->timers[i];
      if (t->next_ns > due) continue;
      if (pause_vm(vm) < 0) return vm_gone(vm);
      fire_timer(vm, t);
      t->next_ns = rt_timer_next(t->next_ns, t->period_ns, now);
    }
    /* A hop whose vCPU went elsewhere (an interrupt, a task switch) must
     * not keep its breakpoint out for long. */
    if (vm->hop.active && now - vm->hop.start_ns > 200000000ull) {
      if (pause_vm(vm) < 0) return vm_gone(vm);
      hop_end(vm);
    }
    if (!vm->running && resume(vm) < 0) return -1;
    qtrace_drain(vm);
    if (now - last_drain > 50000000ull) {
      drain(vm);
      last_drain = now;
    }
  }
  return 0;
}

/* Connect to one VM and plan the probes that are its own. */
static int vm_prepare(guest_vm *vm) {
  ctl_session *s = vm->s;
  int n = vp_image_nprobes(s->img);
  vm->load = calloc((size_t)n + 1, sizeof *vm->load);
  vm->unload = calloc((size_t)n + 1, sizeof *vm->unload);
  vm->sites = calloc(GUEST_MAX_SITES, sizeof *vm->sites);
  if (!vm->load || !vm->unload || !vm->sites || vm_connect(vm, s) < 0) return -1;
  char err[512];
  for (int i = 0; i < n; i++)
    if (plan_probe(vm, i, vm->load, vm->unload, err, sizeof err) < 0) {
      fprintf(s->err, "vprobe: %s\n", err);
      return -1;
    }
  return 0;
}

/* Insert its breakpoints and watchpoints, turn on its trace events, and
 * run its load probes: with the VM stopped, on the vCPU the connection
 * stopped (vCPU 0). */
static int vm_load(guest_vm *vm) {
  if (arm(vm) < 0) return -1;
  if (vm->nqt && qtrace_setup(vm, vm->qmppath) < 0) return -1;
  vm->thread = vm->g->nthreads ? vm->g->threads[0] : 1;
  vm->regs_ok = 0;
  if (vm->thread != 1) gdb_set_thread(vm->g, vm->thread);
  fire_all(vm, vm->load, vp_image_nprobes(vm->s->img));
  drain(vm);
  return 0;
}

/* Unload probes: with the VM stopped, or without it once it is gone. */
static void vm_unload(guest_vm *vm) {
  ctl_session *s = vm->s;
  if (vm->g && (vm->gone || pause_vm(vm) == 0)) {
    vm->regs_ok = 0;
    vm->async = vm->gone;
    fire_all(vm, vm->unload, vp_image_nprobes(s->img));
    vm->async = 0;
  }
  if (getenv("VPROBE_GUEST_STATS"))
    fprintf(s->err, "vprobe: guest%s%s: %llu breakpoint hits, %llu fires, %llu stops, "
            "%.3f ms of engine time per stop\n", vm->cfg->name ? " " : "",
            vm->cfg->name ? vm->cfg->name : "",
            (unsigned long long)vm->hits, (unsigned long long)vm->fires,
            (unsigned long long)vm->nstops,
            vm->nstops ? (double)vm->stopped_ns / 1e6 / (double)vm->nstops : 0.0);
}

typedef struct loop_arg {
  guest_vm *vm;
  uint64_t start;
} loop_arg;

static void *loop_thread(void *arg) {
  loop_arg *a = arg;
  a->vm->rc = run_loop(a->vm, a->start);
  return NULL;
}

/* Each VM's stops are waited for on a thread of its own; the probes of
 * all of them write to the one space. */
static int run_all(guest_vm *vms, int nvms, uint64_t start) {
  if (nvms == 1) return vms[0].rc = run_loop(&vms[0], start);
  pthread_t tids[CTL_MAX_VMS];
  loop_arg args[CTL_MAX_VMS];
  int started = 0, rc = 0;
  for (; started < nvms; started++) {
    args[started] = (loop_arg){&vms[started], start};
    if (pthread_create(&tids[started], NULL, loop_thread, &args[started]) != 0) break;
  }
  for (int k = 0; k < started; k++) pthread_join(tids[k], NULL);
  for (int k = 0; k < nvms; k++) rc |= k < started ? vms[k].rc : -1;
  return rc;
}

/* Every probe bound to a VM by NAME: names one of the -m VMs. */
static int check_vm_names(ctl_session *s) {
  for (int i = 0; i < vp_image_nprobes(s->img); i++) {
    const char *p = vp_image_probe(s->img, i);
    size_t n = vp_probe_vm_prefix(p);
    int found = !n;
    for (int k = 0; !found && k < s->nvms; k++)
      found = s->vms[k].name && strlen(s->vms[k].name) == n - 1 && !strncmp(p, s->vms[k].name, n - 1);
    if (!found) {
      fprintf(s->err, "vprobe: %s: no VM named %.*s (give it with -m %.*s:VM)\n", p,
              (int)n - 1, p, (int)n - 1, p);
      return -1;
    }
  }
  return 0;
}

int guest_run(ctl_session *s) {
  int nvms = s->nvms, rc = 1;
  guest_vm *vms = calloc((size_t)nvms, sizeof *vms);
  pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
  if (!vms || check_vm_names(s) < 0) goto out;
  /* How breakpoints are passed: VPROBE_GUEST_PASS=step|hop|emulate (the
   * bench compares them). */
  const char *pass = getenv("VPROBE_GUEST_PASS");
  for (int k = 0; k < nvms; k++) {
    guest_vm *vm = &vms[k];
    *vm = (guest_vm){.s = s, .cfg = &s->vms[k], .drain_lock = nvms > 1 ? &lock : NULL};
    vm->step_mode = pass && !strcmp(pass, "step");
    vm->no_emulate = pass && !strcmp(pass, "hop");
    if (vm_prepare(vm) < 0) goto out;
  }
  if (setup_runtime(vms, nvms) < 0) goto out;
  for (int k = 0; k < nvms; k++)
    if (vm_load(&vms[k]) < 0) goto out;
  if (run_all(vms, nvms, rt_clock()) == 0) rc = 0;
  for (int k = 0; k < nvms; k++) vm_unload(&vms[k]);
out:
  if (vms) drain(&vms[0]); /* the space is one; vms[0] owns it, so goes last */
  for (int k = nvms; vms && k-- > 0;) vm_free(&vms[k]);
  free(vms);
  return rc;
}

int guest_list(ctl_session *s, const char *glob) {
  for (const char *const *f = vpn_fixed(VP_DOM_GUEST); *f; f++)
    if (vpn_glob_match(glob, *f)) fprintf(s->out, "%s\n", *f);
  const char *syms = s->nvms ? s->vms[0].syms : NULL;
  if (!syms) return 0;
  char err[512], name[VPN_MAX + 8];
  ksym_table *t = ksym_load(syms, err, sizeof err);
  if (!t) {
    fprintf(s->err, "vprobe: %s\n", err);
    return 1;
  }
  for (size_t i = 0; i < ksym_count(t); i++) {
    const ksym *k = ksym_at(t, i);
    if (k->type != 'T' && k->type != 't') continue;
    snprintf(name, sizeof name, "GUEST:%s", k->name);
    if (vpn_glob_match(glob, name)) fprintf(s->out, "%s\n", name);
  }
  ksym_free(t);
  return 0;
}
