/*
 * elfsym.c - function symbols of a live process from its maps and the ELF
 * symbol tables of the objects it has mapped.
 *
 * Objects are found in /proc/PID/maps: a file-backed mapping at offset 0
 * starts an object, the following mappings of the same path extend it.  The
 * load bias is the start of that first mapping minus the page-truncated
 * address of the PT_LOAD segment at file offset 0 (0 for ET_EXEC).  Both
 * .symtab and .dynsym are read (a stripped libc only has .dynsym), function
 * symbols only.  An IFUNC symbol's value is its resolver, not the function
 * the user means: it is moved to the implementation the process uses, found
 * (1) in a GOT slot the dynamic linker filled for it (IRELATIVE relocations
 * of the defining object, whose addend is the resolver; JUMP_SLOT/GLOB_DAT
 * against its name in any object), read from the process, when the slot
 * points into the defining object and not into a PLT; else (2) where
 * vprobe's own dynamic linker put it when vprobe maps the same file, moved
 * by the difference of the load biases (same machine, same choice).
 */
#include "sym/elfsym.h"

#include <dirent.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <link.h>
#include <gelf.h>
#include <libelf.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
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

/* Function and IFUNC symbols of an open ELF file through cb. */
typedef void (*sym_cb)(void *ctx, const char *name, uint64_t value, uint64_t size,
                       int ifunc);
static long elf_syms(Elf *e, sym_cb cb, void *ctx) {
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
      int t = GELF_ST_TYPE(s.st_info);
      if (t != STT_FUNC && t != STT_GNU_IFUNC) continue;
      if (s.st_shndx == SHN_UNDEF || s.st_value == 0) continue;
      const char *name = elf_strptr(e, sh.sh_link, s.st_name);
      if (!name || !*name) continue;
      cb(ctx, name, s.st_value, s.st_size, t == STT_GNU_IFUNC);
      n++;
    }
  }
  return n;
}

typedef struct funcs_ctx { esym_cb cb; void *ctx; long n; } funcs_ctx;
static void funcs_only(void *ctx, const char *name, uint64_t value, uint64_t size,
                       int ifunc) {
  funcs_ctx *c = ctx;
  if (ifunc) return; /* a resolver, not the function */
  if (c->cb) c->cb(c->ctx, name, value, size);
  c->n++;
}

long esym_elf_funcs(const char *path, esym_cb cb, void *ctx) {
  elf_version(EV_CURRENT);
  int fd;
  Elf *e = elf_open_path(path, &fd);
  if (!e) return -1;
  funcs_ctx c = {cb, ctx, 0};
  elf_syms(e, funcs_only, &c);
  elf_end(e);
  close(fd);
  return c.n;
}

/* The file's bytes at link-time address vaddr (*avail of them), through
 * the section that holds it; NULL if no section with contents does. */
static const uint8_t *vbytes(Elf *e, uint64_t vaddr, size_t *avail) {
  size_t fsize;
  const uint8_t *raw = (const uint8_t *)elf_rawfile(e, &fsize);
  if (!raw) return NULL;
  for (Elf_Scn *scn = NULL; (scn = elf_nextscn(e, scn));) {
    GElf_Shdr sh;
    if (!gelf_getshdr(scn, &sh) || sh.sh_type == SHT_NOBITS || !(sh.sh_flags & SHF_ALLOC))
      continue;
    if (vaddr < sh.sh_addr || vaddr - sh.sh_addr >= sh.sh_size) continue;
    uint64_t off = sh.sh_offset + (vaddr - sh.sh_addr);
    if (sh.sh_offset > fsize || off >= fsize) return NULL;
    uint64_t end = sh.sh_offset + sh.sh_size < fsize ? sh.sh_offset + sh.sh_size : fsize;
    *avail = (size_t)(end - off);
    return raw + off;
  }
  return NULL;
}

/* Size in bytes of a DW_EH_PE value format, 0 if unsupported. */
static size_t pe_size(uint8_t enc) {
  switch (enc & 0x0f) {
  case 0x00: return 8; /* absptr */
  case 0x02: case 0x0a: return 2;
  case 0x03: case 0x0b: return 4;
  case 0x04: case 0x0c: return 8;
  default: return 0;
  }
}

static uint64_t uleb(const uint8_t **p, const uint8_t *end) {
  uint64_t v = 0;
  for (int sh = 0; *p < end && sh < 64; sh += 7) {
    uint8_t b = *(*p)++;
    v |= (uint64_t)(b & 0x7f) << sh;
    if (!(b & 0x80)) break;
  }
  return v;
}

