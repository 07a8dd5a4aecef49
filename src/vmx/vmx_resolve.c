/*
 * vmx_resolve.c - probe names to points in one process, and the symbol
 * table the agent uses for vmxstack.
 *
 *   VMX:ENTER:[module.]function   VMX:EXIT:...   (globs * ? over both parts)
 *   VMX:OFFSET:[module.]function:0xNN             VMX:0xADDRESS
 *   VMX:PROFILE:Nmsec   VMXLoad VMXUnload VMX1Hz VMX10Hz USEC:N
 *
 * A function pattern "a.b" is tried both as module "a", function "b" and as
 * a function named "a.b" (compilers make "f.cold", "f.part.0").  Aliases
 * (several names at one address) give one point, named after the first.
 *
 * A probe goes only where an instruction starts: OFFSET and address probes
 * are checked by decoding the function from its entry (a jump written over
 * the middle of an instruction corrupts it).  Some functions are never
 * probed (vmx_never says which and why).  A name without glob characters
 * that hits one of them, or an offset that is not a boundary, is refused
 * with the reason; a glob skips such functions and says so only when it
 * skipped every function it matched.  An address outside every known
 * function is refused: its instruction boundaries cannot be known.
 *
 * Each code point gets its room: how many bytes a jump written there may
 * displace before it covers an address other code jumps to.  The agent
 * checks only the branches of the function it patches, and hand-written
 * assembly (glibc's string functions) jumps from one function to a label
 * a few bytes into the next; so the controller sweeps the whole
 * executable code of each probed module once, from the file, and collects
 * every relative branch and call target, every code address taken and
 * every symbol start.  The other points of the same load count too: a
 * jump must not cover a byte another point patches.
 */
#include "vmx/vmx.h"

#include <fnmatch.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <Zydis/Zydis.h>

#include "vp/probename.h"
#include "vp/vp.h"

int vmx_mod_hidden(const esym_mod *m) {
  const char *b = strrchr(m->path, '/');
  return strcmp(b ? b + 1 : m->path, VMX_AGENT_LIB) == 0;
}

static uint32_t add_str(vmx_plan *pl, const char *s) {
  size_t n = strlen(s) + 1;
  if (pl->slen + n > pl->scap) {
    pl->scap = (uint32_t)((pl->slen + n) * 2 + 4096);
    pl->str = realloc(pl->str, pl->scap);
  }
  uint32_t off = pl->slen;
  memcpy(pl->str + off, s, n);
  pl->slen += (uint32_t)n;
  return off;
}

static void add_point(vmx_plan *pl, int probe, int kind, uint64_t addr,
                      const char *name) {
  if (pl->npts == pl->ptcap) {
    pl->ptcap = pl->ptcap ? pl->ptcap * 2 : 64;
    pl->pts = realloc(pl->pts, pl->ptcap * sizeof *pl->pts);
  }
  pl->pts[pl->npts++] = (vmx_point){addr, (uint32_t)probe, (uint32_t)kind,
                                    add_str(pl, name), VMX_HOW_NONE, 0, 0};
}

/* Does function f (in p) match pattern pat ([module.]function)? */
static int fn_matches(const esym_proc *p, const esym_fn *f, const char *pat) {
  if (fnmatch(pat, f->name, 0) == 0) return 1;
  const char *dot = strchr(pat, '.');
  if (!dot) return 0;
  char mod[256];
  size_t n = (size_t)(dot - pat);
  if (n >= sizeof mod) return 0;
  memcpy(mod, pat, n);
  mod[n] = 0;
  return fnmatch(mod, p->mods[f->mod].name, 0) == 0 &&
         fnmatch(dot + 1, f->name, 0) == 0;
}

/* Of two names of one function, the one a user would write. */
static int better_name(const char *a, const char *b) {
  int ua = a[0] == '_', ub = b[0] == '_';
  if (ua != ub) return ub;
  return strlen(a) < strlen(b);
}

/* Functions never probed, by name (glob), with why.  Each runs where a
 * probe's fire cannot be survived or where a patch cannot be undone. */
