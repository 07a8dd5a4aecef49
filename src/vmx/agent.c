/*
 * agent.c - the VMX agent's life: started by its constructor (launch mode,
 * LD_PRELOAD, before main) or by vpagent_start called through ptrace
 * (attach mode); talks to vprobe over a unix socket (proto.h), maps the
 * shared region, places every probe point, runs timer and profile probes,
 * and puts every byte back at unload, at EOF, and in fork children.
 *
 * Everything but the probe hits happens on the agent's own thread, which
 * blocks asynchronous signals and is marked busy for good, so probes on
 * functions it calls (libc's) never fire for it.
 *
 * Per-process globals: `cur`, the load in force, which the profile signal
 * handler and the fork handler need; set once per load.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include "vmx/agent.h"
#include "vmx/ustack.h"

#define EXPORT __attribute__((visibility("default")))
#define SCAN_NS 100000000ull /* thread scan and housekeeping: 100 ms */
#define PROF_SIG (SIGRTMAX - 3)

static agent *volatile cur;
static uint32_t gens;
static struct sigaction prev_prof;

static void fail(agent *ag, const char *fmt, const char *what) {
  if (ag->sh) {
    snprintf(ag->sh->agent_error, sizeof ag->sh->agent_error, fmt, what);
    ag->sh->agent_state = VMX_ST_FAILED;
  }
}

/* ---- socket ---- */

static int send_line(int fd, const char *s) {
  size_t n = strlen(s);
  return send(fd, s, n, MSG_NOSIGNAL) == (ssize_t)n ? 0 : -1;
}

/* One line (without the newline) and any file descriptor passed with it. */
static int recv_line(int fd, char *buf, size_t cap, int *passed) {
  size_t n = 0;
  if (passed)
    *passed = -1;
  while (n + 1 < cap) {
    char c;
    union {
      struct cmsghdr h;
      char b[CMSG_SPACE(sizeof(int))];
    } u;
    struct iovec io = {&c, 1};
    struct msghdr m = {0};
    m.msg_iov = &io, m.msg_iovlen = 1;
    m.msg_control = u.b, m.msg_controllen = sizeof u.b;
    ssize_t r = recvmsg(fd, &m, MSG_CMSG_CLOEXEC);
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0)
      return -1;
    struct cmsghdr *h = CMSG_FIRSTHDR(&m);
    if (h && h->cmsg_level == SOL_SOCKET && h->cmsg_type == SCM_RIGHTS && passed)
      memcpy(passed, CMSG_DATA(h), sizeof(int));
    if (c == '\n')
      break;
    buf[n++] = c;
  }
  buf[n] = 0;
  return 0;
}

/* Connect to vprobe, refusing a peer that is neither root nor us. */
static int dial(agent *ag) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return -1;
  struct sockaddr_un a = {0};
  a.sun_family = AF_UNIX;
  snprintf(a.sun_path, sizeof a.sun_path, "%s", ag->sockpath);
  if (connect(fd, (struct sockaddr *)&a, sizeof a)) {
    close(fd);
    return -1;
  }
  struct ucred cr;
  socklen_t l = sizeof cr;
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &l) ||
      (cr.uid != 0 && cr.uid != getuid())) {
    close(fd);
    return -1;
  }
  return fd;
}

/* ---- loading ---- */

static int map_region(agent *ag, int memfd) {
  struct stat st;
  if (fstat(memfd, &st) || st.st_size < (off_t)sizeof(vmx_shared))
    return -1;
  void *p = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
  close(memfd);
  if (p == MAP_FAILED)
    return -1;
  /* A child forked without pthread_atfork's handlers (a raw clone) must
   * not inherit write access to the region either. */
  madvise(p, (size_t)st.st_size, MADV_DONTFORK);
  ag->sh = p, ag->shsize = (size_t)st.st_size;
  return 0;
}

static int in_region(agent *ag, uint64_t off, uint64_t len) {
  return off <= ag->shsize && len <= ag->shsize - off;
}