/* The FDE pointer encoding of the CIE at vaddr ('R' augmentation), or -1. */
static int cie_fde_enc(Elf *e, uint64_t vaddr) {
  size_t n;
  const uint8_t *c = vbytes(e, vaddr, &n), *end;
  uint32_t len, id;
  if (!c || n < 9) return -1;
  memcpy(&len, c, 4);
  memcpy(&id, c + 4, 4);
  if (len == 0xffffffffu || len > n - 4 || id != 0) return -1;
  end = c + 4 + len;
  uint8_t version = c[8];
  const char *aug = (const char *)c + 9;
  const uint8_t *q = memchr(aug, 0, (size_t)(end - (const uint8_t *)aug));
  if (!q) return -1;
  q++;
  if (strstr(aug, "eh")) q += 8;
  uleb(&q, end);                    /* code alignment */
  uleb(&q, end);                    /* data alignment (the sign does not matter) */
  if (version == 1) q++; else uleb(&q, end); /* return address register */
  if (aug[0] != 'z') return 0x00;
  uleb(&q, end);                    /* augmentation data length */
  for (const char *a = aug + 1; *a && q < end; a++) {
    if (*a == 'R') return *q;
    if (*a == 'L') q++;
    else if (*a == 'P') { size_t ps = pe_size(*q); if (!ps) return -1; q += 1 + ps; }
    else if (*a != 'S' && *a != 'B') return -1;
  }
  return 0x00;
}

/* End of the FDE covering link-time address vaddr, found through
 * .eh_frame_hdr's sorted table (its usual encodings); 0 if none. */
static uint64_t fde_end(Elf *e, uint64_t vaddr) {
  size_t strndx, n = 0;
  if (elf_getshdrstrndx(e, &strndx) != 0) return 0;
  GElf_Shdr sh;
  Elf_Scn *scn = NULL;
  while ((scn = elf_nextscn(e, scn))) {
    const char *nm = gelf_getshdr(scn, &sh) ? elf_strptr(e, strndx, sh.sh_name) : NULL;
    if (nm && strcmp(nm, ".eh_frame_hdr") == 0) break;
  }
  const uint8_t *h = scn ? vbytes(e, sh.sh_addr, &n) : NULL;
  size_t ps = h && n >= 12 ? pe_size(h[1]) : 0;
  if (!ps || h[0] != 1 || h[2] != 0x03 || h[3] != 0x3b || n < 8 + ps) return 0;
  uint32_t count;
  memcpy(&count, h + 4 + ps, 4);
  const uint8_t *tab = h + 8 + ps;
  if (count == 0 || count > (n - 8 - ps) / 8) return 0;
  size_t lo = 0, hi = count; /* first entry whose start is above vaddr */
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    int32_t loc;
    memcpy(&loc, tab + mid * 8, 4);
    if (sh.sh_addr + (uint64_t)(int64_t)loc <= vaddr) lo = mid + 1; else hi = mid;
  }
  if (!lo) return 0;
  int32_t loc, fde;
  memcpy(&loc, tab + (lo - 1) * 8, 4);
  memcpy(&fde, tab + (lo - 1) * 8 + 4, 4);
  uint64_t start = sh.sh_addr + (uint64_t)(int64_t)loc;
  uint64_t fva = sh.sh_addr + (uint64_t)(int64_t)fde;
  const uint8_t *f = vbytes(e, fva, &n);
  uint32_t cieoff;
  if (!f || n < 8) return 0;
  memcpy(&cieoff, f + 4, 4);
  int enc = cie_fde_enc(e, fva + 4 - cieoff);
  size_t vs = enc >= 0 ? pe_size((uint8_t)enc) : 0;
  if (!vs || n < 8 + 2 * vs) return 0;
  uint64_t range = 0;
  memcpy(&range, f + 8 + vs, vs); /* little-endian, unsigned */
  return vaddr < start + range ? start + range : 0;
}

