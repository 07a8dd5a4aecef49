/*
 * vmx.c - the VMX engine's controller: resolve, build the shared region,
 * get the agent in (LD_PRELOAD at launch, ptrace at attach), load, drain
 * output until it is time to stop, unload.
 *
 * The control channel is a unix socket in a private 0700 directory; the
 * agent connects to it and only a peer whose SO_PEERCRED pid is the target
 * is accepted.  The socket and its directory are removed as soon as the
 * agent is connected.
 */
#include "vmx/vmx.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "vmx/inject.h"
#include "vmx/vmx_unwind.h"

#define AGENT_TIMEOUT_MS 10000
#define TICK_MS 20
#define DRAIN_LAG_NS 5000000ull /* records younger than this may still be
                                   overtaken by an older one */

/* The control channel: listening socket until the agent connects. */
typedef struct vmx_chan {
  int lfd, cfd;
  char dir[64], path[96];
  char in[1024];
  size_t nin;
} vmx_chan;

/* Our mapping of the shared region.  The process can write all of it, so
 * what we laid out is kept here too (h, the space's view; the points and
 * strings are the plan's): no count or offset is read back from the
 * region, only what the agent reports (placement, state, its error). */
typedef struct vmx_region {
  int fd;
  void *mem;
  size_t size;
  vmx_shared *hdr;
  vmx_shared h;    /* the header as written */
  vmx_point *pts;
  rt_space *space;
  rt_view *view;
} vmx_region;

static void vmx_region_free(vmx_region *rg);

/* ---- control socket ---- */

static void vmx_chan_close(vmx_chan *ch) {
  if (ch->lfd >= 0) close(ch->lfd);
  if (ch->path[0]) unlink(ch->path);
  if (ch->dir[0]) rmdir(ch->dir);
  ch->lfd = -1;
  ch->path[0] = ch->dir[0] = 0;
}

/* Listen in a fresh 0700 directory, both owned by uid:gid (the target's
 * user, so an agent in a process of another user can connect). */
static int vmx_chan_open(vmx_chan *ch, int uid, int gid, char *err, size_t cap) {
  memset(ch, 0, sizeof *ch);
  ch->lfd = ch->cfd = -1;
  snprintf(ch->dir, sizeof ch->dir, "/tmp/vprobe.XXXXXX");
  if (!mkdtemp(ch->dir)) {
    ch->dir[0] = 0;
    snprintf(err, cap, "cannot create a socket directory: %s", strerror(errno));
    return -1;
  }
  snprintf(ch->path, sizeof ch->path, "%s/ctl", ch->dir);
  struct sockaddr_un a = {.sun_family = AF_UNIX};
  snprintf(a.sun_path, sizeof a.sun_path, "%s", ch->path);
  ch->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (ch->lfd < 0 || bind(ch->lfd, (struct sockaddr *)&a, sizeof a) != 0 ||
      chmod(ch->path, 0600) != 0 || listen(ch->lfd, 4) != 0) {
    snprintf(err, cap, "control socket %s: %s", ch->path, strerror(errno));
    vmx_chan_close(ch);
    return -1;
  }
  if (uid >= 0 && (uid != (int)geteuid() || gid != (int)getegid())) {
    if (chown(ch->dir, (uid_t)uid, (gid_t)gid) != 0 ||
        chown(ch->path, (uid_t)uid, (gid_t)gid) != 0) {
      snprintf(err, cap, "control socket %s: chown: %s", ch->path, strerror(errno));
      vmx_chan_close(ch);
      return -1;
    }
  }
  return 0;
}

/* Take pending connections: 1 once the target's agent is connected (the
 * others are refused by closing them), 0 if not yet. */
static int vmx_chan_accept(vmx_chan *ch, int pid) {
  for (;;) {
    int fd = accept4(ch->lfd, NULL, NULL, SOCK_CLOEXEC);
    if (fd < 0) return 0;
    struct ucred cr;
    socklen_t len = sizeof cr;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) == 0 && cr.pid == pid) {
      ch->cfd = fd;
      /* nobody else needs to find it any more */
      vmx_chan_close(ch);
      return 1;
    }
    close(fd);
  }
}