/* Check the region's tables and pick them up. */
static const char *attach_region(agent *ag) {
  vmx_shared *sh = ag->sh;
  char *base = (char *)sh;
  if (sh->magic != VMX_MAGIC)
    return "bad magic in the shared region";
  if (sh->size > ag->shsize || !in_region(ag, sh->image_off, sh->image_len) ||
      !in_region(ag, sh->space_off, sh->space_len) ||
      !in_region(ag, sh->points_off, (uint64_t)sh->npoints * sizeof(vmx_point)) ||
      !in_region(ag, sh->syms_off, (uint64_t)sh->nsyms * sizeof(vmx_sym)) ||
      !in_region(ag, sh->str_off, sh->str_len) ||
      !in_region(ag, sh->unwind_off, (uint64_t)sh->nunwind * sizeof(vmx_unwind)))
    return "shared region tables out of bounds";
  ag->img = vp_image_from_bytes(base + sh->image_off, sh->image_len);
  if (!ag->img)
    return "the VP image does not check";
  ag->sp = rt_space_attach(base + sh->space_off, sh->space_len);
  if (!ag->sp)
    return "the runtime space does not check";
  ag->pts = (vmx_point *)(base + sh->points_off);
  ag->npoints = sh->npoints;
  ag->syms = (const vmx_sym *)(base + sh->syms_off);
  ag->nsyms = sh->nsyms;
  ag->strs = base + sh->str_off;
  ag->strs_len = sh->str_len;
  ag->unw = (const vmx_unwind *)(base + sh->unwind_off);
  ag->nunw = sh->nunwind;
  if (ag->strs_len && ag->strs[ag->strs_len - 1])
    return "string table not terminated";
  for (uint32_t i = 0; i < sh->npoints; i++)
    if (ag->pts[i].probe >= (uint32_t)vp_image_nprobes(ag->img))
      return "a probe point names no probe";
  return NULL;
}

static int is_code_point(uint32_t kind) {
  return kind == VMX_PT_ENTER || kind == VMX_PT_EXIT || kind == VMX_PT_OFFSET ||
         kind == VMX_PT_ADDR;
}

/* Group the code points by address into sites, ENTER-like points first. */
static const char *plan_sites(agent *ag) {
  uint32_t np = ag->sh->npoints;
  ag->sites = calloc(np ? np : 1, sizeof *ag->sites);
  ag->pidx = calloc(np ? np : 1, sizeof *ag->pidx);
  ag->fps = calloc(np ? np : 1, sizeof *ag->fps);
  if (!ag->sites || !ag->pidx || !ag->fps)
    return "out of memory";
  uint32_t k = 0;
  for (uint32_t i = 0; i < np; i++) {
    const vmx_point *p = &ag->pts[i];
    if (!is_code_point(p->kind))
      continue;
    int seen = 0;
    for (int j = 0; j < ag->nsites; j++)
      seen |= ag->sites[j].addr == p->addr;
    if (seen)
      continue;
    agent_site *s = &ag->sites[ag->nsites++];
    s->ag = ag, s->addr = p->addr;
    const vmx_sym *sym = ustack_sym(ag->syms, ag->nsyms, p->addr);
    if (sym && !sym->size && sym->addr != p->addr)
      sym = NULL; /* extent unknown */
    if (sym && sym->size)
      s->fn_lo = sym->addr, s->fn_hi = sym->addr + sym->size;
    s->at_entry = (sym && sym->addr == p->addr) || p->kind == VMX_PT_ENTER ||
                  p->kind == VMX_PT_EXIT;
    s->room = p->room;
    for (int pass = 0; pass < 2; pass++) {
      if (pass)
        s->xfirst = k;
      else
        s->first = k;
      for (uint32_t j = i; j < np; j++) {
        const vmx_point *q = &ag->pts[j];
        if (q->addr == p->addr && is_code_point(q->kind) && (q->kind == VMX_PT_EXIT) == pass)
          ag->fps[k] = agent_point_fp(ag, j), ag->pidx[k++] = j;
      }
      if (pass)
        s->xn = k - s->xfirst;
      else
        s->n = k - s->first;
    }
  }
  return NULL;
}