static const struct { const char *mod, *fn, *why; } never_names[] = {
  /* sa_restorer: every signal handler returns through it (the agent's trap
   * handler too, so a trap site there would trap forever), and unwinders
   * (libgcc, gdb) recognize a signal frame by its exact bytes */
  {"*", "__restore_rt", "signal return"},
  /* lazy binding: runs between a PLT stub and its target with the
   * arguments live in saved registers, on the first call of any function,
   * the agent's own and in signal handlers */
  {"ld-linux*", "_dl_runtime_resolve*", "lazy binding resolver"},
  {"ld-linux*", "_dl_runtime_profile*", "lazy binding resolver"},
  {"ld-linux*", "_dl_fixup", "lazy binding resolver"},
  {"ld-linux*", "_dl_profile_fixup", "lazy binding resolver"},
  /* thread-local storage: callers compiled for the general dynamic model
   * may call it with a misaligned stack, and TLS descriptors expect every
   * register preserved; the fire path cannot promise either */
  {"ld-linux*", "__tls_get_addr", "thread-local storage access"},
  {"ld-linux*", "___tls_get_addr", "thread-local storage access"},
  {"ld-linux*", "_dl_tlsdesc_*", "thread-local storage access"},
};

const char *vmx_never(const esym_proc *p, const esym_fn *f) {
  const esym_mod *m = &p->mods[f->mod];
  /* the agent: a probe there would fire inside the probe machinery */
  if (vmx_mod_hidden(m)) return "the vprobe agent itself";
  if (f->flags & ESYM_SIGRETURN) return "signal return";
  for (size_t i = 0; i < sizeof never_names / sizeof never_names[0]; i++)
    if (fnmatch(never_names[i].mod, m->name, 0) == 0 &&
        fnmatch(never_names[i].fn, f->name, 0) == 0)
      return never_names[i].why;
  return NULL;
}

uint64_t vmx_fn_extent(const esym_proc *p, const esym_fn *f) {
  if (f->size) return f->size;
  const esym_mod *m = &p->mods[f->mod];
  uint64_t end = m->hi > f->addr ? m->hi : f->addr;
  for (size_t i = (size_t)(f - p->fns) + 1; p->fns <= f && i < p->nfns; i++)
    if (p->fns[i].mod == f->mod && p->fns[i].addr > f->addr) {
      end = p->fns[i].addr;
      break;
    }
  return end - f->addr;
}

const esym_fn *vmx_fn_at(const esym_proc *p, uint64_t addr) {
  size_t lo = 0, hi = p->nfns; /* first fn with addr > target */
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    if (p->fns[mid].addr <= addr) lo = mid + 1; else hi = mid;
  }
  /* several functions may hold it (a local symbol inside a bigger one):
   * the nearest start below wins, looking a few symbols back */
  for (size_t i = lo, k = 0; i-- > 0 && k < 64; k++) {
    const esym_fn *f = &p->fns[i];
    if (addr - f->addr < vmx_fn_extent(p, f)) return f;
  }
  return NULL;
}

int vmx_insn_at(const uint8_t *code, size_t n, uint64_t pc, uint64_t off, vmx_insn *in) {
  ZydisDecoder d;
  ZydisDecodedInstruction zi;
  ZydisDecodedOperand ops[ZYDIS_MAX_OPERAND_COUNT];
  ZydisDecoderInit(&d, ZYDIS_MACHINE_MODE_LONG_64, ZYDIS_STACK_WIDTH_64);
  uint64_t pos = 0;
  memset(in, 0, sizeof *in);
  while (pos < off) {
    in->start = pos;
    if (pos >= n || !ZYAN_SUCCESS(ZydisDecoderDecodeFull(&d, code + pos, n - pos, &zi, ops)))
      return -1;
    in->len = zi.length;
    pos += zi.length;
  }
  if (pos == off) return 0;
  ZydisFormatter fm;
  ZydisFormatterInit(&fm, ZYDIS_FORMATTER_STYLE_INTEL);
  if (!ZYAN_SUCCESS(ZydisFormatterFormatInstruction(&fm, &zi, ops, zi.operand_count_visible,
                                                    in->text, sizeof in->text,
                                                    pc + in->start, NULL)))
    snprintf(in->text, sizeof in->text, "?");
  return 1;
}