static int vmx_send(vmx_chan *ch, const char *msg, int fd) {
  struct iovec iov = {(void *)msg, strlen(msg)};
  union { char buf[CMSG_SPACE(sizeof(int))]; struct cmsghdr align; } u;
  struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1};
  if (fd >= 0) {
    memset(&u, 0, sizeof u);
    m.msg_control = u.buf;
    m.msg_controllen = sizeof u.buf;
    struct cmsghdr *c = CMSG_FIRSTHDR(&m);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &fd, sizeof fd);
  }
  return sendmsg(ch->cfd, &m, MSG_NOSIGNAL) == (ssize_t)iov.iov_len ? 0 : -1;
}

/* One reply line into line (without the newline): 1 got one, 0 timed out,
 * -1 EOF or error. */
static int vmx_recv_line(vmx_chan *ch, char *line, size_t cap, int timeout_ms) {
  for (;;) {
    char *nl = memchr(ch->in, '\n', ch->nin);
    if (nl) {
      size_t n = (size_t)(nl - ch->in);
      snprintf(line, cap, "%.*s", (int)n, ch->in);
      memmove(ch->in, nl + 1, ch->nin - n - 1);
      ch->nin -= n + 1;
      return 1;
    }
    struct pollfd pf = {ch->cfd, POLLIN, 0};
    int r = poll(&pf, 1, timeout_ms);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return r;
    ssize_t k = read(ch->cfd, ch->in + ch->nin, sizeof ch->in - ch->nin);
    if (k <= 0) return -1;
    ch->nin += (size_t)k;
    if (ch->nin == sizeof ch->in) ch->nin = 0; /* garbage: drop it */
  }
}

/* ---- the shared region ---- */

static uint64_t up(uint64_t v, uint64_t a) { return (v + a - 1) & ~(a - 1); }

static int vmx_region_build(vmx_region *rg, const vp_image *img, const vmx_plan *pl,
                     const vmx_unwind *uw, uint32_t nuw, uint32_t cpu_limit_ppm,
                     char *err, size_t cap) {
  size_t ilen;
  const void *ibytes = vp_image_bytes(img, &ilen);
  rt_layout lay;
  memset(&lay, 0, sizeof lay);
  vp_image_layout(img, &lay);
  size_t slen = rt_space_size(&lay);
  vmx_shared h;
  memset(&h, 0, sizeof h);
  h.magic = VMX_MAGIC;
  h.version = 1;
  h.cpu_limit_ppm = cpu_limit_ppm;
  h.image_off = up(sizeof h, 64);
  h.image_len = ilen;
  h.space_off = up(h.image_off + ilen, 4096);
  h.space_len = slen;
  h.points_off = up(h.space_off + slen, 64);
  h.npoints = pl->npts;
  h.syms_off = up(h.points_off + (uint64_t)pl->npts * sizeof(vmx_point), 64);
  h.nsyms = pl->nsyms;
  h.str_off = up(h.syms_off + (uint64_t)pl->nsyms * sizeof(vmx_sym), 64);
  h.str_len = pl->slen;
  h.unwind_off = up(h.str_off + pl->slen, 64);
  h.nunwind = nuw;
  h.size = up(h.unwind_off + (uint64_t)nuw * sizeof(vmx_unwind), 4096);
  rg->fd = memfd_create("vprobe-vmx", MFD_CLOEXEC);
  if (rg->fd < 0 || ftruncate(rg->fd, (off_t)h.size) != 0) {
    snprintf(err, cap, "shared region: %s", strerror(errno));
    if (rg->fd >= 0) close(rg->fd);
    return -1;
  }
  rg->mem = mmap(NULL, h.size, PROT_READ | PROT_WRITE, MAP_SHARED, rg->fd, 0);
  if (rg->mem == MAP_FAILED) {
    snprintf(err, cap, "shared region: %s", strerror(errno));
    close(rg->fd);
    return -1;
  }
  rg->size = h.size;
  char *m = rg->mem;
  memcpy(m + h.image_off, ibytes, ilen);
  rg->space = rt_space_init(m + h.space_off, slen, &lay);
  rg->view = rg->space ? rt_view_new(rg->space, slen) : NULL;
  if (!rg->view) {
    snprintf(err, cap, "shared region: cannot lay out the runtime space");
    vmx_region_free(rg);
    return -1;
  }
  memcpy(m + h.points_off, pl->pts, (size_t)pl->npts * sizeof(vmx_point));
  memcpy(m + h.syms_off, pl->syms, (size_t)pl->nsyms * sizeof(vmx_sym));
  memcpy(m + h.str_off, pl->str, pl->slen);
  if (nuw) memcpy(m + h.unwind_off, uw, (size_t)nuw * sizeof(vmx_unwind));
  memcpy(m, &h, sizeof h);
  rg->hdr = (vmx_shared *)m;
  rg->h = h;
  rg->pts = (vmx_point *)(m + h.points_off);
  return 0;
}