/* The controller's room comes from its own sweep of the code (and counts
 * the other points); the other sites of this load are counted here again,
 * for a region whose room is 0 (unknown) or that could not know them: a
 * jump must not displace the byte another site patches. */
static void limit_rooms(agent *ag) {
  for (int i = 0; i < ag->nsites; i++) {
    agent_site *s = &ag->sites[i];
    for (int j = 0; j < ag->nsites; j++) {
      uint64_t d = ag->sites[j].addr - s->addr;
      if (ag->sites[j].addr > s->addr && d < 256 && (!s->room || d < s->room))
        s->room = (uint32_t)d;
    }
    if (s->room > 255)
      s->room = 255;
  }
}

static void set_how(agent *ag, agent_site *s, uint32_t how) {
  for (uint32_t i = 0; i < ag->sh->npoints; i++)
    if (ag->pts[i].addr == s->addr && is_code_point(ag->pts[i].kind))
      ag->pts[i].how = how;
}

/* The agent's own code, which must never be patched (its hook would call
 * itself). */
typedef struct span {
  uint64_t lo, hi, at;
} span;

static int find_self(struct dl_phdr_info *info, size_t size, void *arg) {
  span *sp = arg;
  (void)size;
  uint64_t lo = UINT64_MAX, hi = 0;
  for (int i = 0; i < info->dlpi_phnum; i++) {
    const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
    if (ph->p_type != PT_LOAD)
      continue;
    uint64_t a = info->dlpi_addr + ph->p_vaddr;
    if (a < lo)
      lo = a;
    if (a + ph->p_memsz > hi)
      hi = a + ph->p_memsz;
  }
  if (sp->at >= lo && sp->at < hi) {
    sp->lo = lo, sp->hi = hi;
    return 1;
  }
  return 0;
}

static void place_sites(agent *ag, tramp_set *ts) {
  span self = {0, 0, (uint64_t)(void *)agent_hit};
  dl_iterate_phdr(find_self, &self);
  limit_rooms(ag);
  for (int i = 0; i < ag->nsites; i++) {
    agent_site *s = &ag->sites[i];
    char err[200];
    if (s->addr >= self.lo && s->addr < self.hi) {
      set_how(ag, s, VMX_HOW_FAILED);
      if (!ag->sh->agent_error[0])
        snprintf(ag->sh->agent_error, sizeof ag->sh->agent_error,
                 "0x%llx: inside the agent itself", (unsigned long long)s->addr);
      continue;
    }
    int flags = (s->at_entry ? TRAMP_ENTRY : 0) | TRAMP_ROOM(s->room);
    s->ts = tramp_prepare(ts, s->addr, s->fn_lo, s->fn_hi, flags, agent_hit, s, err, sizeof err);
    if (!s->ts) {
      set_how(ag, s, VMX_HOW_FAILED);
      if (!ag->sh->agent_error[0])
        snprintf(ag->sh->agent_error, sizeof ag->sh->agent_error, "%s", err);
    }
  }
  tramp_site **all = calloc((size_t)ag->nsites + 1, sizeof *all);
  int n = 0;
  for (int i = 0; i < ag->nsites && all; i++)
    if (ag->sites[i].ts)
      all[n++] = ag->sites[i].ts;
  if (all)
    tramp_commit(ts, all, n);
  free(all);
  for (int i = 0; i < ag->nsites; i++) {
    agent_site *s = &ag->sites[i];
    if (!s->ts)
      continue;
    int how = tramp_site_how(s->ts);
    set_how(ag, s, how == TRAMP_JUMP ? VMX_HOW_JUMP : how == TRAMP_TRAP ? VMX_HOW_TRAP
                                                                         : VMX_HOW_FAILED);
  }
}

/* ---- timer probes, on the agent thread ---- */

static void fire_agent(agent *ag, uint32_t point) {
  ag->me->busy = 1;
  agent_fp fp = agent_point_fp(ag, point);
  agent_fire_points(ag, ag->me, NULL, &fp, 1, 0, 0);
}

