/*
 * ksym.c - kallsyms tables (see ksym.h).
 *
 * All names live in one buffer; the symbols sit in an array sorted by
 * address, and an index sorted by name serves exact lookups by binary
 * search.  87k lines of a Debian kernel load in a few milliseconds.
 */
#include "sym/ksym.h"

#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct ksym_table {
  ksym *syms;      /* by address */
  size_t n;
  uint32_t *byname; /* indexes into syms, by name */
  char *names;
  int linux_like;
};

/* Symbols below this address are offsets (per-CPU) or absolute values. */
#define KSYM_KERNEL_HALF 0xffff800000000000ull

static int by_addr(const void *a, const void *b) {
  const ksym *x = a, *y = b;
  if (x->addr != y->addr) return x->addr < y->addr ? -1 : 1;
  /* Kernel image before modules, then global before local names. */
  if (!x->module != !y->module) return x->module ? 1 : -1;
  int gx = x->type >= 'A' && x->type <= 'Z', gy = y->type >= 'A' && y->type <= 'Z';
  if (gx != gy) return gx ? -1 : 1;
  return strcmp(x->name, y->name);
}

static int name_cmp(const ksym *x, const ksym *y) {
  int c = strcmp(x->name, y->name);
  if (c) return c;
  if (!x->module != !y->module) return x->module ? 1 : -1;
  return x->addr < y->addr ? -1 : x->addr > y->addr;
}

static int by_name(const void *a, const void *b, void *ctx) {
  const ksym *s = ctx;
  return name_cmp(&s[*(const uint32_t *)a], &s[*(const uint32_t *)b]);
}

ksym_table *ksym_parse(const char *text, size_t len, const char *file,
                       char *err, size_t errcap) {
  ksym_table *t = calloc(1, sizeof *t);
  if (!t) goto oom;
  size_t lines = 1;
  for (size_t i = 0; i < len; i++) lines += text[i] == '\n';
  t->syms = malloc(lines * sizeof *t->syms);
  t->names = malloc(len + 1);
  if (!t->syms || !t->names) goto oom;
  memcpy(t->names, text, len);
  t->names[len] = 0;
  char *p = t->names, *end = t->names + len;
  for (size_t lineno = 1; p < end; lineno++) {
    char *nl = memchr(p, '\n', (size_t)(end - p));
    char *eol = nl ? nl : end;
    *eol = 0;
    if (eol > p && eol[-1] == '\r') eol[-1] = 0;
    char *q = p + strspn(p, " \t");
    if (*q) {
      char *e;
      uint64_t addr = strtoull(q, &e, 16);
      char *ty = e + strspn(e, " \t");
      char *nm = ty + 1 + strspn(ty + 1, " \t");
      if (e == q || (*e != ' ' && *e != '\t') || !*ty || (ty[1] != ' ' && ty[1] != '\t') || !*nm) {
        snprintf(err, errcap, "%s:%zu: bad kallsyms line (want ADDR TYPE NAME [module])",
                 file, lineno);
        ksym_free(t);
        return NULL;
      }
      char *ne = nm + strcspn(nm, " \t");
      char *mod = NULL;
      if (*ne) {
        *ne = 0;
        mod = ne + 1 + strspn(ne + 1, " \t");
        if (*mod == '[') {
          mod++;
          mod[strcspn(mod, "]")] = 0;
        }
        if (!*mod) mod = NULL;
      }
      t->syms[t->n++] = (ksym){addr, *ty, nm, mod};
    }
    p = eol + 1;
  }
  qsort(t->syms, t->n, sizeof *t->syms, by_addr);
  t->byname = malloc((t->n + 1) * sizeof *t->byname);
  if (!t->byname) goto oom;
  for (size_t i = 0; i < t->n; i++) t->byname[i] = (uint32_t)i;
  qsort_r(t->byname, t->n, sizeof *t->byname, by_name, t->syms);
  t->linux_like = ksym_by_name(t, "start_kernel") && ksym_by_name(t, "init_task");
  return t;
oom:
  snprintf(err, errcap, "%s: out of memory", file);
  ksym_free(t);
  return NULL;
}

ksym_table *ksym_load(const char *path, char *err, size_t errcap) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    snprintf(err, errcap, "%s: cannot open", path);
    return NULL;
  }
  size_t cap = 1 << 20, len = 0;
  char *buf = malloc(cap);
  size_t r;
  while (buf && (r = fread(buf + len, 1, cap - len, f)) > 0) {
    len += r;
    if (len == cap) {
      char *nb = realloc(buf, cap *= 2);
      if (!nb) free(buf);
      buf = nb;
    }
  }
  fclose(f);
  if (!buf) {
    snprintf(err, errcap, "%s: out of memory", path);
    return NULL;
  }
  ksym_table *t = ksym_parse(buf, len, path, err, errcap);
  free(buf);
  return t;
}