static void vmx_region_free(vmx_region *rg) {
  if (rg->mem && rg->mem != MAP_FAILED) munmap(rg->mem, rg->size);
  if (rg->fd >= 0) close(rg->fd);
  rt_view_free(rg->view);
  memset(rg, 0, sizeof *rg);
  rg->fd = -1;
}

/* ---- the agent library ---- */

/* <dir of vprobe>/../lib/libvpagent.so; VPROBE_AGENT_LIB overrides it. */
static int vmx_agent_path(char *out, size_t cap, char *err, size_t ecap) {
  const char *env = getenv("VPROBE_AGENT_LIB");
  char buf[PATH_MAX + 64];
  if (env && *env) {
    snprintf(buf, sizeof buf, "%s", env);
  } else {
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) n = 0;
    exe[n] = 0;
    char *sl = strrchr(exe, '/');
    if (sl) *sl = 0;
    snprintf(buf, sizeof buf, "%s/../lib/%s", exe, VMX_AGENT_LIB);
  }
  if (!realpath(buf, out) || access(out, R_OK) != 0) {
    snprintf(err, ecap, "agent %.300s: not found (build it, or set VPROBE_AGENT_LIB)", buf);
    return -1;
  }
  (void)cap;
  return 0;
}

/* ---- loading ---- */

/* Only how comes from the region: the points and names are the plan's. */
static void vmx_agent_error(const vmx_region *rg, char *out, size_t cap);

/* One line per point the agent could not place (with the agent's first
 * reason), and the trap sites: each by name when there are a few, else
 * counted on one line (a glob over a library can make dozens). */
static void vmx_report_placement(const vmx_region *rg, const vmx_plan *pl,
                                 FILE *err) {
  const char *last = NULL, *first[3];
  uint32_t ntraps = 0;
  char why[sizeof rg->hdr->agent_error];
  vmx_agent_error(rg, why, sizeof why);
  for (uint32_t i = 0; i < rg->h.npoints && i < pl->npts; i++) {
    uint32_t how = __atomic_load_n(&rg->pts[i].how, __ATOMIC_RELAXED);
    const char *name = pl->str + pl->pts[i].name_off;
    if (how == VMX_HOW_TRAP && (!last || strcmp(last, name))) {
      if (ntraps < 3) first[ntraps] = name;
      ntraps++;
    } else if (how == VMX_HOW_FAILED) {
      fprintf(err, "vprobe: %s: could not be placed%s%s\n", name, why[0] ? ": " : "", why);
    }
    last = name;
  }
  if (ntraps > 3)
    fprintf(err, "vprobe: %u probe points placed as traps (slower), %s, %s, %s...\n", ntraps,
            first[0], first[1], first[2]);
  else
    for (uint32_t i = 0; i < ntraps; i++)
      fprintf(err, "vprobe: %s: placed as a trap (slower)\n", first[i]);
}

/* Text from the process goes to the user's terminal: printable only. */
static void vmx_printable(char *t) {
  for (; *t; t++)
    if (*t < 0x20 || *t == 0x7f) *t = '?';
}

/* The agent's error text, copied out of the region once, cut at its NUL
 * or its field's end, anything unprintable shown as '?'. */
static void vmx_agent_error(const vmx_region *rg, char *out, size_t cap) {
  char e[sizeof rg->hdr->agent_error];
  memcpy(e, rg->hdr->agent_error, sizeof e);
  size_t n = strnlen(e, sizeof e);
  if (n >= cap) n = cap - 1;
  memcpy(out, e, n);
  out[n] = 0;
  vmx_printable(out);
}