static void plan_timers(agent *ag) {
  uint32_t np = ag->sh->npoints;
  ag->timers = calloc(np ? np : 1, sizeof *ag->timers);
  uint64_t now = rt_clock();
  for (uint32_t i = 0; i < np && ag->timers; i++) {
    const vmx_point *p = &ag->pts[i];
    if (p->kind != VMX_PT_TIMER || p->addr == 0 || p->addr == UINT64_MAX)
      continue;
    agent_timer *t = &ag->timers[ag->ntimers++];
    t->point = i, t->period = p->addr, t->next = now + p->addr;
  }
}

static void fire_kind(agent *ag, uint64_t which) { /* VMXLoad (0), VMXUnload (max) */
  for (uint32_t i = 0; i < ag->sh->npoints; i++)
    if (ag->pts[i].kind == VMX_PT_TIMER && ag->pts[i].addr == which)
      fire_agent(ag, i);
}

/* Fire what is due; the time until the next deadline (ns). */
static uint64_t run_timers(agent *ag) {
  uint64_t now = rt_clock(), wait = SCAN_NS;
  for (int i = 0; i < ag->ntimers; i++) {
    agent_timer *t = &ag->timers[i];
    if (t->next <= now) {
      fire_agent(ag, t->point);
      t->next = rt_timer_next(t->next, t->period, now);
    }
    if (t->next - now < wait)
      wait = t->next - now;
  }
  return wait;
}

/* ---- profile probes: a CPU-time timer per thread ---- */

static void prof_handler(int sig, siginfo_t *si, void *uc) {
  agent *ag = cur;
  if (si->si_code == SI_TIMER && ag && (uint32_t)si->si_value.sival_int < ag->npoints) {
    if (!ag->on) /* a late tick after unload */
      return;
  } else {
    if (prev_prof.sa_flags & SA_SIGINFO && prev_prof.sa_sigaction)
      prev_prof.sa_sigaction(sig, si, uc);
    else if (prev_prof.sa_handler != SIG_DFL && prev_prof.sa_handler != SIG_IGN)
      prev_prof.sa_handler(sig);
    return;
  }
  /* errno is left alone: nothing below sets it (and __errno_location
   * is libc's, which may be probed). */
  agent_tls *t = agent_tls_get();
  if (t && !t->busy) {
    t->busy = 1;
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    if (ag->on) {
      tramp_frame f;
      tramp_frame_from_uc(&f, uc);
      agent_fp fp = agent_point_fp(ag, (uint32_t)si->si_value.sival_int);
      agent_fire_points(ag, t, &f, &fp, 1, 0, 0);
    }
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    t->busy = 0;
  }
}

static int has_profile(agent *ag) {
  for (uint32_t i = 0; i < ag->sh->npoints; i++)
    if (ag->pts[i].kind == VMX_PT_PROFILE)
      return 1;
  return 0;
}

static void arm(agent *ag, pid_t tid, uint32_t point) {
  if (ag->nptimers == ag->capptimers) {
    int cap = ag->capptimers ? 2 * ag->capptimers : 64;
    agent_ptimer *p = realloc(ag->ptimers, (size_t)cap * sizeof *p);
    if (!p)
      return;
    ag->ptimers = p, ag->capptimers = cap;
  }
  struct sigevent ev;
  memset(&ev, 0, sizeof ev);
  ev.sigev_notify = SIGEV_THREAD_ID;
  ev.sigev_signo = PROF_SIG;
  ev.sigev_value.sival_int = (int)point;
  ev._sigev_un._tid = tid;
  clockid_t clk = (clockid_t)((~(unsigned)tid << 3) | 6); /* the thread's CPU clock */
  agent_ptimer *pt = &ag->ptimers[ag->nptimers];
  if (timer_create(clk, &ev, &pt->id))
    return;
  uint64_t ns = ag->pts[point].addr ? ag->pts[point].addr : 10000000;
  struct itimerspec its;
  its.it_value.tv_sec = its.it_interval.tv_sec = (time_t)(ns / 1000000000);
  its.it_value.tv_nsec = its.it_interval.tv_nsec = (long)(ns % 1000000000);
  if (timer_settime(pt->id, 0, &its, NULL)) {
    timer_delete(pt->id);
    return;
  }
  pt->tid = tid, pt->point = point, pt->seen = 1;
  ag->nptimers++;
}