void ksym_free(ksym_table *t) {
  if (!t) return;
  free(t->syms);
  free(t->byname);
  free(t->names);
  free(t);
}

size_t ksym_count(const ksym_table *t) { return t->n; }
const ksym *ksym_at(const ksym_table *t, size_t i) { return i < t->n ? &t->syms[i] : NULL; }
int ksym_is_linux(const ksym_table *t) { return t->linux_like; }

const ksym *ksym_by_name(const ksym_table *t, const char *name) {
  char mod[64];
  const char *colon = strchr(name, ':');
  if (colon && colon - name < (int)sizeof mod) {
    snprintf(mod, sizeof mod, "%.*s", (int)(colon - name), name);
    name = colon + 1;
  } else {
    mod[0] = 0;
  }
  size_t lo = 0, hi = t->n;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    if (strcmp(t->syms[t->byname[mid]].name, name) < 0) lo = mid + 1;
    else hi = mid;
  }
  for (; lo < t->n && !strcmp(t->syms[t->byname[lo]].name, name); lo++) {
    const ksym *s = &t->syms[t->byname[lo]];
    if (!mod[0] || (s->module && !strcmp(s->module, mod))) return s;
  }
  return NULL;
}

static int addressable(const ksym *s) {
  return s->addr >= KSYM_KERNEL_HALF && s->type != 'A' && s->type != 'a';
}

const ksym *ksym_by_addr(const ksym_table *t, uint64_t addr, uint64_t *off) {
  size_t lo = 0, hi = t->n;
  while (lo < hi) { /* first symbol above addr */
    size_t mid = (lo + hi) / 2;
    if (t->syms[mid].addr <= addr) lo = mid + 1;
    else hi = mid;
  }
  while (lo > 0) {
    const ksym *s = &t->syms[lo - 1];
    if (addressable(s)) {
      /* Take the first name at this address (sorted: the global one). */
      while (lo > 1 && t->syms[lo - 2].addr == s->addr && addressable(&t->syms[lo - 2]))
        s = &t->syms[--lo - 1];
      /* Past the last symbol of the image by a lot: unknown. */
      if (addr - s->addr > (1u << 20)) return NULL;
      if (off) *off = addr - s->addr;
      return s;
    }
    lo--;
  }
  return NULL;
}

const char *ksym_format(const ksym_table *t, uint64_t addr, char *buf, size_t cap) {
  uint64_t off;
  const ksym *s = t ? ksym_by_addr(t, addr, &off) : NULL;
  if (!s) snprintf(buf, cap, "0x%llx", (unsigned long long)addr);
  else if (off) snprintf(buf, cap, "%s+0x%llx", s->name, (unsigned long long)off);
  else snprintf(buf, cap, "%s", s->name);
  return buf;
}

int ksym_resolve(const ksym_table *t, const char *expr, uint64_t *addr) {
  char *e;
  if (*expr >= '0' && *expr <= '9') {
    *addr = strtoull(expr, &e, 0);
    return *e ? -1 : 0;
  }
  char name[256];
  size_t nl = strcspn(expr, "+");
  if (nl >= sizeof name || !t) return -1;
  snprintf(name, sizeof name, "%.*s", (int)nl, expr);
  const ksym *s = ksym_by_name(t, name);
  if (!s) return -1;
  uint64_t off = 0;
  if (expr[nl] == '+') {
    off = strtoull(expr + nl + 1, &e, 0);
    if (*e || e == expr + nl + 1) return -1;
  }
  *addr = s->addr + off;
  return 0;
}

static int is_text(char type) { return type == 'T' || type == 't' || type == 'W' || type == 'w'; }

size_t ksym_glob(const ksym_table *t, const char *glob, int text_only,
                 int (*fn)(void *ctx, const ksym *s), void *ctx) {
  size_t n = 0;
  uint64_t last = 0;
  int any = 0;
  for (size_t i = 0; i < t->n; i++) {
    const ksym *s = &t->syms[i];
    if (text_only && !is_text(s->type)) continue;
    if (fnmatch(glob, s->name, 0) != 0) continue;
    if (any && s->addr == last) continue;
    any = 1;
    last = s->addr;
    n++;
    if (fn && fn(ctx, s)) break;
  }
  return n;
}