/* Send LOAD with the region and wait for the verdict. */
static int vmx_load(vmx_chan *ch, vmx_region *rg, char *err, size_t cap) {
  if (vmx_send(ch, "LOAD\n", rg->fd) != 0) {
    snprintf(err, cap, "agent: cannot send LOAD: %s", strerror(errno));
    return -1;
  }
  char line[512], why[201];
  int r = vmx_recv_line(ch, line, sizeof line, AGENT_TIMEOUT_MS);
  if (r == 1 && strcmp(line, "OK") == 0) return 0;
  if (r == 1) vmx_printable(line);
  if (r < 0) vmx_agent_error(rg, why, sizeof why);
  if (r == 1 && strncmp(line, "ERR", 3) == 0)
    snprintf(err, cap, "agent: %.300s", line[3] ? line + 4 : "load failed");
  else if (r == 0)
    snprintf(err, cap, "agent: no answer to LOAD in %d s", AGENT_TIMEOUT_MS / 1000);
  else if (r < 0 && why[0])
    snprintf(err, cap, "agent: %s", why);
  else
    snprintf(err, cap, "agent: unexpected answer to LOAD: %.200s", r == 1 ? line : "(closed)");
  return -1;
}

/* ---- the run ---- */

typedef struct run {
  ctl_session *s;
  int pid, child;        /* child: launch mode */
  int pidfd;
  struct stat exe;       /* identity of the program, to notice an exec */
  vmx_chan ch;
  vmx_region rg;
  vmx_plan pl;
  esym_proc *proc;
  int status;            /* exit status of a launched command, -1 unknown */
  int corrupt;           /* the region was found corrupt: probes ended */
  char err[512];
} run;

static int pidfd_of(int pid) { return (int)syscall(SYS_pidfd_open, pid, 0); }

static int exe_stat(int pid, struct stat *st) {
  char fn[64];
  snprintf(fn, sizeof fn, "/proc/%d/exe", esym_live_tid(pid));
  return stat(fn, st);
}

/* Has the process exec'd since we loaded?  Its program changed, or our
 * region is no longer mapped in it. */
static int execd(run *r) {
  struct stat st;
  if (exe_stat(r->pid, &st) != 0) return 0;
  if (st.st_dev != r->exe.st_dev || st.st_ino != r->exe.st_ino) return 1;
  char fn[64], line[512];
  snprintf(fn, sizeof fn, "/proc/%d/maps", esym_live_tid(r->pid));
  FILE *f = fopen(fn, "re");
  if (!f) return 0;
  int found = 0;
  while (!found && fgets(line, sizeof line, f)) found = strstr(line, "/memfd:vprobe-vmx") != NULL;
  fclose(f);
  return !found;
}

static int status_of(int st) {
  if (WIFEXITED(st)) return WEXITSTATUS(st);
  if (WIFSIGNALED(st)) return 128 + WTERMSIG(st);
  return 1;
}

/* Launched child gone?  Reaps it. */
static int child_gone(run *r, int block) {
  if (!r->child) return 0;
  if (r->status >= 0) return 1;
  int st;
  for (;;) {
    int w = waitpid(r->child, &st, block ? 0 : WNOHANG);
    if (w == r->child) { r->status = status_of(st); return 1; }
    if (w < 0 && errno == EINTR && block) continue;
    return w < 0;
  }
}

static int proc_gone(run *r) {
  if (r->child) return child_gone(r, 0);
  if (r->pidfd >= 0) {
    struct pollfd pf = {r->pidfd, POLLIN, 0};
    return poll(&pf, 1, 0) > 0;
  }
  return kill(r->pid, 0) != 0 && errno == ESRCH;
}

/* Wait for the target's agent to connect (launch mode). */
static int await_agent(run *r) {
  for (int ms = 0; ms < AGENT_TIMEOUT_MS; ms += 5) {
    if (vmx_chan_accept(&r->ch, r->pid)) return 0;
    if (child_gone(r, 0)) return 1; /* ran and ended without an agent */
    struct pollfd pf = {r->ch.lfd, POLLIN, 0};
    poll(&pf, 1, 5);
  }
  snprintf(r->err, sizeof r->err,
           "process %d: the agent did not connect in %d s (a static program?)",
           r->pid, AGENT_TIMEOUT_MS / 1000);
  return -1;
}