/* Arm a timer on every thread that has none, drop those of dead threads. */
static void scan_threads(agent *ag) {
  DIR *d = opendir("/proc/self/task");
  if (!d)
    return;
  pid_t self = (pid_t)syscall(SYS_gettid);
  for (int i = 0; i < ag->nptimers; i++)
    ag->ptimers[i].seen = 0;
  struct dirent *e;
  while ((e = readdir(d))) {
    pid_t tid = (pid_t)atoi(e->d_name);
    if (tid <= 0 || tid == self)
      continue;
    int have = 0;
    for (int i = 0; i < ag->nptimers; i++)
      if (ag->ptimers[i].tid == tid)
        ag->ptimers[i].seen = have = 1;
    if (have)
      continue;
    for (uint32_t p = 0; p < ag->sh->npoints; p++)
      if (ag->pts[p].kind == VMX_PT_PROFILE)
        arm(ag, tid, p);
  }
  closedir(d);
  int k = 0;
  for (int i = 0; i < ag->nptimers; i++) {
    if (ag->ptimers[i].seen)
      ag->ptimers[k++] = ag->ptimers[i];
    else
      timer_delete(ag->ptimers[i].id);
  }
  ag->nptimers = k;
}

static void prof_stop(agent *ag) {
  for (int i = 0; i < ag->nptimers; i++)
    timer_delete(ag->ptimers[i].id);
  ag->nptimers = 0;
}

static void prof_install(void) {
  static int done;
  if (__atomic_exchange_n(&done, 1, __ATOMIC_SEQ_CST))
    return;
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = prof_handler;
  sa.sa_flags = SA_SIGINFO | SA_RESTART;
  sigemptyset(&sa.sa_mask);
  sigaction(PROF_SIG, &sa, &prev_prof);
}

/* ---- unloading ---- */

/* Wait until no thread is inside a probe.  The store to ag->on comes first;
 * membarrier makes it visible to every thread (and theirs to us), so a
 * thread either is seen busy here or will see the probes off. */
static int quiesce(agent *ag) {
  if (syscall(SYS_membarrier, 8 /* PRIVATE_EXPEDITED */, 0, 0))
    usleep(20000);
  agent_tls *pool = agent_tls_pool();
  for (uint32_t i = 0, n = agent_tls_used(); i < n && pool; i++) {
    agent_tls *t = &pool[i];
    for (int tries = 0; t != ag->me && t->tid && t->busy && tries < 2000; tries++)
      usleep(500);
    if (t != ag->me && t->tid && t->busy)
      return 0;
  }
  return 1;
}

static void sum_counters(agent *ag) {
  agent_tls *pool = agent_tls_pool();
  uint64_t fires = 0, drops = 0;
  for (uint32_t i = 0, n = agent_tls_used(); i < n && pool; i++)
    fires += pool[i].fires, drops += pool[i].drops;
  if (!ag->counted) { /* blocks outlive loads: count from this one's start */
    ag->fires0 = fires, ag->drops0 = drops, ag->counted = 1;
  }
  __atomic_store_n(&ag->sh->fires, fires - ag->fires0, __ATOMIC_RELAXED);
  __atomic_store_n(&ag->sh->dropped, drops - ag->drops0, __ATOMIC_RELAXED);
}

