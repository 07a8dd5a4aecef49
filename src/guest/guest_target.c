/*
 * guest_target.c - what a GUEST or VMM probe fire sees: the registers and
 * memory of the stopped vCPU, and the guest built-ins (getguest...,
 * gueststack, sym2addr, offatret, offatstrcpy).
 *
 * Nothing read from guest memory is kept from one fire to the next, except
 * kernel text pages for gueststack's call-site check (code does not change
 * once the kernel has booted and patched itself).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "guest/guest_dec.h"
#include "guest/guest_vm.h"

/* Stub register names of the VP registers (Table 2-1). */
static const char *const reg_names[VP_REG_COUNT] = {
    [VP_REG_RAX] = "rax", [VP_REG_RBX] = "rbx", [VP_REG_RCX] = "rcx",
    [VP_REG_RDX] = "rdx", [VP_REG_RSI] = "rsi", [VP_REG_RDI] = "rdi",
    [VP_REG_RSP] = "rsp", [VP_REG_RBP] = "rbp", [VP_REG_R8] = "r8",
    [VP_REG_R9] = "r9", [VP_REG_R10] = "r10", [VP_REG_R11] = "r11",
    [VP_REG_R12] = "r12", [VP_REG_R13] = "r13", [VP_REG_R14] = "r14",
    [VP_REG_R15] = "r15", [VP_REG_RIP] = "rip", [VP_REG_RFLAGS] = "eflags",
    [VP_REG_CS] = "cs", [VP_REG_SS] = "ss", [VP_REG_DS] = "ds",
    [VP_REG_ES] = "es", [VP_REG_FS] = "fs", [VP_REG_GS] = "gs",
    [VP_REG_CR0] = "cr0", [VP_REG_CR2] = "cr2", [VP_REG_CR3] = "cr3",
    [VP_REG_CR4] = "cr4", [VP_REG_CR8] = "cr8", [VP_REG_EFER] = "efer",
    [VP_REG_KERNELGSBASE] = "k_gs_base", [VP_REG_FSBASE] = "fs_base",
    [VP_REG_GSBASE] = "gs_base",
};

void guest_target_init(guest_vm *vm) {
  for (int i = 0; i < VP_REG_COUNT; i++)
    vm->regmap[i] = reg_names[i] ? gdb_reg_find(vm->g, reg_names[i]) : -1;
  vm->rip = vm->regmap[VP_REG_RIP];
  vm->rsp = vm->regmap[VP_REG_RSP];
}

int guest_regs(guest_vm *vm) {
  if (vm->regs_ok) return 0;
  if (gdb_read_regs(vm->g, vm->regs) < 0) return -1;
  vm->regs_ok = 1;
  return 0;
}

int guest_reg(guest_vm *vm, int vpreg, uint64_t *val) {
  if (vpreg == VP_REG_VCPUID) {
    *val = (uint64_t)(vm->thread > 0 ? vm->thread - 1 : 0);
    return 0;
  }
  if (vpreg == VP_REG_NUMVCPUS) {
    *val = (uint64_t)vm->g->nthreads;
    return 0;
  }
  /* The VM runs during a trace-event fire: a byte on the stub would stop
   * it, so no registers. */
  if (vm->async || vpreg < 0 || vpreg >= VP_REG_COUNT || vm->regmap[vpreg] < 0) return -1;
  int r = vm->regmap[vpreg];
  if (vm->g->regs[r].offset < 0) return gdb_read_reg(vm->g, r, val);
  if (guest_regs(vm) < 0) return -1;
  *val = vm->regs[r];
  return 0;
}

static int t_reg(void *self, int reg, uint64_t *val) {
  return guest_reg(self, reg, val);
}

static int t_read(void *self, int model, uint64_t addr, void *buf, size_t n) {
  guest_vm *vm = self;
  if (vm->async) return -1;
  if (model == VP_MEM_GUESTPHYS) {
    if (gdb_phys(vm->g, 1) < 0) return -1;
    int r = gdb_read_mem(vm->g, addr, buf, n);
    gdb_phys(vm->g, 0);
    return r;
  }
  if (model != VP_MEM_DEFAULT && model != VP_MEM_GUEST) return -1;
  return gdb_read_mem(vm->g, addr, buf, n);
}