/* Can a probe go at offset off of f?  0 yes, else why in err. */
static int check_offset(const esym_proc *p, const esym_fn *f, uint64_t off, char *err,
                        size_t cap) {
  if (off == 0) return 0; /* the entry: always an instruction */
  uint64_t ext = vmx_fn_extent(p, f);
  if (off >= ext) {
    snprintf(err, cap, "offset 0x%" PRIx64 " is past the end of %s (0x%" PRIx64 " bytes)",
             off, f->name, ext);
    return -1;
  }
  size_t n = (size_t)(off + 15 < ext ? off + 15 : ext);
  uint8_t *code = malloc(n);
  vmx_insn in;
  size_t got = code ? esym_code(p, f->addr, code, n) : 0;
  int r = got ? vmx_insn_at(code, got, f->addr, off, &in) : -2;
  free(code);
  if (r == 1)
    snprintf(err, cap, "inside the instruction at %s+0x%" PRIx64 " (%s, %u bytes); nearest"
             " boundaries +0x%" PRIx64 " and +0x%" PRIx64, f->name, in.start, in.text, in.len,
             in.start, in.start + in.len);
  else if (r == -1)
    snprintf(err, cap, "the code of %s does not decode at +0x%" PRIx64, f->name, in.start);
  else if (r == -2)
    snprintf(err, cap, "cannot read the code of %s", f->name);
  return r ? -1 : 0;
}

/* Points for every function matching pat; returns how many.  A glob
 * skips the functions that cannot take the probe (the first one's reason
 * in skip, for when it skipped them all). */
static int add_functions(vmx_plan *pl, const esym_proc *p, int probe, int kind,
                         const char *prefix, const char *pat, uint64_t off,
                         const char *suffix, char *err, size_t cap) {
  int n = 0, glob = strpbrk(pat, "*?[") != NULL, skipped = 0;
  char why[300], skip[400] = "";
  for (size_t i = 0; i < p->nfns; i++) {
    const esym_fn *f = &p->fns[i];
    if (!fn_matches(p, f, pat)) continue;
    /* aliases (same address, sorted together): one point, under the
     * public-looking name ("nanosleep", not "__nanosleep") */
    while (i + 1 < p->nfns && p->fns[i + 1].addr == f->addr) {
      const esym_fn *g = &p->fns[++i];
      if (fn_matches(p, g, pat) && better_name(g->name, f->name)) f = g;
    }
    const char *nv = vmx_never(p, f);
    if (nv) snprintf(why, sizeof why, "%s.%s is never probed: %s", p->mods[f->mod].name,
                     f->name, nv);
    if (nv || check_offset(p, f, off, why, sizeof why) != 0) {
      if (!glob) {
        snprintf(err, cap, "%s%s%s: %s", prefix, pat, suffix, why);
        return -1;
      }
      if (!skipped++) snprintf(skip, sizeof skip, "%s", why);
      continue;
    }
    char name[512];
    snprintf(name, sizeof name, "%s%s.%s%s", prefix, p->mods[f->mod].name,
             f->name, suffix);
    add_point(pl, probe, kind, f->addr + off, name);
    n++;
  }
  if (n == 0 && skipped) {
    snprintf(err, cap, "%s%s%s: every match skipped (%d: %s%s)", prefix, pat, suffix, skipped,
             skip, skipped > 1 ? "..." : "");
    return -1;
  }
  if (n == 0)
    for (size_t i = 0; i < p->nunresolved; i++)
      if (fn_matches(p, &p->unresolved[i], pat)) {
        snprintf(err, cap, "%s%s%s: %s.%s is an IFUNC whose implementation in process %d"
                 " is %s", prefix, pat, suffix, p->mods[p->unresolved[i].mod].name,
                 p->unresolved[i].name, p->pid, p->unresolved[i].flags & ESYM_ELSEWHERE
                 ? "outside its object (the vDSO's, never probed)" : "unknown");
        return -1;
      }
  return n;
}