int esym_is_sigreturn(const uint8_t *code, size_t n) {
  static const uint8_t rax[] = {0x48, 0xc7, 0xc0, 0x0f, 0, 0, 0, 0x0f, 0x05};
  static const uint8_t eax[] = {0xb8, 0x0f, 0, 0, 0, 0x0f, 0x05};
  return (n >= sizeof rax && memcmp(code, rax, sizeof rax) == 0) ||
         (n >= sizeof eax && memcmp(code, eax, sizeof eax) == 0);
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
                       uint64_t size, int ifunc) {
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
  /* the name is an offset until the block stops moving; an IFUNC keeps
   * its resolver's address until esym_open finds the implementation */
  p->fns[p->nfns++] = (esym_fn){c->bias + value, ifunc ? 0 : size,
                                (const char *)(uintptr_t)c->nlen, c->mod,
                                ifunc ? ESYM_IFUNC : 0};
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

/* Module m's file, opened (NULL if it cannot be read). */
static Elf *mod_elf(const esym_proc *p, int m, int *fd) {
  char file[PATH_MAX + 32];
  proc_path(p->pid, p->mods[m].path, file, sizeof file);
  elf_version(EV_CURRENT);
  return elf_open_path(file, fd);
}

/* Extents from the FDEs for the functions [first, nfns) of module m that
 * have none, and the rt_sigreturn mark. */
static void fill_extents(esym_proc *p, int m, Elf *e, size_t first) {
  for (size_t i = first; i < p->nfns; i++) {
    esym_fn *f = &p->fns[i];
    if (f->mod != m || (f->flags & ESYM_IFUNC)) continue; /* sized once resolved */
    uint64_t va = f->addr - p->mods[m].bias;
    if (!f->size) {
      uint64_t end = fde_end(e, va);
      if (end) f->size = end - va, f->flags |= ESYM_FDE_SIZE;
    }
    size_t n = 0;
    const uint8_t *code = vbytes(e, va, &n);
    if (code && esym_is_sigreturn(code, n)) f->flags |= ESYM_SIGRETURN;
  }
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
  int fd;
  Elf *e = elf_open_path(file, &fd);
  if (e) {
    elf_syms(e, collect_cb, c);
    fill_extents(p, c->mod, e, first);
    elf_end(e);
    close(fd);
  }
  p->names = realloc(p->names, (size_t)p->nmods * sizeof *p->names);
  p->names[c->mod] = c->names; /* NULL when it has no function symbols */
  for (size_t i = first; i < p->nfns; i++)
    p->fns[i].name = c->names + (uintptr_t)p->fns[i].name;
}

/* ---- IFUNC implementations ---- */

typedef struct ifn {
  const char *name;
  size_t fn;      /* index in p->fns */
  uint64_t impl;  /* 0 until found */
} ifn;

static int ifn_cmp(const void *a, const void *b) {
  return strcmp(((const ifn *)a)->name, ((const ifn *)b)->name);
}

/* Is v a plausible implementation of fns[x->fn]: in its module, not its
 * resolver, not in a PLT of that module (plt[2*mod], plt[2*mod+1]). */
static int impl_ok(const esym_proc *p, const ifn *x, const uint64_t *plt, uint64_t v) {
  const esym_fn *f = &p->fns[x->fn];
  const esym_mod *m = &p->mods[f->mod];
  return v >= m->lo && v < m->hi && v != f->addr &&
         !(v >= plt[2 * f->mod] && v < plt[2 * f->mod + 1]);
}

/* The range of module m's .plt* sections (absolute) into plt[2m..2m+1]. */
static void plt_range(const esym_proc *p, int m, Elf *e, uint64_t *plt) {
  size_t strndx;
  if (elf_getshdrstrndx(e, &strndx) != 0) return;
  for (Elf_Scn *scn = NULL; (scn = elf_nextscn(e, scn));) {
    GElf_Shdr sh;
    const char *nm = gelf_getshdr(scn, &sh) ? elf_strptr(e, strndx, sh.sh_name) : NULL;
    if (!nm || strncmp(nm, ".plt", 4) != 0 || !sh.sh_addr) continue;
    uint64_t lo = p->mods[m].bias + sh.sh_addr, hi = lo + sh.sh_size;
    if (!plt[2 * m + 1] || lo < plt[2 * m]) plt[2 * m] = lo;
    if (hi > plt[2 * m + 1]) plt[2 * m + 1] = hi;
  }
}

/* Candidates from module m's relocations: GOT slots read through memfd. */
static void got_slots(const esym_proc *p, int m, Elf *e, int memfd, ifn *v, size_t nv,
                      const uint64_t *plt) {
  for (Elf_Scn *scn = NULL; (scn = elf_nextscn(e, scn));) {
    GElf_Shdr sh;
    if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_RELA || !sh.sh_entsize) continue;
    Elf_Data *d = elf_getdata(scn, NULL);
    Elf_Scn *symscn = elf_getscn(e, sh.sh_link);
    GElf_Shdr ssh;
    Elf_Data *sd = symscn && gelf_getshdr(symscn, &ssh) ? elf_getdata(symscn, NULL) : NULL;
    size_t cnt = d ? sh.sh_size / sh.sh_entsize : 0;
    for (size_t i = 0; i < cnt; i++) {
      GElf_Rela r;
      if (!gelf_getrela(d, (int)i, &r)) continue;
      unsigned t = (unsigned)GELF_R_TYPE(r.r_info);
      ifn *x = NULL;
      if (t == R_X86_64_IRELATIVE) {
        uint64_t res = p->mods[m].bias + (uint64_t)r.r_addend;
        for (size_t k = 0; k < nv && !x; k++)
          if (!v[k].impl && p->fns[v[k].fn].mod == m && p->fns[v[k].fn].addr == res) x = &v[k];
      } else if ((t == R_X86_64_JUMP_SLOT || t == R_X86_64_GLOB_DAT) && sd) {
        GElf_Sym s;
        ifn key = {0};
        if (!gelf_getsym(sd, (int)GELF_R_SYM(r.r_info), &s)) continue;
        key.name = elf_strptr(e, ssh.sh_link, s.st_name);
        if (!key.name || !*key.name) continue;
        x = bsearch(&key, v, nv, sizeof *v, ifn_cmp);
        /* several modules may define the name: try each */
        while (x && x > v && strcmp(x[-1].name, key.name) == 0) x--;
        for (; x && x < v + nv && strcmp(x->name, key.name) == 0; x++) {
          uint64_t got;
          if (!x->impl && pread(memfd, &got, 8, (off_t)(p->mods[m].bias + r.r_offset)) == 8 &&
              impl_ok(p, x, plt, got))
            x->impl = got;
        }
        continue;
      }
      uint64_t got;
      if (x && pread(memfd, &got, 8, (off_t)(p->mods[m].bias + r.r_offset)) == 8 &&
          impl_ok(p, x, plt, got))
        x->impl = got;
    }
  }
}

