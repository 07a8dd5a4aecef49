/*
 * vmx_admin.c - `vprobe -p` (list the probe points of a process) and
 * `vprobe -r` (make a process whose vprobe died whole again).
 *
 * Reset does not trust anyone's bookkeeping: it compares every executable
 * file-backed mapping of the process with the file it maps.  Code is never
 * relocated in place, so any difference is a patch left behind; it is
 * written back from the file with every thread stopped.
 */
#include "vmx/vmx.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/wait.h>
#include <unistd.h>

#include "vmx/inject.h"
#include "vp/probename.h"

/* ---- -p ---- */

static void list_proc(FILE *out, const esym_proc *p, const char *glob) {
  for (const char *const *f = vpn_fixed(VP_DOM_VMX); *f; f++)
    if (vpn_glob_match(glob, *f)) fprintf(out, "%s\n", *f);
  for (int m = 0; m < p->nmods; m++) {
    if (vmx_mod_hidden(&p->mods[m])) { /* one line, not its every function */
      char all[300];
      snprintf(all, sizeof all, "VMX:ENTER:%s.*", p->mods[m].name);
      if (vpn_glob_match(glob, all))
        fprintf(out, "%s (never probed: the vprobe agent itself)\n", all);
      continue;
    }
    /* one line per distinct name of the module */
    const char **seen = calloc(p->nfns + 1, sizeof *seen);
    size_t nseen = 0;
    for (size_t i = 0; i < p->nfns + p->nunresolved; i++) {
      int unres = i >= p->nfns;
      const esym_fn *f = unres ? &p->unresolved[i - p->nfns] : &p->fns[i];
      if (f->mod != m) continue;
      int dup = 0;
      for (size_t j = nseen; j-- > 0 && !dup;) dup = strcmp(seen[j], f->name) == 0;
      if (dup) continue;
      seen[nseen++] = f->name;
      char full[600];
      snprintf(full, sizeof full, "VMX:ENTER:%s.%s", p->mods[m].name, f->name);
      if (!vpn_glob_match(glob, full)) continue;
      const char *nv = unres ? NULL : vmx_never(p, f);
      if (nv) fprintf(out, "%s (never probed: %s)\n", full, nv);
      else if (unres)
        fprintf(out, "%s (IFUNC, implementation %s)\n", full,
                f->flags & ESYM_ELSEWHERE ? "in the vDSO: never probed" : "unknown");
      else fprintf(out, "%s\n", full);
    }
    free(seen);
  }
}

/* Start cmd stopped at its entry point, when the loader has mapped its
 * libraries; returns its pid (traced), or -1. */
static int start_at_entry(char *const *cmd, FILE *err) {
  fflush(NULL);
  int pid = fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    ptrace(PTRACE_TRACEME, 0, 0, 0);
    execvp(cmd[0], cmd);
    fprintf(stderr, "vprobe: %s: %s\n", cmd[0], strerror(errno));
    _exit(127);
  }
  int st;
  if (waitpid(pid, &st, 0) != pid || !WIFSTOPPED(st)) {
    fprintf(err, "vprobe: %s: did not start\n", cmd[0]);
    return -1;
  }
  char fn[64];
  snprintf(fn, sizeof fn, "/proc/%d/auxv", pid);
  uint64_t entry = 0, av[2];
  FILE *f = fopen(fn, "re");
  while (f && fread(av, sizeof av, 1, f) == 1 && av[0])
    if (av[0] == 9 /* AT_ENTRY */) entry = av[1];
  if (f) fclose(f);
  uint8_t orig, trap = 0xcc;
  if (!entry || inj_read(pid, entry, &orig, 1) != 0 || inj_write(pid, entry, &trap, 1) != 0) {
    fprintf(err, "vprobe: %s: cannot find its entry point\n", cmd[0]);
    kill(pid, SIGKILL);
    waitpid(pid, &st, 0);
    return -1;
  }
  ptrace(PTRACE_CONT, pid, 0, 0);
  if (waitpid(pid, &st, 0) != pid || !WIFSTOPPED(st)) {
    fprintf(err, "vprobe: %s: ended before its entry point\n", cmd[0]);
    return -1;
  }
  inj_write(pid, entry, &orig, 1);
  return pid;
}