/* ---- gueststack ---- */

static const guest_page *code_page(guest_vm *vm, uint64_t page) {
  if (!vm->code && !(vm->code = calloc(GUEST_CODE_PAGES, sizeof *vm->code)))
    return NULL;
  guest_page *p = &vm->code[(page >> 12) % GUEST_CODE_PAGES];
  if (p->addr != page) {
    p->addr = page;
    p->ok = gdb_read_mem(vm->g, page, p->bytes, sizeof p->bytes) == 0;
  }
  return p->ok ? p : NULL;
}

int guest_code(guest_vm *vm, uint64_t addr, uint8_t *buf, size_t n) {
  for (size_t i = 0; i < n; i++) {
    const guest_page *p = code_page(vm, (addr + i) & ~4095ull);
    if (!p) return -1;
    buf[i] = p->bytes[(addr + i) & 4095];
  }
  return 0;
}

/* True if the instruction before ret is a call: `e8 rel32` (5 bytes) or an
 * indirect `ff /2` (2, 3, 6 or 7 bytes). */
static int after_call(guest_vm *vm, uint64_t ret) {
  uint8_t b[8];
  for (int i = 0; i < 8; i++) {
    uint64_t a = ret - 8 + (uint64_t)i;
    const guest_page *p = code_page(vm, a & ~4095ull);
    if (!p) return 0;
    b[i] = p->bytes[a & 4095];
  }
  if (b[3] == 0xe8) return 1;
  static const int lens[] = {2, 3, 6, 7};
  for (int i = 0; i < 4; i++) {
    int op = 8 - lens[i];
    if (b[op] == 0xff && ((b[op + 1] >> 3) & 7) == 2) return 1;
  }
  return 0;
}

static int append(char *out, size_t cap, size_t *len, const char *frame) {
  size_t fl = strlen(frame), sep = *len ? 1 : 0;
  if (*len + sep + fl + 1 > cap) return -1;
  if (sep) out[(*len)++] = ';';
  memcpy(out + *len, frame, fl + 1);
  *len += fl;
  return 0;
}

/* The kernel is built without frame pointers (ORC unwinder), so walk the
 * stack the way an oops does: every word on the stack that points into
 * kernel text just after a call instruction is a return address.  Frames
 * are innermost first, "sym+0xoff" (or 0xADDR), joined by ';'. */
int guest_stack(guest_vm *vm, char *out, size_t cap, int depth) {
  uint64_t rip, rsp;
  char buf[128];
  size_t len = 0;
  out[0] = 0;
  if (guest_reg(vm, VP_REG_RIP, &rip) < 0 || guest_reg(vm, VP_REG_RSP, &rsp) < 0)
    return -1;
  if (depth <= 0 || depth > 64) depth = 64;
  append(out, cap, &len, ksym_format(vm->syms, rip, buf, sizeof buf));
  if (!vm->syms || rip < vm->text_lo || rip >= vm->text_hi) return 0;
  /* One read of the stack up to its 16 KiB-aligned end (kernel stacks are
   * 16 KiB, aligned). */
  uint64_t words[256];
  uint64_t end = (rsp | 0x3fff) + 1, n = (end - rsp) / 8;
  if (n > 256) n = 256;
  if (n == 0 || gdb_read_mem(vm->g, rsp, words, n * 8) < 0) return 0;
  for (uint64_t i = 0; i < n && depth > 1; i++) {
    uint64_t w = words[i];
    if (w < vm->text_lo || w >= vm->text_hi || !after_call(vm, w)) continue;
    if (append(out, cap, &len, ksym_format(vm->syms, w, buf, sizeof buf)) < 0) break;
    depth--;
  }
  return 0;
}

/* ---- built-ins ---- */

