/*
 * vmx_unwind.c - the unwind table from .eh_frame (vmx_unwind.h).
 *
 * For each object: the start of every FDE (from .eh_frame_hdr's sorted
 * table, or the object's function symbols when it has none), then from
 * each start libdw's rows one after the other (dwarf_cfi_addrframe gives
 * the rule and the [start,end) it holds for).  A row becomes an entry when
 * its rule is one of the simple forms of proto.h; anything else (PLT
 * expressions, DRAP-realigned frames) is left to the frame-pointer walk.
 */
#include "vmx/vmx_unwind.h"

#include <dwarf.h>
#include <elfutils/libdw.h>
#include <fcntl.h>
#include <gelf.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vmx/vmx.h"

#define DW_REG_RBP 6 /* DWARF x86-64 register numbers */
#define DW_REG_RSP 7
#define DW_REG_RA 16
#define ROWS_PER_FDE 100000 /* a runaway guard, far above real code */

typedef struct table {
  vmx_unwind *e;
  uint32_t n, cap;
} table;

static int push(table *t, const vmx_unwind *u) {
  vmx_unwind *last = t->n ? &t->e[t->n - 1] : NULL;
  if (last && last->start + last->len == u->start && last->cfa_reg == u->cfa_reg &&
      last->cfa_off == u->cfa_off && last->rbp_saved == u->rbp_saved &&
      last->rbp_off == u->rbp_off && (uint64_t)last->len + u->len <= UINT32_MAX) {
    last->len += u->len; /* same rule, contiguous: one entry */
    return 0;
  }
  if (t->n == t->cap) {
    uint32_t cap = t->cap ? t->cap * 2 : 4096;
    vmx_unwind *e = realloc(t->e, (size_t)cap * sizeof *e);
    if (!e) return -1;
    t->e = e, t->cap = cap;
  }
  t->e[t->n++] = *u;
  return 0;
}

/* Register reg saved at CFA+*off (1), unchanged (0), or anything else (-1). */
static int saved_at(Dwarf_Frame *fr, int reg, int64_t *off) {
  Dwarf_Op mem[3], *ops;
  size_t n;
  if (dwarf_frame_register(fr, reg, mem, &ops, &n) != 0) return -1;
  if (n == 0) return 0; /* same value, or undefined: the walk keeps it */
  if (ops[0].atom != DW_OP_call_frame_cfa) return -1;
  if (n == 1) return *off = 0, 1;
  if (n == 2 && ops[1].atom == DW_OP_plus_uconst) return *off = (int64_t)ops[1].number, 1;
  return -1;
}

/* The entry for one row, or -1 when its rule is not a simple one. */
static int simple_rule(Dwarf_Frame *fr, vmx_unwind *u) {
  Dwarf_Op *ops;
  size_t n;
  int64_t ra, rbp = 0;
  if (dwarf_frame_cfa(fr, &ops, &n) != 0 || n != 1 || ops[0].atom != DW_OP_bregx)
    return -1;
  if (ops[0].number != DW_REG_RSP && ops[0].number != DW_REG_RBP) return -1;
  int64_t cfa = (int64_t)ops[0].number2;
  if (cfa < 16 - (1 << 30) || cfa > (1 << 30)) return -1;
  if (saved_at(fr, DW_REG_RA, &ra) != 1 || ra != -8) return -1;
  int s = saved_at(fr, DW_REG_RBP, &rbp);
  if (s < 0 || rbp < INT16_MIN || rbp > INT16_MAX) return -1;
  u->cfa_reg = ops[0].number == DW_REG_RSP ? VMX_UW_RSP : VMX_UW_RBP;
  u->cfa_off = (int32_t)cfa;
  u->rbp_saved = (uint8_t)s;
  u->rbp_off = (int16_t)rbp;
  return 0;
}

/* The section called name, or NULL. */
static Elf_Scn *section(Elf *elf, const char *name, GElf_Shdr *sh) {
  size_t strndx;
  if (elf_getshdrstrndx(elf, &strndx) != 0) return NULL;
  for (Elf_Scn *s = NULL; (s = elf_nextscn(elf, s));) {
    const char *n = gelf_getshdr(s, sh) ? elf_strptr(elf, strndx, sh->sh_name) : NULL;
    if (n && strcmp(n, name) == 0) return s;
  }
  return NULL;
}

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

/* FDE starts (link-time addresses) from .eh_frame_hdr's binary search
 * table, in the common encoding (datarel sdata4); -1 if it has none. */