static int resolve_and_build(run *r) {
  r->proc = esym_open(r->pid, r->err, sizeof r->err);
  if (!r->proc) return -1;
  if (vmx_resolve(&r->pl, r->s->img, r->proc, r->err, sizeof r->err) != 0) return -1;
  vmx_unwind *uw = NULL; /* vmxstack's CFI: read now, while the maps are */
  uint32_t nuw = vmx_unwind_build(r->proc, &uw);
  int rc = vmx_region_build(&r->rg, r->s->img, &r->pl, uw, nuw, r->s->cpu_limit_ppm,
                            r->err, sizeof r->err);
  free(uw);
  return rc;
}

/* The program execvp would run, for a look at it first. */
static int find_program(const char *cmd, char *out, size_t cap) {
  if (strchr(cmd, '/')) {
    snprintf(out, cap, "%s", cmd);
    return access(out, X_OK);
  }
  const char *path = getenv("PATH");
  if (!path) path = "/usr/local/bin:/usr/bin:/bin";
  while (*path) {
    size_t n = strcspn(path, ":");
    snprintf(out, cap, "%.*s/%s", (int)n, n ? path : ".", cmd);
    if (access(out, X_OK) == 0) return 0;
    path += n + (path[n] == ':');
  }
  return -1;
}

static int launch(run *r) {
  char agent[PATH_MAX], prog[PATH_MAX];
  if (vmx_agent_path(agent, sizeof agent, r->err, sizeof r->err) != 0) return -1;
  if (find_program(r->s->cmd[0], prog, sizeof prog) == 0 && esym_elf_is_static(prog)) {
    snprintf(r->err, sizeof r->err,
             "%.300s: a statically linked program: the agent cannot be preloaded into it",
             r->s->cmd[0]);
    return -1;
  }
  if (vmx_chan_open(&r->ch, -1, -1, r->err, sizeof r->err) != 0) return -1;
  fflush(NULL);
  int pid = fork();
  if (pid < 0) {
    snprintf(r->err, sizeof r->err, "fork: %s", strerror(errno));
    return -1;
  }
  if (pid == 0) {
    const char *old = getenv("LD_PRELOAD");
    char pre[2 * PATH_MAX];
    snprintf(pre, sizeof pre, "%s%s%s", agent, old && *old ? ":" : "", old ? old : "");
    setenv("LD_PRELOAD", pre, 1);
    setenv(VMX_AGENT_ENV, r->ch.path, 1);
    signal(SIGPIPE, SIG_DFL);
    execvp(r->s->cmd[0], r->s->cmd);
    fprintf(stderr, "vprobe: %s: %s\n", r->s->cmd[0], strerror(errno));
    _exit(127);
  }
  r->pid = r->child = pid;
  int a = await_agent(r);
  if (a == 1 && r->status != 127)
    fprintf(r->s->err, "vprobe: process %d ended before its agent connected\n", pid);
  if (a != 0) return a;
  if (exe_stat(pid, &r->exe) != 0) memset(&r->exe, 0, sizeof r->exe);
  return resolve_and_build(r);
}

static int proc_ids(int pid, int *uid, int *gid) {
  char fn[64], line[256];
  snprintf(fn, sizeof fn, "/proc/%d/status", pid);
  FILE *f = fopen(fn, "re");
  if (!f) return -1;
  *uid = *gid = -1;
  while (fgets(line, sizeof line, f)) {
    int a, b;
    if (sscanf(line, "Uid: %d %d", &a, &b) == 2) *uid = b;
    if (sscanf(line, "Gid: %d %d", &a, &b) == 2) *gid = b;
  }
  fclose(f);
  return *uid >= 0 && *gid >= 0 ? 0 : -1;
}

/* Attach mode: load the agent through a stub on one thread of the process
 * (inject.h), which is let go before anything else; then wait for the
 * agent to connect and load the region. */