int vmx_list(ctl_session *s, const char *glob) {
  int pid = s->pid, child = 0;
  if (pid <= 0 && s->cmd) {
    pid = child = start_at_entry(s->cmd, s->err);
    if (pid < 0) return 1;
  }
  if (pid <= 0) {
    fprintf(s->err, "vprobe: -p: needs a process (-x PID or -- CMD)\n");
    return 1;
  }
  char why[256];
  esym_proc *p = esym_open(pid, why, sizeof why);
  if (child) {
    int st;
    kill(child, SIGKILL);
    waitpid(child, &st, 0);
  }
  if (!p) {
    fprintf(s->err, "vprobe: %s\n", why);
    return 1;
  }
  list_proc(s->out, p, glob);
  fflush(s->out);
  esym_close(p);
  return 0;
}

/* ---- -r ---- */

typedef struct diff {
  uint64_t addr;
  size_t n;
  uint8_t *file; /* the bytes the code should have */
} diff;

typedef struct scan {
  diff *d;
  size_t nd, cap;
  int region;            /* our shared region is still mapped */
  int agent;             /* the agent library is mapped */
  uint64_t region_lo;    /* where the region is mapped */
  size_t bytes_checked;
} scan;

static void add_diff(scan *sc, uint64_t addr, const uint8_t *file, size_t n) {
  if (sc->nd == sc->cap) {
    sc->cap = sc->cap ? sc->cap * 2 : 16;
    sc->d = realloc(sc->d, sc->cap * sizeof *sc->d);
  }
  uint8_t *b = malloc(n);
  memcpy(b, file, n);
  sc->d[sc->nd++] = (diff){addr, n, b};
}

/* Compare one executable mapping with its file. */
static void scan_mapping(scan *sc, int pid, uint64_t lo, uint64_t hi, uint64_t off,
                         const char *path) {
  char fn[PATH_MAX + 32];
  snprintf(fn, sizeof fn, "/proc/%d/root%s", pid, path);
  int fd = open(fn, O_RDONLY | O_CLOEXEC);
  if (fd < 0) fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return;
  size_t len = hi - lo;
  uint8_t *file = malloc(len), *mem = malloc(len);
  ssize_t fl = pread(fd, file, len, (off_t)off);
  close(fd);
  if (fl > 0 && inj_read(esym_live_tid(pid), lo, mem, (size_t)fl) == 0) {
    sc->bytes_checked += (size_t)fl;
    /* runs of differing bytes, merged when less than 16 bytes apart */
    for (size_t i = 0; i < (size_t)fl;) {
      if (file[i] == mem[i]) { i++; continue; }
      size_t last = i;
      for (size_t j = i + 1; j < (size_t)fl && j - last < 16; j++)
        if (file[j] != mem[j]) last = j;
      /* an injection stub in a code cave is not a probe, and one may still
       * be running there */
      if (!inj_stub_covers(esym_live_tid(pid), lo + i, last - i + 1))
        add_diff(sc, lo + i, file + i, last - i + 1);
      i = last + 1;
    }
  }
  free(file);
  free(mem);
}

static int scan_proc(scan *sc, int pid) {
  char fn[64], line[PATH_MAX + 128];
  snprintf(fn, sizeof fn, "/proc/%d/maps", esym_live_tid(pid));
  FILE *f = fopen(fn, "re");
  if (!f) return -1;
  while (fgets(line, sizeof line, f)) {
    unsigned long long lo, hi, off;
    char perm[8];
    int pos = 0;
    if (sscanf(line, "%llx-%llx %7s %llx %*s %*s %n", &lo, &hi, perm, &off, &pos) < 4 || !pos)
      continue;
    char *path = line + pos;
    path[strcspn(path, "\n")] = 0;
    if (strstr(path, "/memfd:vprobe-vmx")) {
      sc->region = 1;
      sc->region_lo = lo;
      continue;
    }
    const char *b = strrchr(path, '/');
    if (b && strcmp(b + 1, VMX_AGENT_LIB) == 0) { sc->agent = 1; continue; }
    if (path[0] != '/' || perm[2] != 'x' || strstr(path, " (deleted)")) continue;
    scan_mapping(sc, pid, lo, hi, off, path);
  }
  fclose(f);
  return 0;
}

