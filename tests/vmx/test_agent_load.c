/*
 * test_agent_load.c - the agent (build/lib/libvpagent.so) driven by a
 * minimal controller written here against proto.h: launch a target with
 * LD_PRELOAD, lay out the shared region, send LOAD with the memfd, and check
 * what the probes counted (shared integers of the runtime space): exact
 * counts with 1 and 8 threads, arguments and return values, odd prologues
 * (RIP-relative, branch, call, a 1-byte function placed as a trap), UNLOAD
 * with every code byte restored and output drained, vmxstack, timers,
 * fork, EXIT through deep recursion and longjmp, probes on libc's malloc,
 * small thread and signal stacks, VMX:PROFILE, attach mode's entry point
 * twice in one process, EOF, and bad reads caught.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "rt/rt.h"
#include "sym/elfsym.h"
#include "vmx/proto.h"
#include "vp/vp.h"

static char build[512], sockpath[100];
static int nfail;

#define CHECK(c, ...)                                                          \
  do {                                                                         \
    if (!(c)) {                                                                \
      printf("FAIL %s:%d: ", __FILE__, __LINE__);                              \
      printf(__VA_ARGS__);                                                     \
      printf("\n");                                                            \
      nfail++;                                                                 \
    }                                                                          \
  } while (0)

typedef struct pspec { /* a probe point to place */
  uint32_t kind;
  const char *fn; /* [module.]function in the target, or NULL (timers) */
  uint64_t addr;  /* for timers: the period */
  uint32_t probe;
  const char *name;
} pspec;

typedef struct run {
  pid_t pid;
  int sock, outfd;
  vmx_shared *sh;
  size_t size;
  rt_space *sp;
  vmx_point *pts;
  uint64_t fnaddr[8]; /* resolved address of each pspec */
  char reply[64];
} run;

static int listen_sock(void) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_un a = {0};
  a.sun_family = AF_UNIX;
  snprintf(a.sun_path, sizeof a.sun_path, "%s", sockpath);
  unlink(sockpath);
  if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) || listen(fd, 4))
    return -1;
  return fd;
}

static int read_line(int fd, char *buf, size_t cap, int ms) {
  size_t n = 0;
  while (n + 1 < cap) {
    struct pollfd p = {fd, POLLIN, 0};
    if (poll(&p, 1, ms) <= 0)
      return -1;
    char c;
    if (read(fd, &c, 1) != 1)
      return -1;
    if (c == '\n')
      break;
    buf[n++] = c;
  }
  buf[n] = 0;
  return 0;
}

static int load(run *r, int lfd, const char *vp, const pspec *ps, int np);

/* Launch argv under the agent and load vp with the points. */
static int launch(run *r, char *const argv[], const char *vp, const pspec *ps, int np) {
  memset(r, 0, sizeof *r);
  int lfd = listen_sock();
  if (lfd < 0)
    return -1;
  int out[2];
  if (pipe(out))
    return -1;
  char preload[600];
  snprintf(preload, sizeof preload, "%s/lib/libvpagent.so", build);
  r->pid = fork();
  if (r->pid == 0) {
    dup2(out[1], 1);
    if (!strstr(argv[0], "selfattach")) {
      setenv("LD_PRELOAD", preload, 1);
      setenv(VMX_AGENT_ENV, sockpath, 1);
    }
    execv(argv[0], argv);
    _exit(127);
  }
  close(out[1]);
  r->outfd = out[0];
  return load(r, lfd, vp, ps, np);
}