/* The special mapping ([vdso], [vsyscall], [vvar]) holding addr, in out. */
static int special_at(int pid, uint64_t addr, char *out, size_t cap) {
  char fn[64], line[512];
  snprintf(fn, sizeof fn, "/proc/%d/maps", esym_live_tid(pid));
  FILE *f = fopen(fn, "re");
  int found = 0;
  while (f && !found && fgets(line, sizeof line, f)) {
    unsigned long long lo, hi;
    int pos = 0;
    if (sscanf(line, "%llx-%llx %*s %*s %*s %*s %n", &lo, &hi, &pos) < 2 || !pos) continue;
    line[strcspn(line, "\n")] = 0;
    found = addr >= lo && addr < hi && line[pos] == '[' && strcmp(line + pos, "[heap]") &&
            strncmp(line + pos, "[stack", 6) && strncmp(line + pos, "[anon", 5);
    if (found) snprintf(out, cap, "%s", line + pos);
  }
  if (f) fclose(f);
  return found;
}

/* VMX:0xADDR: only where an instruction of a known function starts. */
static int check_addr(const esym_proc *p, const char *name, uint64_t v, char *err,
                      size_t cap) {
  char sp[64], why[300];
  uint8_t code[16];
  if (special_at(p->pid, v, sp, sizeof sp)) {
    /* the kernel's code: no file to restore it from (-r) */
    snprintf(err, cap, "%s: in %s, never probed: code the kernel provides", name, sp);
    return -1;
  }
  int m = esym_mod_at(p, v);
  if (m < 0) {
    snprintf(err, cap, "%s: address not in any mapped object of process %d", name, p->pid);
    return -1;
  }
  size_t got = esym_code(p, v, code, sizeof code);
  const esym_fn *f = vmx_fn_at(p, v);
  const char *nv = f ? vmx_never(p, f) : vmx_mod_hidden(&p->mods[m]) ? "the vprobe agent itself"
                 : NULL;
  if (!nv && esym_is_sigreturn(code, got)) nv = "signal return";
  if (nv) {
    snprintf(err, cap, "%s: never probed: %s", name, nv);
    return -1;
  }
  if (!f) {
    snprintf(err, cap, "%s: not in any known function of %s: its instruction boundaries "
             "are unknown", name, p->mods[m].name);
    return -1;
  }
  if (check_offset(p, f, v - f->addr, why, sizeof why) != 0) {
    snprintf(err, cap, "%s: %s", name, why);
    return -1;
  }
  return 0;
}

static int resolve_one(vmx_plan *pl, const esym_proc *p, int probe,
                       const char *written, char *err, size_t cap) {
  char name[512];
  snprintf(name, sizeof name, "%s", written);
  name[strcspn(name, "(")] = 0; /* typed parameters are the script's */
  uint64_t v;
  struct { const char *name; uint64_t period; } timers[] = {
    {"VMXLoad", 0}, {"VMXUnload", UINT64_MAX}, {"VMX1Hz", 1000000000ull},
    {"VMX10Hz", 100000000ull},
  };
  for (size_t i = 0; i < sizeof timers / sizeof timers[0]; i++)
    if (strcmp(name, timers[i].name) == 0) {
      add_point(pl, probe, VMX_PT_TIMER, timers[i].period, name);
      return 0;
    }
  /* periods are decimal as in every domain (probename.c): USEC:0100 is
   * 100 us here too */
  int periodic = vpn_period(name, &v, err, cap);
  if (periodic < 0) return -1;
  if (periodic && strncmp(name, "USEC:", 5) == 0) {
    add_point(pl, probe, VMX_PT_TIMER, v, name);
    return 0;
  }
  if (periodic && strncmp(name, "VMX:PROFILE:", 12) == 0) {
    add_point(pl, probe, VMX_PT_PROFILE, v, name);
    return 0;
  }
  int kind = -1;
  const char *loc = NULL;
  if (strncmp(name, "VMX:ENTER:", 10) == 0) kind = VMX_PT_ENTER, loc = name + 10;
  else if (strncmp(name, "VMX:EXIT:", 9) == 0) kind = VMX_PT_EXIT, loc = name + 9;
  else if (strncmp(name, "VMX:OFFSET:", 11) == 0) kind = VMX_PT_OFFSET, loc = name + 11;
  else if (strncmp(name, "VMX:0x", 6) == 0 || strncmp(name, "VMX:0X", 6) == 0) {
    char *e;
    v = strtoull(name + 4, &e, 16);
    if (*e || !v) {
      snprintf(err, cap, "%s: bad address", name);
      return -1;
    }
    if (check_addr(p, name, v, err, cap) != 0) return -1;
    add_point(pl, probe, VMX_PT_ADDR, v, name);
    return 0;
  }
  if (kind < 0 || !*loc) {
    snprintf(err, cap, "%s: not a VMX probe point", name);
    return -1;
  }
  char pat[512], suffix[64] = "", prefix[32];
  uint64_t off = 0;
  snprintf(pat, sizeof pat, "%s", loc);
  snprintf(prefix, sizeof prefix, "%.*s", (int)(loc - name), name);
  if (kind == VMX_PT_OFFSET) {
    char *c = strrchr(pat, ':');
    char *e = NULL;
    if (c) off = strtoull(c + 1, &e, 0);
    if (!c || c == pat || !e || *e || e == c + 1) {
      snprintf(err, cap, "%s: expected VMX:OFFSET:function:0xNN", name);
      return -1;
    }
    snprintf(suffix, sizeof suffix, "%s", c);
    *c = 0;
  }
  int n = add_functions(pl, p, probe, kind, prefix, pat, off, suffix, err, cap);
  if (n < 0) return -1;
  if (n == 0) {
    snprintf(err, cap, "%s: no function matches in process %d", name, p->pid);
    return -1;
  }
  return 0;
}

