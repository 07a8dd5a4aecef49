/*
 * vt_inj - a self-checking target for loading into a running process: a
 * thread borrowed for the load must go on exactly where it was.
 *   vt_inj fpu SECONDS    the main thread spins in code holding known values
 *                         in rbx, r12-r15, xmm0-15 (ymm with AVX), CF and
 *                         DF, checking them after every spin
 *   vt_inj read SECONDS   the main thread blocks in read() on a pipe a
 *                         helper writes to after SECONDS; no EINTR allowed
 *   vt_inj pause SECONDS  the main thread blocks in pause(); the helper
 *                         wakes it with SIGUSR1 after SECONDS
 *   vt_inj sleep SECONDS  the main thread sleeps in 20 ms nanosleeps; none
 *                         may end early
 *   vt_inj nap SECONDS    one nanosleep of SECONDS: no EINTR, no shorter
 *   vt_inj malloc SECONDS the main thread and a helper live in malloc, free
 *                         and string functions (libc code holding locks)
 *                         until SECONDS pass or SIGUSR1 comes
 *   vt_inj mt SECONDS     three threads check as in fpu and call inj_tick
 *                         until SECONDS pass or SIGUSR1 comes; the main
 *                         thread waits in pthread_join
 * Each mode also keeps a signal mask and an alternate signal stack on the
 * main thread that must be the same at the end.  Prints "ready PID", then
 * "ok MODE N" and exits 0, or "bad MODE: why" and exits 1.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double secs;
static volatile sig_atomic_t woken;
static int pfd[2];
static pthread_t main_th;
static volatile uint64_t ticks;

__attribute__((noinline)) uint64_t inj_tick(uint64_t x) {
  __asm__ volatile("" ::: "memory");
  return x + 1;
}

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec / 1e9;
}

static void bad(const char *mode, const char *why) {
  printf("bad %s: %s\n", mode, why);
  fflush(stdout);
  exit(1);
}

/* One spin with known register values; 0 if they all came back. */
static int spin(int avx) {
  uint8_t in[32 * 16], out[32 * 16];
  uint64_t g[5], cf = 0, df = 0;
  for (size_t i = 0; i < sizeof in; i++) in[i] = (uint8_t)(i * 7 + 3);
  memset(out, 0, sizeof out);
#define LOADY(n) "vmovdqu " #n "*32(%[in]), %%ymm" #n "\n"
#define STOREY(n) "vmovdqu %%ymm" #n ", " #n "*32(%[out])\n"
#define LOADX(n) "movdqu " #n "*32(%[in]), %%xmm" #n "\n"
#define STOREX(n) "movdqu %%xmm" #n ", " #n "*32(%[out])\n"
#define ALL(M) M(0) M(1) M(2) M(3) M(4) M(5) M(6) M(7) M(8) M(9) M(10) M(11) M(12) M(13) M(14) M(15)
  if (avx)
    __asm__ volatile(ALL(LOADY) ::[in] "r"(in) : "memory");
  else
    __asm__ volatile(ALL(LOADX) ::[in] "r"(in) : "memory");
  __asm__ volatile(
      "push %%rbx\n"
      "mov $0x1111, %%rbx\n mov $0x2222, %%r12\n mov $0x3333, %%r13\n"
      "mov $0x4444, %%r14\n mov $0x5555, %%r15\n"
      "mov $3000000, %%rcx\n"
      "stc\n std\n"
      "1: loop 1b\n" /* loop changes no flags */
      "setc %b[cf]\n"
      "pushf\n pop %[df]\n cld\n"
      "mov %%rbx, 0(%[g])\n mov %%r12, 8(%[g])\n mov %%r13, 16(%[g])\n"
      "mov %%r14, 24(%[g])\n mov %%r15, 32(%[g])\n"
      "pop %%rbx\n"
      : [cf] "+a"(cf), [df] "=d"(df)
      : [g] "D"(g)
      : "rcx", "r12", "r13", "r14", "r15", "cc", "memory");
  if (avx)
    __asm__ volatile(ALL(STOREY) "vzeroupper\n" ::[out] "r"(out) : "memory");
  else
    __asm__ volatile(ALL(STOREX) ::[out] "r"(out) : "memory");
  size_t w = avx ? 32 : 16;
  for (int r = 0; r < 16; r++)
    if (memcmp(in + 32 * r, out + 32 * r, w)) return 1;
  if (g[0] != 0x1111 || g[1] != 0x2222 || g[2] != 0x3333 || g[3] != 0x4444 || g[4] != 0x5555)
    return 2;
  if (!(cf & 1) || !(df & 0x400)) return 3;
  return 0;
}