static long hdr_starts(Elf *elf, uint64_t **out) {
  GElf_Shdr sh;
  Elf_Scn *s = section(elf, ".eh_frame_hdr", &sh);
  Elf_Data *d = s ? elf_getdata(s, NULL) : NULL;
  if (!d || !d->d_buf || d->d_size < 12) return -1;
  const unsigned char *b = d->d_buf;
  size_t psize = (b[1] & 0x0f) == 0x03 || (b[1] & 0x0f) == 0x0b ? 4
               : (b[1] & 0x0f) == 0x04 || (b[1] & 0x0f) == 0x0c ? 8 : 0;
  if (b[0] != 1 || !psize || b[2] != 0x03 || b[3] != 0x3b) return -1;
  uint32_t count;
  memcpy(&count, b + 4 + psize, 4);
  size_t at = 8 + psize;
  if (count > (d->d_size - at) / 8) return -1;
  uint64_t *v = malloc((count ? count : 1) * sizeof *v);
  if (!v) return -1;
  for (uint32_t i = 0; i < count; i++) {
    int32_t loc;
    memcpy(&loc, b + at + (size_t)i * 8, 4);
    v[i] = sh.sh_addr + (uint64_t)(int64_t)loc;
  }
  *out = v;
  return count;
}

/* FDE starts from the function symbols of module m instead. */
static long sym_starts(const esym_proc *p, int m, uint64_t **out) {
  uint64_t *v = malloc((p->nfns ? p->nfns : 1) * sizeof *v);
  long n = 0;
  if (!v) return -1;
  for (size_t i = 0; i < p->nfns; i++)
    if (p->fns[i].mod == m) v[n++] = p->fns[i].addr - p->mods[m].bias;
  *out = v;
  return n;
}

/* The rows of one object (already open) into t; -1 when it passes the cap. */
static int object_rows(const esym_proc *p, int m, Elf *elf, table *t) {
  Dwarf_CFI *cfi = dwarf_getcfi_elf(elf);
  if (!cfi) return 0;
  uint64_t *starts = NULL;
  long n = hdr_starts(elf, &starts);
  if (n < 0) n = sym_starts(p, m, &starts);
  if (n < 0) {
    dwarf_cfi_end(cfi);
    return 0;
  }
  qsort(starts, (size_t)n, sizeof *starts, cmp_u64);
  uint64_t bias = p->mods[m].bias, pc = 0;
  int rc = 0;
  for (long i = 0; i < n && rc == 0; i++) {
    if (starts[i] < pc) continue; /* covered by the rows before */
    pc = starts[i];
    for (int k = 0; k < ROWS_PER_FDE; k++) {
      Dwarf_Frame *fr;
      Dwarf_Addr a, b;
      bool sig;
      if (dwarf_cfi_addrframe(cfi, pc, &fr) != 0) break;
      vmx_unwind u = {0};
      int ok = dwarf_frame_info(fr, &a, &b, &sig) >= 0 && b > pc && b - pc <= UINT32_MAX &&
               !sig && simple_rule(fr, &u) == 0;
      free(fr);
      if (!(b > pc)) break;
      if (ok) {
        u.start = bias + pc, u.len = (uint32_t)(b - pc);
        if (t->n >= VMX_UNWIND_MAX || push(t, &u) != 0) {
          rc = -1;
          break;
        }
      }
      pc = b;
    }
  }
  free(starts);
  dwarf_cfi_end(cfi);
  return rc;
}

static int cmp_unwind(const void *a, const void *b) {
  const vmx_unwind *x = a, *y = b;
  return x->start < y->start ? -1 : x->start > y->start;
}

uint32_t vmx_unwind_build(const esym_proc *p, vmx_unwind **out) {
  table t = {0};
  elf_version(EV_CURRENT);
  for (int m = 0; m < p->nmods; m++) {
    const esym_mod *mod = &p->mods[m];
    if (mod->path[0] != '/' || vmx_mod_hidden(mod)) continue; /* [vdso], the agent */
    int fd = open(mod->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) continue;
    Elf *elf = elf_begin(fd, ELF_C_READ_MMAP, NULL);
    uint32_t before = t.n;
    /* Past the cap the whole object is left out, not a part of it: a
     * half-covered object would mix the two walks unpredictably. */
    if (elf && object_rows(p, m, elf, &t) != 0) t.n = before;
    if (elf) elf_end(elf);
    close(fd);
  }
  /* Objects come in map order, not address order; rows within one are
   * already sorted, and ranges never overlap. */
  if (t.n) qsort(t.e, t.n, sizeof *t.e, cmp_unwind);
  *out = t.e;
  return t.n;
}
