/*
 * elfsym.c - function symbols of a live process from its maps and the ELF
 * symbol tables of the objects it has mapped.
 *
 * Objects are found in /proc/PID/maps: a file-backed mapping at offset 0
 * starts an object, the following mappings of the same path extend it.  The
 * load bias is the start of that first mapping minus the page-truncated
 * address of the PT_LOAD segment at file offset 0 (0 for ET_EXEC).  Both
 * .symtab and .dynsym are read (a stripped libc only has .dynsym), function
 * symbols only; IFUNC resolvers are left out since their address is not the
 * function the user means.
 */
#include "sym/elfsym.h"

#include <dirent.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void esym_modname(const char *path, char *out, size_t cap) {
  const char *b = strrchr(path, '/');
  b = b ? b + 1 : path;
  size_t n = strlen(b);
  const char *so = strstr(b, ".so");
  /* "libc.so.6" -> "libc"; "libfoo.so" -> "libfoo"; "a.out" stays */
  if (so && (so[3] == 0 || so[3] == '.') && so != b) n = (size_t)(so - b);
  /* "libelf-0.188.so", "libc-2.31.so": the version is not part of it */
  const char *dash = memrchr(b, '-', n);
  if (so && dash && dash + 1 < b + n && strspn(dash + 1, "0123456789.") >= (size_t)(b + n - dash - 1) &&
      memchr(dash, '.', (size_t)(b + n - dash)))
    n = (size_t)(dash - b);
  if (n >= cap) n = cap - 1;
  memcpy(out, b, n);
  out[n] = 0;
}

/* Open an ELF file read through libelf; *fd and the Elf are the caller's. */
static Elf *elf_open_path(const char *path, int *fd) {
  *fd = open(path, O_RDONLY | O_CLOEXEC);
  if (*fd < 0) return NULL;
  Elf *e = elf_begin(*fd, ELF_C_READ_MMAP, NULL);
  if (!e || elf_kind(e) != ELF_K_ELF) {
    if (e) elf_end(e);
    close(*fd);
    return NULL;
  }
  return e;
}

long esym_elf_funcs(const char *path, esym_cb cb, void *ctx) {
  elf_version(EV_CURRENT);
  int fd;
  Elf *e = elf_open_path(path, &fd);
  if (!e) return -1;
  long n = 0;
  Elf_Scn *scn = NULL;
  while ((scn = elf_nextscn(e, scn))) {
    GElf_Shdr sh;
    if (!gelf_getshdr(scn, &sh)) continue;
    if (sh.sh_type != SHT_SYMTAB && sh.sh_type != SHT_DYNSYM) continue;
    Elf_Data *d = elf_getdata(scn, NULL);
    if (!d || !sh.sh_entsize) continue;
    size_t cnt = sh.sh_size / sh.sh_entsize;
    for (size_t i = 0; i < cnt; i++) {
      GElf_Sym s;
      if (!gelf_getsym(d, (int)i, &s)) continue;
      if (GELF_ST_TYPE(s.st_info) != STT_FUNC) continue;
      if (s.st_shndx == SHN_UNDEF || s.st_value == 0) continue;
      const char *name = elf_strptr(e, sh.sh_link, s.st_name);
      if (!name || !*name) continue;
      cb(ctx, name, s.st_value, s.st_size);
      n++;
    }
  }
  elf_end(e);
  close(fd);
  return n;
}

/* Address of the first loadable byte in the file's own address space, or
 * -1 if there is no PT_LOAD at offset 0. */
static int elf_base(const char *path, uint64_t *base, int *is_exec) {
  elf_version(EV_CURRENT);
  int fd;
  Elf *e = elf_open_path(path, &fd);
  if (!e) return -1;
  GElf_Ehdr eh;
  size_t nph = 0;
  int rc = -1;
  if (gelf_getehdr(e, &eh) && elf_getphdrnum(e, &nph) == 0) {
    *is_exec = eh.e_type == ET_EXEC;
    for (size_t i = 0; i < nph; i++) {
      GElf_Phdr ph;
      if (!gelf_getphdr(e, (int)i, &ph) || ph.p_type != PT_LOAD) continue;
      uint64_t pg = ph.p_align > 1 ? ph.p_align : 4096;
      if (pg > 4096) pg = 4096; /* the kernel maps by page */
      if ((ph.p_offset & ~(pg - 1)) == 0) {
        *base = ph.p_vaddr & ~(pg - 1);
        rc = 0;
        break;
      }
    }
  }
  elf_end(e);
  close(fd);
  return rc;
}