/* An address argument: integer, or "symbol[+off]". */
static int addr_arg(guest_vm *vm, const uint64_t *iargs, const char *const *sargs,
                    int i, uint64_t *addr) {
  if (sargs && sargs[i]) return vm->syms ? ksym_resolve(vm->syms, sargs[i], addr) : -1;
  *addr = iargs[i];
  return 0;
}

/* A guest function's code: name, or __x64_sys_NAME for "sys_NAME" (system
 * call entry points were renamed in Linux 4.17), or NAME without leading
 * underscores. */
static const ksym *find_fn(guest_vm *vm, const char *name) {
  char alt[VP_NAME_MAX + 16];
  const ksym *k = vm->syms ? ksym_by_name(vm->syms, name) : NULL;
  if (!k && vm->syms && !strncmp(name, "sys_", 4)) {
    snprintf(alt, sizeof alt, "__x64_%s", name);
    k = ksym_by_name(vm->syms, alt);
  }
  if (!k && vm->syms) {
    snprintf(alt, sizeof alt, "__%s", name);
    k = ksym_by_name(vm->syms, alt);
  }
  return k;
}

static int offat(guest_vm *vm, const char *name, int strcpy_kind, uint64_t *ret) {
  const ksym *k = find_fn(vm, name);
  *ret = 0;
  if (!k) return 0;
  uint8_t code[512];
  if (gdb_read_mem(vm->g, k->addr, code, sizeof code) < 0) return -VP_EXC_MEM;
  int64_t off;
  int r = strcpy_kind ? x86dec_offatstrcpy(code, sizeof code, k->addr, &off)
                      : x86dec_offatret(code, sizeof code, k->addr, &off);
  if (r == 0) *ret = (uint64_t)off;
  return 0;
}

static int t_call(void *self, int fn, const uint64_t *iargs, const char *const *sargs,
                  int nargs, uint64_t *iret, char *sret) {
  guest_vm *vm = self;
  uint64_t addr;
  *iret = 0;
  if (vm->async && fn != VP_FN_SYM2ADDR && fn != VP_FN_VMNAME) return -VP_EXC_MEM;
  switch (fn) {
  case VP_FN_VMNAME: /* NAME of -m NAME:VM, else the VM as -m gave it */
    snprintf(sret, VP_STR_MAX, "%s", vm->cfg->name ? vm->cfg->name : vm->cfg->spec);
    return 0;
  case VP_FN_GETGUEST:
    if (addr_arg(vm, iargs, sargs, 0, &addr) < 0) return -VP_EXC_MEM;
    return gdb_read_mem(vm->g, addr, iret, 8) < 0 ? -VP_EXC_MEM : 0;
  case VP_FN_GETGUESTPHYS:
    return t_read(vm, VP_MEM_GUESTPHYS, iargs[0], iret, 8) < 0 ? -VP_EXC_MEM : 0;
  case VP_FN_GETGUESTSTR: {
    /* (strvar, addr-or-symbol [, offset]) */
    if (addr_arg(vm, iargs, sargs, 1, &addr) < 0) return -VP_EXC_MEM;
    if (nargs > 2) addr += iargs[2];
    if (vp_read_str(t_read, vm, VP_MEM_GUEST, addr, sret) < 0) return -VP_EXC_MEM;
    *iret = 1;
    return 0;
  }
  case VP_FN_GUESTSTACK:
    *iret = guest_stack(vm, sret, VP_STR_MAX, nargs > 1 ? (int)iargs[1] : 0) == 0;
    return 0;
  case VP_FN_SYM2ADDR:
    if (vm->syms && sargs && sargs[0]) ksym_resolve(vm->syms, sargs[0], iret);
    return 0;
  case VP_FN_OFFATRET:
  case VP_FN_OFFATSTRCPY:
    if (!sargs || !sargs[0]) return 0;
    return offat(vm, sargs[0], fn == VP_FN_OFFATSTRCPY, iret);
  default:
    /* curprocname/curpid come from the Linux preload, written in Emmett
     * on top of the built-ins above. */
    return -VP_EXC_MEM;
  }
}

const vp_target guest_target_ops = {NULL, t_reg, t_read, t_call};