/* Accept the agent's call on lfd (closed after) and load. */
static int load(run *r, int lfd, const char *vp, const pspec *ps, int np) {
  struct pollfd p = {lfd, POLLIN, 0};
  if (poll(&p, 1, 10000) != 1)
    return -1;
  r->sock = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
  close(lfd);
  if (r->sock < 0)
    return -1;

  vp_diag d;
  vp_image *img = vp_compile(vp, strlen(vp), "test.vp", NULL, &d);
  if (!img) {
    printf("vp: %s\n", d.error);
    return -1;
  }
  char err[256];
  esym_proc *sp = esym_open(r->pid, err, sizeof err);
  if (!sp) {
    printf("esym: %s\n", err);
    return -1;
  }
  /* Symbols of the executable only, "module.function". */
  size_t nsyms = 0, strsz = 1;
  for (size_t i = 0; i < sp->nfns; i++)
    if (sp->mods[sp->fns[i].mod].is_exe) {
      nsyms++;
      strsz += strlen(sp->mods[sp->fns[i].mod].name) + strlen(sp->fns[i].name) + 2;
    }
  for (int i = 0; i < np; i++)
    strsz += strlen(ps[i].name) + 1;
  size_t imglen;
  const void *ib = vp_image_bytes(img, &imglen);
  rt_layout lay;
  vp_image_layout(img, &lay);
  size_t spsz = rt_space_size(&lay);
  size_t off = 4096;
  size_t image_off = off;
  off = (off + imglen + 4095) & ~(size_t)4095;
  size_t space_off = off;
  off = (off + spsz + 4095) & ~(size_t)4095;
  size_t points_off = off;
  off += np * sizeof(vmx_point);
  off = (off + 63) & ~(size_t)63;
  size_t syms_off = off;
  off += nsyms * sizeof(vmx_sym);
  size_t str_off = off;
  off += strsz;
  r->size = (off + 4095) & ~(size_t)4095;
  int mfd = memfd_create("vprobe-test", MFD_CLOEXEC);
  if (mfd < 0 || ftruncate(mfd, (off_t)r->size))
    return -1;
  char *m = mmap(NULL, r->size, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
  if (m == MAP_FAILED)
    return -1;
  vmx_shared *sh = (vmx_shared *)m;
  r->sh = sh;
  sh->magic = VMX_MAGIC, sh->version = 1, sh->size = r->size;
  sh->image_off = image_off, sh->image_len = imglen;
  memcpy(m + image_off, ib, imglen);
  sh->space_off = space_off, sh->space_len = spsz;
  r->sp = rt_space_init(m + space_off, spsz, &lay);
  sh->points_off = points_off, sh->npoints = (uint32_t)np;
  sh->syms_off = syms_off, sh->nsyms = (uint32_t)nsyms;
  sh->str_off = str_off, sh->str_len = strsz;
  char *strs = m + str_off;
  size_t so = 1;
  vmx_sym *sy = (vmx_sym *)(m + syms_off);
  for (size_t i = 0, k = 0; i < sp->nfns; i++) {
    const esym_fn *f = &sp->fns[i];
    if (!sp->mods[f->mod].is_exe)
      continue;
    sy[k].addr = f->addr, sy[k].size = f->size, sy[k].name_off = (uint32_t)so;
    so += (size_t)sprintf(strs + so, "%s.%s", sp->mods[f->mod].name, f->name) + 1;
    k++;
  }
  r->pts = (vmx_point *)(m + points_off);
  for (int i = 0; i < np; i++) {
    vmx_point *pt = &r->pts[i];
    pt->kind = ps[i].kind, pt->probe = ps[i].probe, pt->addr = ps[i].addr;
    if (ps[i].fn) {
      char mod[64] = "";
      const char *fn = ps[i].fn, *dot = strchr(fn, '.');
      if (dot) {
        snprintf(mod, sizeof mod, "%.*s", (int)(dot - fn), fn);
        fn = dot + 1;
      }
      const esym_fn *f = esym_lookup(sp, dot ? mod : NULL, fn);
      if (!f) {
        printf("no symbol %s\n", ps[i].fn);
        return -1;
      }
      pt->addr = f->addr;
    }
    r->fnaddr[i] = pt->addr;
    pt->name_off = (uint32_t)so;
    so += (size_t)sprintf(strs + so, "%s", ps[i].name) + 1;
  }
  esym_close(sp);
  vp_image_free(img);

  char cbuf[CMSG_SPACE(sizeof(int))] = {0};
  struct iovec io = {(void *)"LOAD\n", 5};
  struct msghdr msg = {0};
  msg.msg_iov = &io, msg.msg_iovlen = 1;
  msg.msg_control = cbuf, msg.msg_controllen = sizeof cbuf;
  struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = SOL_SOCKET, c->cmsg_type = SCM_RIGHTS, c->cmsg_len = CMSG_LEN(sizeof(int));
  memcpy(CMSG_DATA(c), &mfd, sizeof mfd);
  if (sendmsg(r->sock, &msg, 0) != 5)
    return -1;
  close(mfd);
  return read_line(r->sock, r->reply, sizeof r->reply, 10000);
}

static int finish(run *r) {
  int st = -1;
  waitpid(r->pid, &st, 0);
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static void slurp(run *r, char *buf, size_t cap) {
  size_t n = 0;
  ssize_t k;
  while (n + 1 < cap && (k = read(r->outfd, buf + n, cap - 1 - n)) > 0)
    n += (size_t)k;
  buf[n] = 0;
  close(r->outfd);
}

static uint64_t shared(run *r, uint32_t i) { return *rt_shared_int(r->sp, i); }

/* Wait (at most 10 s: the machine may be busy) until shared integer i
 * reaches min. */
static void wait_for(run *r, uint32_t i, uint64_t min) {
  for (int k = 0; k < 200 && *rt_shared_int(r->sp, i) < min; k++)
    usleep(50000);
}

static void read_code(pid_t pid, uint64_t addr, uint8_t *buf, size_t n) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/mem", pid);
  int fd = open(path, O_RDONLY);
  memset(buf, 0, n);
  if (fd >= 0 && pread(fd, buf, n, (off_t)addr) != (ssize_t)n)
    memset(buf, 0xee, n);
  if (fd >= 0)
    close(fd);
}

/* Output records into a 4096-byte buffer (the rest is dropped). */
static void drain_sink(void *ctx, int stream, const void *data, size_t n) {
  (void)stream;
  size_t have = strlen(ctx);
  if (have + n < 4096)
    strncat(ctx, data, n);
}

/* Counts, arguments and return values, 1 and 8 threads. */
static void test_counts(const char *threads, long n) {
  char bin[600], nbuf[32];
  snprintf(bin, sizeof bin, "%s/tests/vmx/targets/loop", build);
  snprintf(nbuf, sizeof nbuf, "%ld", n);
  char *argv[] = {bin, nbuf, (char *)threads, NULL};
  const char *vp = "(definteger calls 0 :perhost)\n"
                   "(definteger args 0 :perhost)\n"
                   "(definteger rets 0 :perhost)\n"
                   "(definteger loads 0 :perhost)\n"
                   "(vprobe VMX:ENTER:work (fetchadd calls 1) (fetchadd args ARG1))\n"
                   "(vprobe VMX:EXIT:work (fetchadd rets ARG0))\n"
                   "(vprobe VMXLoad (fetchadd loads 1))\n"
                   "(vprobe VMXUnload (fetchadd loads 10))\n";
  pspec ps[] = {{VMX_PT_ENTER, "work", 0, 0, "VMX:ENTER:work"},
                {VMX_PT_EXIT, "work", 0, 1, "VMX:EXIT:work"},
                {VMX_PT_TIMER, NULL, 0, 2, "VMXLoad"},
                {VMX_PT_TIMER, NULL, UINT64_MAX, 3, "VMXUnload"}};
  run r;
  if (launch(&r, argv, vp, ps, 4)) {
    CHECK(0, "launch failed");
    return;
  }
  CHECK(!strcmp(r.reply, "OK"), "reply %s (%s)", r.reply, r.sh->agent_error);
  char out[256];
  slurp(&r, out, sizeof out);
  int st = finish(&r);
  long nt = atol(threads);
  long want_total = nt * (n * (n - 1) / 2 + 3 * n);
  char want[64];
  snprintf(want, sizeof want, "total %ld\n", want_total);
  CHECK(st == 0 && !strcmp(out, want), "target: status %d, output %s", st, out);
  CHECK(shared(&r, 0) == (uint64_t)(nt * n), "calls %llu, want %ld",
        (unsigned long long)shared(&r, 0), nt * n);
  CHECK(shared(&r, 1) == (uint64_t)(nt * 3 * n), "ARG1 sum %llu",
        (unsigned long long)shared(&r, 1));
  CHECK(shared(&r, 2) == (uint64_t)want_total, "return values sum %llu, want %ld",
        (unsigned long long)shared(&r, 2), want_total);
  CHECK(shared(&r, 3) == 1, "VMXLoad fired %llu (no Unload at EOF)",
        (unsigned long long)shared(&r, 3));
  CHECK(r.pts[0].how == VMX_HOW_JUMP, "work placed as %u", r.pts[0].how);
  close(r.sock);
}

/* Odd prologues: RIP-relative, branch, call, and a 1-byte function. */
static void test_prologues(void) {
  char bin[600];
  snprintf(bin, sizeof bin, "%s/tests/vmx/targets/prologue", build);
  char *argv[] = {bin, (char *)"10000", NULL};
  const char *vp = "(definteger a 0 :perhost)\n(definteger b 0 :perhost)\n"
                   "(definteger c 0 :perhost)\n(definteger d 0 :perhost)\n"
                   "(vprobe VMX:ENTER:rip_fn (fetchadd a 1))\n"
                   "(vprobe VMX:ENTER:br_fn (fetchadd b 1))\n"
                   "(vprobe VMX:ENTER:call_fn (fetchadd c 1))\n"
                   "(vprobe VMX:ENTER:tiny_fn (fetchadd d 1))\n";
  pspec ps[] = {{VMX_PT_ENTER, "rip_fn", 0, 0, "VMX:ENTER:rip_fn"},
                {VMX_PT_ENTER, "br_fn", 0, 1, "VMX:ENTER:br_fn"},
                {VMX_PT_ENTER, "call_fn", 0, 2, "VMX:ENTER:call_fn"},
                {VMX_PT_ENTER, "tiny_fn", 0, 3, "VMX:ENTER:tiny_fn"}};
  run r;
  if (launch(&r, argv, vp, ps, 4)) {
    CHECK(0, "launch failed");
    return;
  }
  CHECK(!strcmp(r.reply, "OK"), "reply %s", r.reply);
  char out[256];
  slurp(&r, out, sizeof out);
  int st = finish(&r);
  CHECK(st == 0 && !strcmp(out, "bad 0\n"), "prologue target: %d %s", st, out);
  for (uint32_t i = 0; i < 3; i++)
    CHECK(shared(&r, i) == 10000, "point %u: %llu hits", i,
          (unsigned long long)shared(&r, i));
  /* tiny_fn is also called by call_fn */
  CHECK(shared(&r, 3) == 20000, "tiny_fn hits %llu", (unsigned long long)shared(&r, 3));
  CHECK(r.pts[0].how == VMX_HOW_JUMP && r.pts[1].how == VMX_HOW_JUMP &&
            r.pts[2].how == VMX_HOW_JUMP, "how %u %u %u", r.pts[0].how, r.pts[1].how,
        r.pts[2].how);
  CHECK(r.pts[3].how == VMX_HOW_TRAP, "tiny_fn how %u", r.pts[3].how);
  close(r.sock);
}

/* UNLOAD in a running target: Unload fires, DONE, code bytes as before,
 * output records come through the rings; then EOF leaves it running. */
static void test_unload(void) {
  char bin[600];
  snprintf(bin, sizeof bin, "%s/tests/vmx/targets/loop", build);
  char *argv[] = {bin, (char *)"1000", (char *)"2", (char *)"1", NULL};
  const char *vp = "(definteger calls 0 :perhost)\n(definteger unl 0 :perhost)\n"
                   "(definteger ticks 0 :perhost)\n(defstring st)\n"
                   "(vprobe VMX:ENTER:work (cond ((== (fetchadd calls 1) 0) (vmxstack st)"
                   " (printf \"%s\\n%s %d\\n\" st (curprocname) (== (curpid) 0)))))\n"
                   "(vprobe VMX:EXIT:work 0)\n"
                   "(vprobe VMXUnload (fetchadd unl 1) (printf \"bye\\n\"))\n"
                   "(vprobe USEC:20000 (fetchadd ticks 1))\n";
  pspec ps[] = {{VMX_PT_ENTER, "work", 0, 0, "VMX:ENTER:work"},
                {VMX_PT_EXIT, "work", 0, 1, "VMX:EXIT:work"},
                {VMX_PT_TIMER, NULL, UINT64_MAX, 2, "VMXUnload"},
                {VMX_PT_TIMER, NULL, 20000000, 3, "USEC:20000"}};
  run r;
  uint8_t before[16], during[16], after[16];
  if (launch(&r, argv, vp, ps, 4)) {
    CHECK(0, "launch failed");
    return;
  }
  CHECK(!strcmp(r.reply, "OK"), "reply %s", r.reply);
  /* launch() resolved work; read its bytes in the running process (the
   * original bytes are the executable file's, patched now) */
  read_code(r.pid, r.fnaddr[0], during, 16);
  wait_for(&r, 0, 1001);
  wait_for(&r, 2, 5);
  CHECK(shared(&r, 0) > 1000, "calls while loaded: %llu", (unsigned long long)shared(&r, 0));
  CHECK(write(r.sock, "UNLOAD\n", 7) == 7, "write");
  char line[64];
  CHECK(read_line(r.sock, line, sizeof line, 10000) == 0 && !strcmp(line, "DONE"),
        "after UNLOAD: %s", line);
  read_code(r.pid, r.fnaddr[0], after, 16);
  CHECK(during[0] == 0xe9, "work not patched while loaded (%02x)", during[0]);
  CHECK(shared(&r, 1) == 1, "VMXUnload fired %llu", (unsigned long long)shared(&r, 1));
  CHECK(r.sh->agent_state == VMX_ST_UNLOADED, "state %u", r.sh->agent_state);
  uint64_t c1 = shared(&r, 0);
  usleep(100000);
  CHECK(shared(&r, 0) == c1, "probes still fire after unload");
  char text[4096] = "";
  rt_drain(r.sp, UINT64_MAX, drain_sink, text);
  /* the first hit may be on either thread; run may be inlined in main */
  CHECK(!strncmp(text, "loop.work+0x0 <- loop.", 22) &&
            strstr(text, "\nloop 0\nbye\n"),
        "output %s", text);
  CHECK(shared(&r, 2) >= 5, "USEC:20000 fired %llu times in 200 ms",
        (unsigned long long)shared(&r, 2));
  /* The bytes on disk of the executable are the reference. */
  {
    esym_proc *sp = esym_open(r.pid, text, sizeof text);
    uint64_t fileoff = 0;
    if (sp) {
      for (int i = 0; i < sp->nmods; i++)
        if (sp->mods[i].is_exe)
          fileoff = r.fnaddr[0] - sp->mods[i].bias;
      esym_close(sp);
    }
    int fd = open(bin, O_RDONLY);
    CHECK(fd >= 0 && pread(fd, before, 16, (off_t)fileoff) == 16, "read %s", bin);
    if (fd >= 0)
      close(fd);
    CHECK(!memcmp(before, after, 16), "code bytes differ after unload");
  }
  close(r.sock);
  usleep(50000);
  CHECK(waitpid(r.pid, NULL, WNOHANG) == 0, "target died after unload");
  kill(r.pid, SIGKILL);
  finish(&r);
  close(r.outfd);
}

/* fork: the child runs clean (its copy of work restored), the parent's
 * probes go on. */
static void test_fork(void) {
  char bin[600], first[8];
  snprintf(bin, sizeof bin, "%s/tests/vmx/targets/forker", build);
  /* the expected first byte: the file's */
  char *argv[] = {bin, (char *)"1000", first, NULL};
  const char *vp = "(definteger calls 0 :perhost)\n"
                   "(vprobe VMX:ENTER:work (fetchadd calls 1))\n";
  pspec ps[] = {{VMX_PT_ENTER, "work", 0, 0, "VMX:ENTER:work"}};
  snprintf(first, sizeof first, "-");
  run r;
  if (launch(&r, argv, vp, ps, 1)) {
    CHECK(0, "launch failed");
    return;
  }
  char out[256];
  slurp(&r, out, sizeof out);
  int st = finish(&r);
  CHECK(st == 0, "forker status %d", st);
  CHECK(shared(&r, 0) == 2000, "parent-only calls %llu", (unsigned long long)shared(&r, 0));
  CHECK(strstr(out, "child first byte e9") == NULL && strstr(out, "child first byte cc") == NULL,
        "child still patched: %s", out);
  close(r.sock);
}

/* EXIT probes: recursion deeper than the shadow stack, and frames
 * skipped by longjmp; every return must still land right. */
static void test_deep_exit(void) {
  char bin[600];
  snprintf(bin, sizeof bin, "%s/tests/vmx/targets/recurse", build);
  char *argv[] = {bin, (char *)"1000", (char *)"100", NULL};
  const char *vp = "(definteger in 0 :perhost)\n(definteger out 0 :perhost)\n"
                   "(definteger jin 0 :perhost)\n(definteger jout 0 :perhost)\n"
                   "(vprobe VMX:ENTER:rec (fetchadd in 1))\n"
                   "(vprobe VMX:EXIT:rec (fetchadd out 1))\n"
                   "(vprobe VMX:ENTER:escape (fetchadd jin 1))\n"
                   "(vprobe VMX:EXIT:escape (fetchadd jout 1))\n";
  pspec ps[] = {{VMX_PT_ENTER, "rec", 0, 0, "VMX:ENTER:rec"},
                {VMX_PT_EXIT, "rec", 0, 1, "VMX:EXIT:rec"},
                {VMX_PT_ENTER, "escape", 0, 2, "VMX:ENTER:escape"},
                {VMX_PT_EXIT, "escape", 0, 3, "VMX:EXIT:escape"}};
  run r;
  if (launch(&r, argv, vp, ps, 4)) {
    CHECK(0, "launch failed");
    return;
  }
  char out[256];
  slurp(&r, out, sizeof out);
  int st = finish(&r);
  CHECK(st == 0 && !strcmp(out, "bad 0\n"), "recurse: status %d, %s", st, out);
  /* 101 levels a call, the first 64 of each come back through the
   * trampoline (the rest is too deep); then 1000 rec(3) */
  CHECK(shared(&r, 0) == 1000 * 101 + 1000 * 4, "rec entries %llu",
        (unsigned long long)shared(&r, 0));
  CHECK(shared(&r, 1) == 1000 * 64 + 1000 * 4, "rec exits %llu",
        (unsigned long long)shared(&r, 1));
  CHECK(shared(&r, 2) == 1000 && shared(&r, 3) == 0, "escape %llu/%llu",
        (unsigned long long)shared(&r, 2), (unsigned long long)shared(&r, 3));
  close(r.sock);
}

/* Probes on a 32 KiB thread stack and an 8 KiB signal stack. */
static void test_small_stacks(void) {
  char bin[600];
  snprintf(bin, sizeof bin, "%s/tests/vmx/targets/smallstack", build);
  char *argv[] = {bin, (char *)"1000", NULL};
  const char *vp = "(definteger calls 0 :perhost)\n(defstring st)\n(defaggr by 0 1)\n"
                   "(vprobe VMX:ENTER:work (fetchadd calls 1) (vmxstack st)"
                   " (aggrinc by () (st)) (sprintf st \"%s %d\" st ARG0))\n";
  pspec ps[] = {{VMX_PT_ENTER, "work", 0, 0, "VMX:ENTER:work"}};
  run r;
  if (launch(&r, argv, vp, ps, 1)) {
    CHECK(0, "launch failed");
    return;
  }
  char out[256];
  slurp(&r, out, sizeof out);
  int st = finish(&r);
  CHECK(st == 0 && !strcmp(out, "thread 502500 signal 4000\n"), "smallstack: %d %s", st, out);
  CHECK(shared(&r, 0) == 2000, "calls %llu", (unsigned long long)shared(&r, 0));
  close(r.sock);
}

/* Probes on libc functions the probe machinery could call itself. */
static void test_libc(void) {
  char bin[600];
  snprintf(bin, sizeof bin, "%s/tests/vmx/targets/alloc", build);
  char *argv[] = {bin, (char *)"100000", (char *)"2", NULL};
  const char *vp = "(definteger m 0 :perhost)\n(definteger f 0 :perhost)\n"
                   "(definteger g 0 :perhost)\n(defaggr sizes 1 0)\n(defstring st)\n"
                   "(vprobe VMX:ENTER:libc.malloc (fetchadd m 1) (aggrinc sizes (ARG0) ())"
                   " (vmxstack st))\n"
                   "(vprobe VMX:ENTER:libc.free (fetchadd f 1))\n"
                   "(vprobe VMX:ENTER:libc.getpid (fetchadd g 1) (printf \"%d\\n\" (curpid)))\n";
  pspec ps[] = {{VMX_PT_ENTER, "libc.malloc", 0, 0, "VMX:ENTER:libc.malloc"},
                {VMX_PT_ENTER, "libc.free", 0, 1, "VMX:ENTER:libc.free"},
                {VMX_PT_ENTER, "libc.getpid", 0, 2, "VMX:ENTER:libc.getpid"}};
  run r;
  if (launch(&r, argv, vp, ps, 3)) {
    CHECK(0, "launch failed");
    return;
  }
  CHECK(!strcmp(r.reply, "OK"), "reply %s (%s)", r.reply, r.sh->agent_error);
  char out[256];
  slurp(&r, out, sizeof out);
  int st = finish(&r);
  CHECK(st == 0 && !strcmp(out, "total 400000\n"), "alloc: status %d, %s", st, out);
  CHECK(shared(&r, 0) >= 200000 && shared(&r, 1) >= 200000 && shared(&r, 2) >= 200000,
        "malloc %llu free %llu getpid %llu", (unsigned long long)shared(&r, 0),
        (unsigned long long)shared(&r, 1), (unsigned long long)shared(&r, 2));
  close(r.sock);
}

/* Attach mode's entry point, called in a running process (by itself here,
 * through ptrace by vprobe), and bad reads caught. */
static void test_attach_and_faults(void) {
  char bin[600], so[600];
  snprintf(bin, sizeof bin, "%s/tests/vmx/targets/selfattach", build);
  snprintf(so, sizeof so, "%s/lib/libvpagent.so", build);
  char *argv[] = {bin, so, sockpath, (char *)"1000", NULL};
  const char *vp = "(definteger calls 0 :perhost)\n(definteger caught 0 :perhost)\n"
                   "(vprobe VMX:ENTER:work (fetchadd calls 1)"
                   " (try (load 8 16) (catch (MemAccessError) (fetchadd caught 1))))\n"
                   "(vprobe VMX:EXIT:work (getvmx 8))\n";
  pspec ps[] = {{VMX_PT_ENTER, "work", 0, 0, "VMX:ENTER:work"},
                {VMX_PT_EXIT, "work", 0, 1, "VMX:EXIT:work"}};
  run r;
  if (launch(&r, argv, vp, ps, 2)) {
    CHECK(0, "launch failed");
    return;
  }
  CHECK(!strcmp(r.reply, "OK"), "reply %s (%s)", r.reply, r.sh->agent_error);
  wait_for(&r, 1, 1000);
  CHECK(waitpid(r.pid, NULL, WNOHANG) == 0, "target died");
  uint64_t caught = shared(&r, 1), calls = shared(&r, 0); /* racing the target */
  CHECK(calls >= 1000 && calls - caught <= 1, "calls %llu, caught %llu",
        (unsigned long long)calls, (unsigned long long)caught);
  close(r.sock); /* EOF: the agent unloads quietly, the target goes on */
  for (int k = 0; k < 100 && r.sh->agent_state != VMX_ST_UNLOADED; k++)
    usleep(50000);
  CHECK(waitpid(r.pid, NULL, WNOHANG) == 0, "target died after EOF");
  CHECK(r.sh->agent_state == VMX_ST_UNLOADED, "state after EOF %u", r.sh->agent_state);
  char text[4096] = "";
  rt_drain(r.sp, UINT64_MAX, drain_sink, text);
  CHECK(strstr(text, "MemAccessError") != NULL, "uncaught error not reported: %s", text);
  uint8_t after1[16], after2[16];
  read_code(r.pid, r.fnaddr[0], after1, 16);
  CHECK(after1[0] != 0xe9 && after1[0] != 0xcc, "work still patched after EOF");
  /* A second load in the same process (vprobe -x twice). */
  const char *vp2 = "(definteger calls 0 :perhost)\n"
                    "(vprobe VMX:ENTER:work (fetchadd calls 1))\n"
                    "(vprobe VMX:EXIT:work 0)\n";
  int lfd = listen_sock();
  kill(r.pid, SIGUSR2); /* selfattach calls vpagent_start again */
  run r2 = r;
  CHECK(lfd >= 0 && load(&r2, lfd, vp2, ps, 2) == 0 && !strcmp(r2.reply, "OK"),
        "second load: %s", r2.reply);
  wait_for(&r2, 0, 1000);
  CHECK(shared(&r2, 0) >= 1000, "second load calls %llu", (unsigned long long)shared(&r2, 0));
  CHECK(write(r2.sock, "UNLOAD\n", 7) == 7, "write");
  char line[64] = "";
  CHECK(read_line(r2.sock, line, sizeof line, 10000) == 0 && !strcmp(line, "DONE"),
        "second unload: %s", line);
  CHECK(r2.sh->fires >= shared(&r2, 0) && r2.sh->fires < shared(&r, 0) + 3 * shared(&r2, 0),
        "fires counter %llu", (unsigned long long)r2.sh->fires);
  read_code(r.pid, r.fnaddr[0], after2, 16);
  CHECK(!memcmp(after1, after2, 16), "bytes differ after the second unload");
  close(r2.sock);
  kill(r.pid, SIGKILL);
  finish(&r);
  char out[256];
  slurp(&r, out, sizeof out);
  int us = -1, rc = -1;
  CHECK(sscanf(out, "start %d %d us", &rc, &us) == 2 && rc == 0 && us < 200000,
        "vpagent_start: %s", out);
}

/* Attach-style loads and unloads while two threads call the patched
 * function in a tight loop: patching and unpatching under fire. */
static void test_under_fire(void) {
  char bin[600], so[600];
  snprintf(bin, sizeof bin, "%s/tests/vmx/targets/selfattach", build);
  snprintf(so, sizeof so, "%s/lib/libvpagent.so", build);
  char *argv[] = {bin, so, sockpath, (char *)"1000", (char *)"2", NULL};
  const char *vp = "(definteger calls 0 :perhost)\n"
                   "(vprobe VMX:ENTER:work (fetchadd calls 1))\n"
                   "(vprobe VMX:EXIT:work 0)\n";
  pspec ps[] = {{VMX_PT_ENTER, "work", 0, 0, "VMX:ENTER:work"},
                {VMX_PT_EXIT, "work", 0, 1, "VMX:EXIT:work"}};
  run r;
  if (launch(&r, argv, vp, ps, 2) || strcmp(r.reply, "OK")) {
    CHECK(0, "launch failed");
    return;
  }
  uint8_t clean[16], now[16];
  for (int round = 0; round < 6; round++) {
    if (round) {
      int lfd = listen_sock();
      kill(r.pid, SIGUSR2);
      run r2 = r;
      if (lfd < 0 || load(&r2, lfd, vp, ps, 2) || strcmp(r2.reply, "OK")) {
        CHECK(0, "round %d: load failed", round);
        break;
      }
      r = r2;
    }
    wait_for(&r, 0, 100000);
    CHECK(shared(&r, 0) >= 100000, "round %d: calls %llu", round,
          (unsigned long long)shared(&r, 0));
    char line[64] = "";
    CHECK(write(r.sock, "UNLOAD\n", 7) == 7 && read_line(r.sock, line, sizeof line, 10000) == 0 &&
              !strcmp(line, "DONE"), "round %d: unload: %s", round, line);
    close(r.sock);
    read_code(r.pid, r.fnaddr[0], round ? now : clean, 16);
    CHECK(!round || !memcmp(clean, now, 16), "round %d: bytes differ", round);
    CHECK(waitpid(r.pid, NULL, WNOHANG) == 0, "round %d: target died", round);
  }
  kill(r.pid, SIGKILL);
  finish(&r);
  close(r.outfd);
}

/* VMX:PROFILE: samples on every busy thread, with the interrupted
 * thread's registers (RIP inside the loop). */
static void test_profile(void) {
  char bin[600];
  snprintf(bin, sizeof bin, "%s/tests/vmx/targets/loop", build);
  char *argv[] = {bin, (char *)"100000000", (char *)"2", (char *)"1", NULL};
  const char *vp = "(definteger samples 0 :perhost)\n(definteger inloop 0 :perhost)\n"
                   "(defaggr tids 1 0)\n"
                   "(vprobe VMX:PROFILE:5msec (fetchadd samples 1)"
                   " (cond ((&& (>= RIP (sym2addr \"work\")) (< RIP (+ (sym2addr \"main\") 4096)))"
                   " (fetchadd inloop 1))))\n";
  pspec ps[] = {{VMX_PT_PROFILE, NULL, 5000000, 0, "VMX:PROFILE:5msec"}};
  run r;
  if (launch(&r, argv, vp, ps, 1)) {
    CHECK(0, "launch failed");
    return;
  }
  CHECK(!strcmp(r.reply, "OK"), "reply %s (%s)", r.reply, r.sh->agent_error);
  wait_for(&r, 0, 10);
  usleep(200000);
  kill(r.pid, SIGKILL);
  finish(&r);
  close(r.outfd);
  close(r.sock);
  uint64_t s = shared(&r, 0), in = shared(&r, 1);
  CHECK(s >= 10, "profile samples %llu", (unsigned long long)s);
  CHECK(in * 10 >= s * 8, "samples in the loop %llu of %llu", (unsigned long long)in,
        (unsigned long long)s);
}

/* `test_agent_load bench N THREADS enter|exit|stack|none`: run the loop target
 * under one probe (bench/bench_vmx.sh uses this when vprobe itself cannot
 * run); the target prints its elapsed time on stderr. */
static int bench(long n, const char *threads, const char *mode) {
  char bin[600], nbuf[32];
  snprintf(bin, sizeof bin, "%s/tests/vmx/targets/loop", build);
  snprintf(nbuf, sizeof nbuf, "%ld", n);
  char *argv[] = {bin, nbuf, (char *)threads, NULL};
  const char *vp = "(defaggr calls 0 0)\n(vprobe VMX:ENTER:work (aggrinc calls () ()))\n";
  pspec ps[] = {{VMX_PT_ENTER, "work", 0, 0, "VMX:ENTER:work"}};
  if (!strcmp(mode, "exit")) {
    vp = "(defaggr calls 0 0)\n(vprobe VMX:EXIT:work (aggrinc calls () ()))\n";
    ps[0].kind = VMX_PT_EXIT, ps[0].name = "VMX:EXIT:work";
  } else if (!strcmp(mode, "none")) { /* the agent in, no code patched */
    vp = "(definteger x 0)\n(vprobe VMXLoad (setint x 1))\n";
    ps[0].kind = VMX_PT_TIMER, ps[0].name = "VMXLoad";
  } else if (!strcmp(mode, "stack")) {
    vp = "(defaggr ticks 0 1)\n(defstring st)\n"
         "(vprobe VMX:ENTER:work (vmxstack st) (aggrinc ticks () (st)))\n";
  }
  setenv("LOOP_TIME", "1", 1);
  run r;
  if (launch(&r, argv, vp, ps, 1) || strcmp(r.reply, "OK")) {
    printf("bench: launch failed: %s\n", r.reply);
    return 1;
  }
  char out[256];
  slurp(&r, out, sizeof out);
  int st = finish(&r);
  close(r.sock);
  return st;
}

int main(int argc, char **argv) {
  const char *b = getenv("VPROBE_BUILD");
  snprintf(build, sizeof build, "%s", b ? b : "build");
  char so[600];
  snprintf(so, sizeof so, "%s/lib/libvpagent.so", build);
  if (access(so, R_OK)) {
    printf("skipped: %s not built\n", so);
    return 77;
  }
  snprintf(sockpath, sizeof sockpath, "/tmp/vpagent-test.%d.sock", (int)getpid());
  signal(SIGPIPE, SIG_IGN);
  if (argc == 5 && !strcmp(argv[1], "bench"))
    return bench(atol(argv[2]), argv[3], argv[4]);
  test_counts("1", 1000000);
  test_counts("8", 200000);
  test_prologues();
  test_unload();
  test_fork();
  test_deep_exit();
  test_libc();
  test_small_stacks();
  test_profile();
  test_attach_and_faults();
  test_under_fire();
  unlink(sockpath);
  if (nfail)
    return 1;
  printf("ok\n");
  return 0;
}