int esym_elf_is_static(const char *path) {
  elf_version(EV_CURRENT);
  int fd;
  Elf *e = elf_open_path(path, &fd);
  if (!e) return 0;
  size_t nph = 0;
  int interp = 0, load = 0;
  if (elf_getphdrnum(e, &nph) == 0)
    for (size_t i = 0; i < nph; i++) {
      GElf_Phdr ph;
      if (!gelf_getphdr(e, (int)i, &ph)) continue;
      interp |= ph.p_type == PT_INTERP;
      load |= ph.p_type == PT_LOAD;
    }
  elf_end(e);
  close(fd);
  return load && !interp; /* static and static-pie alike */
}

typedef struct collect {
  esym_proc *p;
  int mod;
  uint64_t bias;
  size_t cap;
  char *names;       /* this module's name block */
  size_t nlen, ncap;
} collect;

static void collect_cb(void *ctx, const char *name, uint64_t value,
                       uint64_t size) {
  collect *c = ctx;
  esym_proc *p = c->p;
  if (p->nfns == c->cap) {
    c->cap = c->cap ? c->cap * 2 : 1024;
    p->fns = realloc(p->fns, c->cap * sizeof *p->fns);
  }
  size_t len = strlen(name) + 1;
  if (c->nlen + len > c->ncap) {
    c->ncap = (c->nlen + len) * 2 + 4096;
    c->names = realloc(c->names, c->ncap);
  }
  memcpy(c->names + c->nlen, name, len);
  /* the name is an offset until the block stops moving */
  p->fns[p->nfns++] = (esym_fn){c->bias + value, size,
                                (const char *)(uintptr_t)c->nlen, c->mod};
  c->nlen += len;
}

static int fn_cmp(const void *a, const void *b) {
  const esym_fn *x = a, *y = b;
  if (x->addr != y->addr) return x->addr < y->addr ? -1 : 1;
  if (x->mod != y->mod) return x->mod - y->mod;
  return strcmp(x->name, y->name);
}

/* Open the object as the process sees it: through /proc/PID/root first (its
 * mount namespace), then the path itself. */
static void proc_path(int pid, const char *path, char *out, size_t cap) {
  snprintf(out, cap, "/proc/%d/root%s", pid, path);
  if (access(out, R_OK) != 0) snprintf(out, cap, "%s", path);
}

static void add_module(esym_proc *p, collect *c, const char *path,
                       uint64_t start, uint64_t end, const char *exe) {
  char file[PATH_MAX + 32];
  proc_path(p->pid, path, file, sizeof file);
  uint64_t base = 0;
  int is_exec = 0;
  if (elf_base(file, &base, &is_exec) != 0) return;
  p->mods = realloc(p->mods, (size_t)(p->nmods + 1) * sizeof *p->mods);
  esym_mod *m = &p->mods[p->nmods];
  char name[256];
  esym_modname(path, name, sizeof name);
  m->path = strdup(path);
  m->name = strdup(name);
  m->bias = is_exec ? 0 : start - base;
  m->lo = start;
  m->hi = end;
  m->is_exe = exe && strcmp(exe, path) == 0;
  c->mod = p->nmods++;
  c->bias = m->bias;
  c->names = NULL;
  c->nlen = c->ncap = 0;
  size_t first = p->nfns;
  esym_elf_funcs(file, collect_cb, c);
  p->names = realloc(p->names, (size_t)p->nmods * sizeof *p->names);
  p->names[c->mod] = c->names; /* NULL when it has no function symbols */
  for (size_t i = first; i < p->nfns; i++)
    p->fns[i].name = c->names + (uintptr_t)p->fns[i].name;
}

/* Drop exact duplicates (the same function in .symtab and .dynsym). */
static void dedup(esym_proc *p) {
  size_t w = 0;
  for (size_t i = 0; i < p->nfns; i++) {
    if (w && p->fns[w - 1].addr == p->fns[i].addr &&
        p->fns[w - 1].mod == p->fns[i].mod &&
        strcmp(p->fns[w - 1].name, p->fns[i].name) == 0)
      continue;
    p->fns[w++] = p->fns[i];
  }
  p->nfns = w;
}