static int attach_inject(run *r, const char *agent) {
  const esym_fn *dl = esym_lookup(r->proc, "libc", "dlopen");
  if (!dl) dl = esym_lookup(r->proc, NULL, "dlopen");
  const esym_fn *ds = esym_lookup(r->proc, "libc", "dlsym");
  if (!ds) ds = esym_lookup(r->proc, NULL, "dlsym");
  const esym_fn *de = esym_lookup(r->proc, "libc", "dlerror");
  if (!de) de = esym_lookup(r->proc, NULL, "dlerror");
  if (!dl || !ds || !de) {
    snprintf(r->err, sizeof r->err, "process %d: no dlopen in it (a static program, or not started yet?)", r->pid);
    return -1;
  }
  inj_ctx c;
  if (inj_attach(&c, r->pid) != 0) {
    snprintf(r->err, sizeof r->err, "%s", c.err);
    return -1;
  }
  /* the agent patches as soon as it is loaded: the thread must not be
   * sitting inside the bytes a jump will cover (a 5-byte jump plus the
   * rest of the last instruction it displaces) */
  uint64_t *lo = calloc(r->pl.npts + 1, sizeof *lo), *hi = calloc(r->pl.npts + 1, sizeof *hi);
  int nw = 0;
  for (uint32_t i = 0; lo && hi && i < r->pl.npts; i++)
    if (r->pl.pts[i].kind <= VMX_PT_ADDR) {
      lo[nw] = r->pl.pts[i].addr;
      hi[nw++] = r->pl.pts[i].addr + 20;
    }
  int stepped = lo && hi ? inj_step_out(&c, lo, hi, nw) : -1;
  free(lo);
  free(hi);
  inj_req q = {dl->addr, ds->addr, de->addr, agent, VMX_AGENT_START, r->ch.path, AGENT_TIMEOUT_MS};
  inj_res res;
  if (stepped != 0 || inj_load(&c, &q, &res) != 0) {
    snprintf(r->err, sizeof r->err, "%s", c.err[0] ? c.err : "out of memory");
    inj_detach(&c);
    return -1;
  }
  if (!res.handle || res.why[0]) {
    snprintf(r->err, sizeof r->err, "process %d: cannot load the agent: %s", r->pid,
             res.why[0] ? res.why : "dlopen failed");
    return -1;
  }
  if ((int)res.ret != 0) {
    snprintf(r->err, sizeof r->err, "process %d: %s failed (%d)", r->pid, VMX_AGENT_START,
             (int)res.ret);
    return -1;
  }
  for (int ms = 0; ms < AGENT_TIMEOUT_MS; ms += 2) {
    if (vmx_chan_accept(&r->ch, r->pid))
      return vmx_load(&r->ch, &r->rg, r->err, sizeof r->err) != 0 ? -1 : 0;
    if (proc_gone(r)) {
      snprintf(r->err, sizeof r->err, "process %d: ended before its agent connected", r->pid);
      return -1;
    }
    struct pollfd pf = {r->ch.lfd, POLLIN, 0};
    poll(&pf, 1, 2);
  }
  snprintf(r->err, sizeof r->err, "process %d: the agent did not connect in %d s",
           r->pid, AGENT_TIMEOUT_MS / 1000);
  return -1;
}

static int attach(run *r) {
  char agent[PATH_MAX];
  int uid, gid;
  if (kill(r->pid, 0) != 0 && errno == ESRCH) {
    snprintf(r->err, sizeof r->err, "process %d: no such process", r->pid);
    return -1;
  }
  if (r->pid == getpid()) {
    snprintf(r->err, sizeof r->err, "process %d: cannot probe vprobe itself", r->pid);
    return -1;
  }
  if (vmx_agent_path(agent, sizeof agent, r->err, sizeof r->err) != 0) return -1;
  if (proc_ids(r->pid, &uid, &gid) != 0) {
    snprintf(r->err, sizeof r->err, "process %d: cannot read its status", r->pid);
    return -1;
  }
  if (exe_stat(r->pid, &r->exe) != 0) {
    snprintf(r->err, sizeof r->err, "process %d: cannot see its program: %s", r->pid, strerror(errno));
    return -1;
  }
  r->pidfd = pidfd_of(r->pid);
  if (resolve_and_build(r) != 0) return -1;
  if (vmx_chan_open(&r->ch, uid, gid, r->err, sizeof r->err) != 0) return -1;
  return attach_inject(r, agent);
}