static int sym_cmp(const void *a, const void *b) {
  const vmx_sym *x = a, *y = b;
  return x->addr < y->addr ? -1 : x->addr > y->addr;
}

static void build_syms(vmx_plan *pl, const esym_proc *p) {
  pl->syms = calloc(p->nfns ? p->nfns : 1, sizeof *pl->syms);
  pl->nsyms = 0;
  for (size_t i = 0; i < p->nfns; i++) {
    const esym_fn *f = &p->fns[i];
    while (i + 1 < p->nfns && p->fns[i + 1].addr == f->addr) {
      const esym_fn *g = &p->fns[++i];
      if (better_name(g->name, f->name) || (!f->size && g->size)) f = g;
    }
    char name[512];
    snprintf(name, sizeof name, "%s.%s", p->mods[f->mod].name, f->name);
    pl->syms[pl->nsyms++] = (vmx_sym){f->addr, f->size, add_str(pl, name), 0};
  }
  qsort(pl->syms, pl->nsyms, sizeof *pl->syms, sym_cmp);
}

/* ---- room: what a jump at a point may cover ---- */

#define ROOM_MAX 255

typedef struct tvec {
  uint64_t *v;
  size_t n, cap;
  uint64_t lo, hi; /* the module: targets elsewhere do not matter */
  int oom;
} tvec;

static void tpush(tvec *t, uint64_t a) {
  if (a < t->lo || a >= t->hi || t->oom) return;
  if (t->n == t->cap) {
    size_t cap = t->cap ? t->cap * 2 : 4096;
    uint64_t *v = realloc(t->v, cap * sizeof *v);
    if (!v) {
      t->oom = 1;
      return;
    }
    t->v = v, t->cap = cap;
  }
  t->v[t->n++] = a;
}

/* A linear sweep: bytes that do not decode (data, padding) are stepped
 * over one at a time; a sweep that strays into data only adds targets,
 * which costs a trap site, never a wrong jump. */
static void sweep(void *ctx, uint64_t addr, const uint8_t *code, size_t n) {
  tvec *t = ctx;
  ZydisDecoder d;
  ZydisDecodedInstruction in;
  ZydisDecoderInit(&d, ZYDIS_MACHINE_MODE_LONG_64, ZYDIS_STACK_WIDTH_64);
  for (size_t pos = 0; pos < n;) {
    if (!ZYAN_SUCCESS(ZydisDecoderDecodeInstruction(&d, NULL, code + pos, n - pos, &in))) {
      pos++;
      continue;
    }
    uint64_t next = addr + pos + in.length;
    if (in.raw.imm[0].is_relative)
      tpush(t, next + (uint64_t)in.raw.imm[0].value.s);
    else if (in.mnemonic == ZYDIS_MNEMONIC_LEA && (in.attributes & ZYDIS_ATTRIB_IS_RELATIVE))
      tpush(t, next + (uint64_t)in.raw.disp.value);
    pos += in.length;
  }
}

