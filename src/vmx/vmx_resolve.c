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
 */
#include "vmx/vmx.h"

#include <fnmatch.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

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
                                    add_str(pl, name), VMX_HOW_NONE};
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

/* Points for every function matching pat; returns how many. */
static int add_functions(vmx_plan *pl, const esym_proc *p, int probe, int kind,
                         const char *prefix, const char *pat, uint64_t off,
                         const char *suffix, char *err, size_t cap) {
  int n = 0;
  for (size_t i = 0; i < p->nfns; i++) {
    const esym_fn *f = &p->fns[i];
    if (vmx_mod_hidden(&p->mods[f->mod]) || !fn_matches(p, f, pat)) continue;
    /* aliases (same address, sorted together): one point, under the
     * public-looking name ("nanosleep", not "__nanosleep") */
    while (i + 1 < p->nfns && p->fns[i + 1].addr == f->addr) {
      const esym_fn *g = &p->fns[++i];
      if (fn_matches(p, g, pat) && better_name(g->name, f->name)) f = g;
    }
    if (off && f->size && off >= f->size) {
      snprintf(err, cap, "%s%s%s: offset 0x%" PRIx64 " is past the end of %s (0x%" PRIx64 " bytes)",
               prefix, pat, suffix, off, f->name, f->size);
      return -1;
    }
    char name[512];
    snprintf(name, sizeof name, "%s%s.%s%s", prefix, p->mods[f->mod].name,
             f->name, suffix);
    add_point(pl, probe, kind, f->addr + off, name);
    n++;
  }
  return n;
}

/* Parse "N" followed by unit; returns -1 if it is not a number. */
static int parse_num(const char *s, uint64_t *v, const char **end) {
  char *e;
  if (*s < '0' || *s > '9') return -1;
  *v = strtoull(s, &e, 0);
  *end = e;
  return 0;
}

static int resolve_one(vmx_plan *pl, const esym_proc *p, int probe,
                       const char *written, char *err, size_t cap) {
  char name[512];
  snprintf(name, sizeof name, "%s", written);
  name[strcspn(name, "(")] = 0; /* typed parameters are the script's */
  const char *end;
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
  if (strncmp(name, "USEC:", 5) == 0 && parse_num(name + 5, &v, &end) == 0 &&
      !*end && v) {
    add_point(pl, probe, VMX_PT_TIMER, v * 1000, name);
    return 0;
  }
  if (strncmp(name, "VMX:PROFILE:", 12) == 0 &&
      parse_num(name + 12, &v, &end) == 0 && v &&
      (!*end || strcmp(end, "msec") == 0 || strcmp(end, "ms") == 0)) {
    add_point(pl, probe, VMX_PT_PROFILE, v * 1000000ull, name);
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
    if (esym_mod_at(p, v) < 0) {
      snprintf(err, cap, "%s: address not in any mapped object of process %d", name, p->pid);
      return -1;
    }
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
  build_syms(pl, p);
  return 0;
}

void vmx_plan_free(vmx_plan *pl) {
  free(pl->pts);
  free(pl->syms);
  free(pl->str);
  memset(pl, 0, sizeof *pl);
}