/* The one line for a region found corrupt; the run then ends. */
static void vmx_corrupt(run *r) {
  if (r->corrupt) return;
  r->corrupt = 1;
  fprintf(r->s->err, "vprobe: process %d: shared memory corrupted (%s); probes ended\n",
          r->pid, rt_view_error(r->rg.view));
  fflush(r->s->err);
}

/* ctl_drain against our own copy of the layout: 0, or -1 once the region
 * is found corrupt (said once). */
static int vmx_drain(run *r, uint64_t upto) {
  ctl_session *s = r->s;
  if (r->corrupt) return -1;
  /* Lost records are reported by the drain itself, once a second. */
  rt_view_drain(r->rg.view, upto, ctl_sink, s);
  ctl_tick(s);
  fflush(s->out);
  if (s->bin) fflush(s->bin);
  if (rt_view_error(r->rg.view)) vmx_corrupt(r);
  fflush(s->err);
  return r->corrupt ? -1 : 0;
}

/* Poll until it is time to unload; says why on err when it is not the
 * user's doing.  Returns 1 if the agent is still there to unload. */
static int watch(run *r, uint64_t start) {
  ctl_session *s = r->s;
  int tick = 0;
  while (!ctl_stopping(s, start)) {
    if (r->pl.only_load && !r->child) {
      usleep(TICK_MS * 1000); /* let VMXLoad's output land */
      return 1;
    }
    struct pollfd pf[2] = {{r->ch.cfd, POLLIN, 0}, {r->pidfd, POLLIN, 0}};
    int n = poll(pf, r->pidfd >= 0 ? 2 : 1, TICK_MS);
    if (vmx_drain(r, rt_clock() - DRAIN_LAG_NS) != 0) return 1;
    if (proc_gone(r)) return 0;
    int eof = 0;
    if (n > 0 && (pf[0].revents & (POLLIN | POLLHUP | POLLERR))) {
      char line[256];
      int k = vmx_recv_line(&r->ch, line, sizeof line, 0);
      if (k < 0) eof = 1; /* unsolicited lines are ignored */
    }
    if (eof || ++tick % 10 == 0) {
      if (proc_gone(r)) return 0;
      if (execd(r)) {
        fprintf(s->err, "vprobe: process %d exec'd; probes ended\n", r->pid);
        return 0;
      }
      if (eof) {
        /* the socket closes a little before an exit or exec shows */
        for (int i = 0; i < 100; i++) {
          if (proc_gone(r)) return 0;
          if (execd(r)) {
            fprintf(s->err, "vprobe: process %d exec'd; probes ended\n", r->pid);
            return 0;
          }
          usleep(10000);
        }
        fprintf(s->err, "vprobe: process %d: agent gone; probes ended\n", r->pid);
        return 0;
      }
    }
  }
  return 1;
}

/* ---- Unload probes the agent could not run ----
 * When the process ends (or execs) under a loaded script, its agent dies
 * with it and VMXUnload never ran there.  Those probes need no target, and
 * everything they can print (globals of this thread aside, aggregates) is
 * in the shared space: run them here, as the process's stand-in. */

typedef struct gone_target {
  int pid;
  char comm[64];
} gone_target;

static int gone_reg(void *self, int reg, uint64_t *val) {
  (void)self, (void)reg, (void)val;
  return -1;
}

static int gone_read(void *self, int model, uint64_t addr, void *buf, size_t n) {
  (void)self, (void)model, (void)addr, (void)buf, (void)n;
  return -1;
}

static int gone_call(void *self, int fn, const uint64_t *iargs,
                     const char *const *sargs, int nargs, uint64_t *iret,
                     char *sret) {
  gone_target *g = self;
  (void)iargs, (void)sargs, (void)nargs;
  if (fn == VP_FN_CURPID) { *iret = (uint64_t)g->pid; return 0; }
  if (fn == VP_FN_CURPROCNAME) { snprintf(sret, VP_STR_MAX, "%s", g->comm); return 0; }
  return -VP_EXC_MEM;
}