static int u64_cmp(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

long vmx_code_targets(const esym_proc *p, int m, uint64_t **out) {
  tvec t = {NULL, 0, 0, p->mods[m].lo, p->mods[m].hi, 0};
  *out = NULL;
  if (esym_exec_code(p, m, sweep, &t) < 0) return -1;
  for (size_t i = 0; i < p->nfns; i++)
    if (p->fns[i].mod == m) tpush(&t, p->fns[i].addr);
  if (t.oom) {
    free(t.v);
    return -1;
  }
  if (t.n) qsort(t.v, t.n, sizeof *t.v, u64_cmp);
  size_t k = 0;
  for (size_t i = 0; i < t.n; i++)
    if (!k || t.v[i] != t.v[k - 1]) t.v[k++] = t.v[i];
  *out = t.v;
  return (long)k;
}

/* The first of v[0..n) above a, or UINT64_MAX. */
static uint64_t next_above(const uint64_t *v, size_t n, uint64_t a) {
  size_t lo = 0, hi = n;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    if (v[mid] <= a) lo = mid + 1; else hi = mid;
  }
  return lo < n ? v[lo] : UINT64_MAX;
}

static int is_code_kind(uint32_t k) {
  return k == VMX_PT_ENTER || k == VMX_PT_EXIT || k == VMX_PT_OFFSET || k == VMX_PT_ADDR;
}

void vmx_set_rooms(vmx_plan *pl, const esym_proc *p) {
  size_t nc = 0;
  uint64_t *pts = malloc((pl->npts ? pl->npts : 1) * sizeof *pts);
  if (!pts) return;
  for (uint32_t i = 0; i < pl->npts; i++)
    if (is_code_kind(pl->pts[i].kind)) pts[nc++] = pl->pts[i].addr;
  qsort(pts, nc, sizeof *pts, u64_cmp);
  /* one module at a time, each swept once, its targets freed after */
  for (int m = 0; m < p->nmods; m++) {
    uint64_t *tg = NULL;
    long nt = -2;
    for (uint32_t i = 0; i < pl->npts; i++) {
      vmx_point *pt = &pl->pts[i];
      if (!is_code_kind(pt->kind) || esym_mod_at(p, pt->addr) != m) continue;
      if (nt == -2) nt = vmx_code_targets(p, m, &tg);
      uint64_t nx = next_above(pts, nc, pt->addr);
      if (nt > 0) {
        uint64_t t = next_above(tg, (size_t)nt, pt->addr);
        if (t < nx) nx = t;
      }
      /* a module that cannot be read: the other points still count */
      if (nx != UINT64_MAX || nt >= 0)
        pt->room = nx - pt->addr < ROOM_MAX ? (uint32_t)(nx - pt->addr) : ROOM_MAX;
    }
    free(tg);
  }
  free(pts);
}

int vmx_resolve(vmx_plan *pl, const vp_image *img, const esym_proc *p,
                char *err, size_t cap) {
  memset(pl, 0, sizeof *pl);
  add_str(pl, ""); /* offset 0: the empty string */
  int n = vp_image_nprobes(img), only_load = 1;
  for (int i = 0; i < n; i++) {
    const char *name = vp_image_probe(img, i);
    int dom = vp_probe_domain(name);
    if (!(dom & (VP_DOM_VMX | VP_DOM_LOCAL))) continue; /* another engine's */
    uint32_t first = pl->npts;
    if (resolve_one(pl, p, i, name, err, cap) != 0) {
      vmx_plan_free(pl);
      return -1;
    }
    for (uint32_t j = first; j < pl->npts; j++)
      if (pl->pts[j].kind != VMX_PT_TIMER ||
          (pl->pts[j].addr != 0 && pl->pts[j].addr != UINT64_MAX))
        only_load = 0;
  }
  pl->only_load = only_load;
  vmx_set_rooms(pl, p);
  build_syms(pl, p);
  return 0;
}

void vmx_plan_free(vmx_plan *pl) {
  free(pl->pts);
  free(pl->syms);
  free(pl->str);
  memset(pl, 0, sizeof *pl);
}