/* State letter of a thread ('R', 'S', 'Z'...), 0 if it is gone. */
static char thread_state(int pid, int tid) {
  char fn[64], buf[512];
  snprintf(fn, sizeof fn, "/proc/%d/task/%d/stat", pid, tid);
  int fd = open(fn, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  buf[n > 0 ? n : 0] = 0;
  char *e = strrchr(buf, ')'); /* the name may hold anything */
  return e && e[1] == ' ' ? e[2] : 0;
}

int esym_live_tid(int pid) {
  char st = thread_state(pid, pid);
  if (st != 'Z' && st != 'X') return pid; /* alive, or gone altogether */
  char fn[64];
  snprintf(fn, sizeof fn, "/proc/%d/task", pid);
  DIR *d = opendir(fn);
  struct dirent *e;
  int tid = pid;
  while (d && (e = readdir(d))) {
    int t = atoi(e->d_name);
    char ts = t > 0 ? thread_state(pid, t) : 0;
    if (ts && ts != 'Z' && ts != 'X') { tid = t; break; }
  }
  if (d) closedir(d);
  return tid;
}

esym_proc *esym_open(int pid, char *err, size_t cap) {
  char fn[64], exe[PATH_MAX];
  int tid = esym_live_tid(pid); /* /proc/TID shows the process as well */
  snprintf(fn, sizeof fn, "/proc/%d/exe", tid);
  ssize_t el = readlink(fn, exe, sizeof exe - 1);
  exe[el > 0 ? el : 0] = 0;
  snprintf(fn, sizeof fn, "/proc/%d/maps", tid);
  FILE *f = fopen(fn, "re");
  if (!f) {
    snprintf(err, cap, "process %d: cannot read its maps", pid);
    return NULL;
  }
  esym_proc *p = calloc(1, sizeof *p);
  p->pid = pid;
  collect c = {.p = p, .mod = -1};
  char line[PATH_MAX + 128], cur[PATH_MAX] = "";
  while (fgets(line, sizeof line, f)) {
    unsigned long long lo, hi, off;
    int pathpos = 0;
    if (sscanf(line, "%llx-%llx %*s %llx %*s %*s %n", &lo, &hi, &off,
               &pathpos) < 3 || !pathpos)
      continue;
    char *path = line + pathpos;
    path[strcspn(path, "\n")] = 0;
    if (path[0] != '/') { cur[0] = 0; continue; }
    char *del = strstr(path, " (deleted)");
    if (del) *del = 0;
    if (off == 0) {
      snprintf(cur, sizeof cur, "%s", path);
      add_module(p, &c, path, lo, hi, exe);
    } else if (p->nmods && strcmp(cur, path) == 0) {
      p->mods[p->nmods - 1].hi = hi;
    }
  }
  fclose(f);
  qsort(p->fns, p->nfns, sizeof *p->fns, fn_cmp);
  dedup(p);
  if (!p->nmods) {
    snprintf(err, cap, "process %d: no ELF objects mapped", pid);
    esym_close(p);
    return NULL;
  }
  return p;
}

void esym_close(esym_proc *p) {
  if (!p) return;
  for (int i = 0; i < p->nmods; i++) {
    free(p->mods[i].path);
    free(p->mods[i].name);
    free(p->names[i]);
  }
  free(p->names);
  free(p->mods);
  free(p->fns);
  free(p);
}

const esym_fn *esym_lookup(const esym_proc *p, const char *mod,
                           const char *name) {
  for (size_t i = 0; i < p->nfns; i++) {
    const esym_fn *f = &p->fns[i];
    if (strcmp(f->name, name) != 0) continue;
    if (mod && strcmp(p->mods[f->mod].name, mod) != 0) continue;
    return f;
  }
  return NULL;
}

int esym_mod_at(const esym_proc *p, uint64_t addr) {
  for (int i = 0; i < p->nmods; i++)
    if (addr >= p->mods[i].lo && addr < p->mods[i].hi) return i;
  return -1;
}

const esym_fn *esym_at(const esym_proc *p, uint64_t addr) {
  size_t lo = 0, hi = p->nfns; /* first fn with addr > target */
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    if (p->fns[mid].addr <= addr) lo = mid + 1; else hi = mid;
  }
  if (!lo) return NULL;
  const esym_fn *f = &p->fns[lo - 1];
  if (f->size && addr < f->addr + f->size) return f;
  /* size 0 (hand-written assembly): accept within the same module */
  if (!f->size && esym_mod_at(p, addr) == f->mod && esym_mod_at(p, f->addr) == f->mod)
    return f;
  return NULL;
}