/* The space is checked whole first (nobody writes it any more): a corrupt
 * one is reported and its Unload probes are not run. */
static void unload_here(run *r, const char *comm) {
  if (!r->rg.hdr || r->corrupt ||
      __atomic_load_n(&r->rg.hdr->agent_state, __ATOMIC_RELAXED) == VMX_ST_UNLOADED)
    return;
  if (rt_view_check(r->rg.view) != 0) {
    vmx_corrupt(r);
    return;
  }
  gone_target g = {.pid = r->pid};
  snprintf(g.comm, sizeof g.comm, "%s", comm);
  vp_target t = {&g, gone_reg, gone_read, gone_call};
  rt_thread *th = rt_thread_get(r->rg.space, (uint32_t)syscall(SYS_gettid));
  if (!th) return;
  for (uint32_t i = 0; i < r->pl.npts; i++) {
    const vmx_point *pt = &r->pl.pts[i];
    if (pt->kind != VMX_PT_TIMER || pt->addr != UINT64_MAX) continue;
    vp_fire f = {.probe = (int)pt->probe, .target = &t};
    vp_run(th, r->s->img, &f);
  }
  r->rg.hdr->agent_state = VMX_ST_UNLOADED;
}

static void proc_comm(int pid, char *out, size_t cap) {
  char fn[64];
  snprintf(fn, sizeof fn, "/proc/%d/comm", pid);
  out[0] = 0;
  FILE *f = fopen(fn, "re");
  if (f) {
    if (fgets(out, (int)cap, f)) out[strcspn(out, "\n")] = 0;
    fclose(f);
  }
}

static void unload(run *r) {
  if (r->ch.cfd < 0 || vmx_send(&r->ch, "UNLOAD\n", -1) != 0) return;
  char line[256];
  for (;;) {
    int k = vmx_recv_line(&r->ch, line, sizeof line, AGENT_TIMEOUT_MS);
    if (k <= 0) {
      if (k == 0 && !proc_gone(r))
        fprintf(r->s->err, "vprobe: process %d: agent did not confirm UNLOAD\n", r->pid);
      return;
    }
    if (strcmp(line, "DONE") == 0) return;
  }
}

int vmx_run(ctl_session *s) {
  run r;
  memset(&r, 0, sizeof r);
  r.s = s;
  r.pid = s->pid;
  r.pidfd = -1;
  r.status = -1;
  r.ch.lfd = r.ch.cfd = -1;
  r.rg.fd = -1;
  int ok;
  if (s->cmd) {
    ok = launch(&r);
    if (ok == 1) { /* the command ended before its agent came */
      vmx_chan_close(&r.ch);
      return r.status;
    }
    if (ok == 0 && vmx_load(&r.ch, &r.rg, r.err, sizeof r.err) != 0) ok = -1;
  } else if (s->pid > 0) {
    ok = attach(&r);
  } else {
    snprintf(r.err, sizeof r.err, "VMX: no target (-x PID or -- CMD)");
    ok = -1;
  }
  int rc = 0;
  if (ok != 0) {
    fprintf(s->err, "vprobe: %s\n", r.err);
    if (r.child) { /* no half-loaded command either */
      kill(r.child, SIGKILL);
      child_gone(&r, 1);
    }
    rc = 1;
  } else {
    vmx_report_placement(&r.rg, &r.pl, s->err);
    char comm[64];
    proc_comm(r.pid, comm, sizeof comm);
    uint64_t start = rt_clock();
    if (watch(&r, start)) unload(&r);
    else unload_here(&r, comm);
    vmx_drain(&r, UINT64_MAX);
    if (r.child) {
      if (r.ch.cfd >= 0) { close(r.ch.cfd); r.ch.cfd = -1; }
      child_gone(&r, 1);
      rc = r.status;
    }
    if (r.corrupt) rc = 1;
  }
  if (r.ch.cfd >= 0) close(r.ch.cfd);
  vmx_chan_close(&r.ch);
  if (r.pidfd >= 0) close(r.pidfd);
  if (r.rg.mem) vmx_region_free(&r.rg);
  vmx_plan_free(&r.pl);
  esym_close(r.proc);
  return rc;
}