typedef struct own_find { dev_t dev; ino_t ino; const char *name; uint64_t bias; int found; } own_find;

static int own_cb(struct dl_phdr_info *info, size_t size, void *ctx) {
  (void)size;
  own_find *o = ctx;
  struct stat st;
  if (!info->dlpi_name || !*info->dlpi_name || stat(info->dlpi_name, &st) != 0) return 0;
  if (st.st_dev != o->dev || st.st_ino != o->ino) return 0;
  o->name = info->dlpi_name;
  o->bias = info->dlpi_addr;
  o->found = 1;
  return 1;
}

/* Where vprobe's own dynamic linker put x when it maps module m's file,
 * moved to the process's load bias; 0 if it does not. */
static uint64_t own_impl(const esym_proc *p, int m, const ifn *x, int *elsewhere) {
  char file[PATH_MAX + 32];
  struct stat st;
  proc_path(p->pid, p->mods[m].path, file, sizeof file);
  if (stat(file, &st) != 0) return 0;
  own_find o = {st.st_dev, st.st_ino, NULL, 0, 0};
  dl_iterate_phdr(own_cb, &o);
  void *h = o.found ? dlopen(o.name, RTLD_LAZY | RTLD_NOLOAD) : NULL;
  if (!h) return 0;
  void *a = dlsym(h, x->name);
  struct link_map *lm = NULL, *in = NULL;
  Dl_info di;
  uint64_t r = 0;
  if (a && dlinfo(h, RTLD_DI_LINKMAP, &lm) == 0 &&
      dladdr1(a, &di, (void **)&in, RTLD_DL_LINKMAP)) {
    if (in == lm) r = p->mods[m].bias + ((uint64_t)(uintptr_t)a - o.bias);
    else *elsewhere = 1; /* the vDSO's, say */
  }
  dlclose(h);
  return r;
}