/* Returns 1 when no thread can be using the region any more. */
static int unload(agent *ag, tramp_set *ts, int fire_unload) {
  __atomic_store_n(&ag->on, 0, __ATOMIC_SEQ_CST);
  prof_stop(ag);
  tramp_site **all = calloc((size_t)ag->nsites + 1, sizeof *all);
  for (int i = 0; i < ag->nsites; i++)
    if (all)
      all[i] = ag->sites[i].ts;
    else if (ag->sites[i].ts)
      tramp_unpatch(ts, ag->sites[i].ts);
  if (all)
    tramp_unpatch_many(ts, all, ag->nsites);
  free(all);
  int quiet = quiesce(ag);
  if (fire_unload) /* on the agent thread, which needs no `on` */
    fire_kind(ag, UINT64_MAX);
  sum_counters(ag);
  ag->sh->agent_state = VMX_ST_UNLOADED;
  return quiet;
}

/* ---- fork ---- */

/* The child runs clean: its copy of the code is restored and the agent is
 * off there (its thread and socket are the parent's), and the shared region
 * is unmapped: the child must not write into the parent's probes' state. */
static void atfork_child(void) {
  agent *ag = cur;
  agent_tls_fork_child();
  if (!ag)
    return;
  ag->on = 0;
  char err[8];
  tramp_set *ts = agent_tramps(err, sizeof err);
  if (ts)
    tramp_unpatch_all_quiet(ts);
  if (ag->sock >= 0)
    close(ag->sock);
  if (ag->sh) /* nothing in this thread reads it once `on` is 0 */
    munmap(ag->sh, ag->shsize);
  ag->sh = NULL, ag->sp = NULL;
  cur = NULL;
}

/* ---- the agent thread ---- */

static void load_done(agent *ag) {
  if (ag->wait_load)
    sem_post(&ag->loaded);
}

/* Serve until UNLOAD or EOF; returns what unload did. */
static int serve(agent *ag, tramp_set *ts) {
  uint64_t next_scan = rt_clock() + SCAN_NS;
  int prof = has_profile(ag);
  for (;;) {
    uint64_t wait = run_timers(ag), now = rt_clock();
    if (now >= next_scan) {
      if (prof)
        scan_threads(ag);
      sum_counters(ag);
      agent_cpu_scan(ag, ts);
      if (ag->guarded && !tramp_guard_ok())
        ag->guarded = 0; /* someone took SIGSEGV over: read the slow safe way */
      next_scan = now + SCAN_NS;
    }
    if (next_scan - now < wait)
      wait = next_scan - now;
    /* ppoll, not poll: a USEC:100 timer needs a wait finer than 1 ms */
    struct pollfd pf = {ag->sock, POLLIN, 0};
    struct timespec ts_wait = {(time_t)(wait / 1000000000), (long)(wait % 1000000000)};
    int r = ppoll(&pf, 1, &ts_wait, NULL);
    if (r < 0 && errno != EINTR)
      return unload(ag, ts, 0);
    if (r <= 0)
      continue;
    char line[64];
    if (recv_line(ag->sock, line, sizeof line, NULL)) /* EOF: vprobe is gone */
      return unload(ag, ts, 0);
    if (!strcmp(line, "UNLOAD")) {
      /* vprobe's clock for -d starts after our timers': a tick due by now
       * (the last one of `-d N` at 1 Hz) fires before we go. */
      run_timers(ag);
      int quiet = unload(ag, ts, 1);
      send_line(ag->sock, "DONE\n");
      return quiet;
    }
  }
}