/* The agent's state as it wrote it in the region, or -1. */
static int region_state(int pid, uint64_t lo) {
  vmx_shared h;
  if (inj_read(esym_live_tid(pid), lo, &h, sizeof h) != 0 || h.magic != VMX_MAGIC) return -1;
  return (int)h.agent_state;
}

/* Stop every thread (seize + interrupt), or undo it; returns how many. */
static int all_threads(int pid, int stop, int *tids, int cap) {
  char fn[64];
  snprintf(fn, sizeof fn, "/proc/%d/task", pid);
  if (!stop) {
    for (int i = 0; i < cap; i++) ptrace(PTRACE_DETACH, tids[i], 0, 0);
    return cap;
  }
  int n = 0;
  DIR *d = opendir(fn);
  struct dirent *e;
  while (d && (e = readdir(d)) && n < cap) {
    int tid = atoi(e->d_name);
    if (tid <= 0 || ptrace(PTRACE_SEIZE, tid, 0, 0) != 0) continue;
    ptrace(PTRACE_INTERRUPT, tid, 0, 0);
    int st;
    while (waitpid(tid, &st, __WALL) == tid && WIFSTOPPED(st) && (st >> 16) != PTRACE_EVENT_STOP) {
      ptrace(PTRACE_CONT, tid, 0, (void *)(long)WSTOPSIG(st));
      ptrace(PTRACE_INTERRUPT, tid, 0, 0);
    }
    tids[n++] = tid;
  }
  if (d) closedir(d);
  return n;
}

static const char *state_name(int st) {
  switch (st) {
  case VMX_ST_NONE: return "not loaded";
  case VMX_ST_LOADING: return "loading";
  case VMX_ST_RUNNING: return "running";
  case VMX_ST_UNLOADED: return "unloaded";
  case VMX_ST_FAILED: return "failed";
  default: return "unknown";
  }
}

int vmx_reset(int pid, FILE *err) {
  if (pid <= 0 || (kill(pid, 0) != 0 && errno == ESRCH)) {
    fprintf(err, "vprobe: process %d: no such process\n", pid);
    return 1;
  }
  scan sc;
  memset(&sc, 0, sizeof sc);
  if (scan_proc(&sc, pid) != 0) {
    fprintf(err, "vprobe: process %d: cannot read its maps\n", pid);
    return 1;
  }
  int st = sc.region ? region_state(pid, sc.region_lo) : -1;
  if (!sc.agent && !sc.region)
    fprintf(err, "vprobe: process %d: no vprobe agent in it\n", pid);
  else
    fprintf(err, "vprobe: process %d: agent %s%s\n", pid,
            sc.region ? state_name(st) : "idle",
            sc.agent ? "" : " (library gone)");
  int rc = 0;
  if (sc.nd) {
    char why[256];
    esym_proc *p = esym_open(pid, why, sizeof why);
    int tids[4096];
    int nt = all_threads(pid, 1, tids, 4096);
    size_t fixed = 0;
    for (size_t i = 0; i < sc.nd; i++) {
      const esym_fn *f = p ? esym_at(p, sc.d[i].addr) : NULL;
      if (inj_write(esym_live_tid(pid), sc.d[i].addr, sc.d[i].file, sc.d[i].n) == 0) fixed++;
      if (f)
        fprintf(err, "vprobe: process %d: restored %zu bytes at %s.%s+0x%llx\n", pid,
                sc.d[i].n, p->mods[f->mod].name, f->name,
                (unsigned long long)(sc.d[i].addr - f->addr));
      else
        fprintf(err, "vprobe: process %d: restored %zu bytes at 0x%llx\n", pid,
                sc.d[i].n, (unsigned long long)sc.d[i].addr);
    }
    all_threads(pid, 0, tids, nt);
    esym_close(p);
    if (fixed != sc.nd) {
      fprintf(err, "vprobe: process %d: %zu patches could not be undone\n", pid, sc.nd - fixed);
      rc = 1;
    }
  } else {
    fprintf(err, "vprobe: process %d: code intact (%zu bytes checked)\n", pid,
            sc.bytes_checked);
  }
  for (size_t i = 0; i < sc.nd; i++) free(sc.d[i].file);
  free(sc.d);
  return rc;
}