/* Move every IFUNC of p to its implementation, or to p->unresolved. */
static void resolve_ifuncs(esym_proc *p) {
  size_t nv = 0;
  for (size_t i = 0; i < p->nfns; i++) nv += !!(p->fns[i].flags & ESYM_IFUNC);
  if (!nv) return;
  ifn *v = calloc(nv, sizeof *v);
  uint64_t *plt = calloc(2 * (size_t)p->nmods, sizeof *plt);
  nv = 0;
  for (size_t i = 0; i < p->nfns; i++)
    if (p->fns[i].flags & ESYM_IFUNC) v[nv++] = (ifn){p->fns[i].name, i, 0};
  qsort(v, nv, sizeof *v, ifn_cmp);
  char fn[64];
  snprintf(fn, sizeof fn, "/proc/%d/mem", esym_live_tid(p->pid));
  int memfd = open(fn, O_RDONLY | O_CLOEXEC), fd;
  for (int m = 0; m < p->nmods; m++) {
    Elf *e = mod_elf(p, m, &fd);
    if (!e) continue;
    plt_range(p, m, e, plt);
    elf_end(e);
    close(fd);
  }
  for (int m = 0; m < p->nmods && memfd >= 0; m++) {
    Elf *e = mod_elf(p, m, &fd);
    if (!e) continue;
    got_slots(p, m, e, memfd, v, nv, plt);
    elf_end(e);
    close(fd);
  }
  if (memfd >= 0) close(memfd);
  for (size_t k = 0; k < nv; k++) {
    esym_fn *f = &p->fns[v[k].fn];
    int elsewhere = 0;
    if (!v[k].impl) v[k].impl = own_impl(p, f->mod, &v[k], &elsewhere);
    if (!v[k].impl) {
      if (elsewhere) f->flags |= ESYM_ELSEWHERE;
      p->unresolved = realloc(p->unresolved, (p->nunresolved + 1) * sizeof *f);
      p->unresolved[p->nunresolved++] = *f;
      f->flags = 0, f->addr = 0; /* dropped below */
      continue;
    }
    f->addr = v[k].impl;
    Elf *e = mod_elf(p, f->mod, &fd);
    if (e) {
      uint64_t va = f->addr - p->mods[f->mod].bias, end = fde_end(e, va);
      if (end) f->size = end - va, f->flags |= ESYM_FDE_SIZE;
      elf_end(e);
      close(fd);
    }
  }
  size_t w = 0;
  for (size_t i = 0; i < p->nfns; i++)
    if (p->fns[i].addr) p->fns[w++] = p->fns[i];
  p->nfns = w;
  free(v);
  free(plt);
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
  resolve_ifuncs(p);
  qsort(p->fns, p->nfns, sizeof *p->fns, fn_cmp);
  if (p->nunresolved) qsort(p->unresolved, p->nunresolved, sizeof *p->fns, fn_cmp);
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
  free(p->unresolved);
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

size_t esym_code(const esym_proc *p, uint64_t addr, void *buf, size_t n) {
  int m = esym_mod_at(p, addr), fd;
  size_t got = 0;
  Elf *e = m >= 0 ? mod_elf(p, m, &fd) : NULL;
  if (e) {
    const uint8_t *b = vbytes(e, addr - p->mods[m].bias, &got);
    if (!b) got = 0;
    if (got > n) got = n;
    if (got) memcpy(buf, b, got);
    elf_end(e);
    close(fd);
  }
  if (got) return got;
  char fn[64];
  snprintf(fn, sizeof fn, "/proc/%d/mem", esym_live_tid(p->pid));
  fd = open(fn, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  ssize_t r = pread(fd, buf, n, (off_t)addr);
  close(fd);
  return r > 0 ? (size_t)r : 0;
}

int esym_exec_code(const esym_proc *p, int m, esym_code_cb cb, void *ctx) {
  int fd, n = 0;
  if (m < 0 || m >= p->nmods) return -1;
  Elf *e = mod_elf(p, m, &fd);
  if (!e) return -1;
  size_t fsize, nph;
  const uint8_t *raw = (const uint8_t *)elf_rawfile(e, &fsize);
  if (raw && elf_getphdrnum(e, &nph) == 0) {
    for (size_t i = 0; i < nph; i++) {
      GElf_Phdr ph;
      if (!gelf_getphdr(e, (int)i, &ph) || ph.p_type != PT_LOAD || !(ph.p_flags & PF_X) ||
          ph.p_offset > fsize || ph.p_filesz > fsize - ph.p_offset)
        continue;
      cb(ctx, p->mods[m].bias + ph.p_vaddr, raw + ph.p_offset, (size_t)ph.p_filesz);
      n++;
    }
  }
  elf_end(e);
  close(fd);
  return n;
}