static void *agent_main(void *arg) {
  agent *ag = arg;
  sigset_t all;
  sigfillset(&all);
  sigdelset(&all, SIGSEGV), sigdelset(&all, SIGBUS), sigdelset(&all, SIGTRAP);
  sigdelset(&all, SIGILL), sigdelset(&all, SIGFPE);
  pthread_sigmask(SIG_BLOCK, &all, NULL);
  pthread_setname_np(pthread_self(), "vprobe-agent");
  char err[200] = "";
  tramp_set *ts = agent_tramps(err, sizeof err);
  ag->me = agent_tls_get();
  if (ag->me)
    ag->me->busy = 1; /* for good: nothing this thread calls fires */
  ag->sock = dial(ag);
  if (ag->sock < 0) {
    if (ag->me)
      ag->me->busy = 0;
    load_done(ag);
    return NULL;
  }
  int memfd = -1;
  char line[64];
  const char *why = NULL;
  if (recv_line(ag->sock, line, sizeof line, &memfd) || strcmp(line, "LOAD") || memfd < 0)
    why = "expected LOAD with the region";
  else if (map_region(ag, memfd))
    why = "cannot map the shared region";
  else if (!ts || !ag->me)
    fail(ag, "%s", why = err[0] ? err : "no per-thread blocks");
  else if ((why = attach_region(ag)) || (why = plan_sites(ag)) || (why = agent_cpu_plan(ag)))
    fail(ag, "%s", why);
  if (why) {
    char msg[300];
    snprintf(msg, sizeof msg, "ERR %s\n", why);
    send_line(ag->sock, msg);
    close(ag->sock);
    if (ag->me)
      ag->me->busy = 0;
    load_done(ag);
    return NULL;
  }
  ag->sh->agent_pid = (uint32_t)ag->pid;
  ag->sh->agent_state = VMX_ST_LOADING;
  ag->guarded = tramp_guard_install() == 0 && tramp_guard_ok();
  ag->gen = __atomic_add_fetch(&gens, 1, __ATOMIC_RELAXED);
  sum_counters(ag); /* the baseline */
  cur = ag;
  if (has_profile(ag))
    prof_install();
  __atomic_store_n(&ag->on, 1, __ATOMIC_SEQ_CST);
  place_sites(ag, ts);
  plan_timers(ag);
  fire_kind(ag, 0); /* VMXLoad */
  if (has_profile(ag))
    scan_threads(ag);
  ag->sh->agent_state = VMX_ST_RUNNING;
  send_line(ag->sock, "OK\n");
  load_done(ag);
  int quiet = serve(ag, ts);
  close(ag->sock);
  ag->sock = -1;
  /* The region goes once no thread can be in a probe; the agent struct
   * and its sites stay: a thread may still be on its way through a
   * trampoline and read ag->on. */
  if (quiet) {
    tramp_guard_remove();
    vp_image_free(ag->img);
    munmap(ag->sh, ag->shsize);
  }
  ag->me->busy = 0; /* a later load's unload must not wait for this thread */
  return NULL;
}

static int begin(const char *sockpath, int wait) {
  agent *ag = calloc(1, sizeof *ag);
  if (!ag || strlen(sockpath) >= sizeof ag->sockpath) {
    free(ag);
    return -1;
  }
  snprintf(ag->sockpath, sizeof ag->sockpath, "%s", sockpath);
  ag->sock = -1;
  ag->pid = getpid();
  int fd = open("/proc/self/comm", O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    ssize_t n = read(fd, ag->comm, sizeof ag->comm - 1);
    if (n > 0 && ag->comm[n - 1] == '\n')
      ag->comm[n - 1] = 0;
    close(fd);
  }
  static int atfork_done;
  if (!__atomic_exchange_n(&atfork_done, 1, __ATOMIC_SEQ_CST))
    pthread_atfork(NULL, NULL, atfork_child);
  ag->wait_load = wait;
  if (wait)
    sem_init(&ag->loaded, 0, 0);
  pthread_attr_t at;
  pthread_attr_init(&at);
  pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
  pthread_t th;
  int rc = pthread_create(&th, &at, agent_main, ag);
  pthread_attr_destroy(&at);
  if (rc)
    return -1;
  if (wait) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += 30;
    while (sem_timedwait(&ag->loaded, &ts) && errno == EINTR)
      ;
  }
  return 0;
}

/* Attach mode: called through ptrace in some thread of a running process;
 * only starts the agent thread. */
EXPORT int vpagent_start(const char *sockpath) { return sockpath ? begin(sockpath, 0) : -1; }

/* Launch mode: the probes are in place before main runs. */
__attribute__((constructor)) static void agent_ctor(void) {
  const char *p = getenv(VMX_AGENT_ENV);
  if (!p || !*p)
    return;
  char path[108];
  snprintf(path, sizeof path, "%s", p);
  unsetenv(VMX_AGENT_ENV); /* the program's own children run unprobed */
  begin(path, 1);
}