static void *checker(void *a) {
  int avx = __builtin_cpu_supports("avx");
  double end = now() + secs;
  while (now() < end && !woken) {
    int r = spin(avx);
    if (r) bad((const char *)a, r == 1 ? "vector registers changed" : r == 2 ? "registers changed" : "flags changed");
    ticks = inj_tick(ticks);
  }
  return NULL;
}

static void on_usr1(int s) { (void)s; woken = 1; }

static void *churn(void *a) {
  double end = now() + secs;
  long n = 0;
  while (now() < end && !woken) {
    for (int i = 0; i < 1000; i++, n++) {
      size_t len = 2048 + (size_t)(n * 37 % 30000); /* past tcache: arena locks */
      char *p = malloc(len);
      if (!p) bad(a, "malloc");
      memset(p, 'a', 63);
      p[63] = 0;
      if (strlen(p) != 63) bad(a, "strlen");
      free(p);
    }
    ticks = inj_tick(ticks);
  }
  return (void *)n;
}

static void *helper(void *a) {
  const char *mode = a;
  struct timespec t = {(time_t)secs, (long)((secs - (time_t)secs) * 1e9)};
  nanosleep(&t, NULL);
  if (!strcmp(mode, "read")) {
    if (write(pfd[1], "x", 1) != 1) bad(mode, "write");
  } else {
    pthread_kill(main_th, SIGUSR1);
  }
  return NULL;
}

int main(int argc, char **argv) {
  if (argc < 3) return 2;
  const char *mode = argv[1];
  secs = atof(argv[2]);
  main_th = pthread_self();
  struct sigaction sa = {0};
  sa.sa_handler = on_usr1;
  sigaction(SIGUSR1, &sa, NULL);
  /* a mask and an alternate stack that must survive */
  sigset_t mask, m2;
  sigemptyset(&mask);
  sigaddset(&mask, SIGUSR2);
  sigaddset(&mask, SIGWINCH);
  pthread_sigmask(SIG_BLOCK, &mask, NULL);
  static char alt[64 * 1024];
  stack_t ss = {.ss_sp = alt, .ss_size = sizeof alt}, s2;
  sigaltstack(&ss, NULL);
  printf("ready %d\n", (int)getpid());
  fflush(stdout);
  long n = 0;
  pthread_t th[3];
  if (!strcmp(mode, "fpu")) {
    checker((void *)mode);
    n = (long)ticks;
  } else if (!strcmp(mode, "mt")) {
    for (int i = 0; i < 3; i++) pthread_create(&th[i], NULL, checker, (void *)mode);
    for (int i = 0; i < 3; i++) pthread_join(th[i], NULL);
    n = (long)ticks;
  } else if (!strcmp(mode, "read")) {
    if (pipe(pfd)) bad(mode, "pipe");
    pthread_create(&th[0], NULL, helper, (void *)mode);
    char c;
    ssize_t r = read(pfd[0], &c, 1);
    if (r != 1) bad(mode, r < 0 ? strerror(errno) : "short read");
    n = 1;
  } else if (!strcmp(mode, "pause")) {
    pthread_create(&th[0], NULL, helper, (void *)mode);
    while (!woken) {
      pause();
      if (!woken) bad(mode, "pause returned without the signal");
    }
    n = 1;
  } else if (!strcmp(mode, "sleep")) {
    double end = now() + secs;
    while (now() < end) {
      struct timespec t = {0, 20000000};
      if (clock_nanosleep(CLOCK_MONOTONIC, 0, &t, NULL) != 0) bad(mode, "nanosleep ended early");
      n++;
    }
  } else if (!strcmp(mode, "malloc")) {
    pthread_create(&th[0], NULL, churn, (void *)mode);
    n = (long)churn((void *)mode);
    pthread_join(th[0], NULL);
  } else if (!strcmp(mode, "nap")) {
    struct timespec t = {(time_t)secs, (long)((secs - (time_t)secs) * 1e9)};
    double t0 = now();
    if (clock_nanosleep(CLOCK_MONOTONIC, 0, &t, NULL) != 0) bad(mode, "nanosleep ended early");
    if (now() - t0 < secs - 0.001) bad(mode, "slept too little");
    n = 1;
  } else {
    return 2;
  }
  pthread_sigmask(SIG_BLOCK, NULL, &m2);
  if (!sigismember(&m2, SIGUSR2) || !sigismember(&m2, SIGWINCH) || sigismember(&m2, SIGUSR1))
    bad(mode, "signal mask changed");
  sigaltstack(NULL, &s2);
  if (s2.ss_sp != alt || s2.ss_size != sizeof alt || s2.ss_flags != 0)
    bad(mode, "alternate stack changed");
  printf("ok %s %ld\n", mode, n);
  return 0;
}
