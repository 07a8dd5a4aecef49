/*
 * vt_soak - the soak's target: THREADS threads (default 4) that work until
 * told to stop, each checking every result against a second computation.
 *   vt_soak STATUSFILE [THREADS]
 * prints "ready PID"; every 50 ms rewrites STATUSFILE with one line
 * "rounds R mismatches M"; SIGUSR1 or SIGTERM stops the threads, the last
 * line goes to STATUSFILE and stdout ("done rounds R mismatches M"), and the
 * exit status is 1 if any result was ever wrong.
 *
 * The work is what probes land on: recursion (soak_fib), a switch with a
 * jump table (soak_switch), loops (soak_mix), libc string and memory calls
 * (soak_strings: malloc, snprintf, strlen, memcpy, strcmp, free) and small
 * system calls (soak_io: getpid, write to /dev/null).  Functions are global
 * and not inlined so that each is a probe point of its own.
 */
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAXT 32

static volatile sig_atomic_t stop_now;
static uint64_t rounds[MAXT], mismatches[MAXT]; /* one writer each */
static int devnull = -1;
static pid_t mypid;

static void on_stop(int sig) {
  (void)sig;
  stop_now = 1;
}

__attribute__((noinline)) uint64_t soak_fib(uint64_t n) {
  return n < 2 ? n : soak_fib(n - 1) + soak_fib(n - 2);
}

static uint64_t fib_iter(uint64_t n) {
  uint64_t a = 0, b = 1;
  for (uint64_t i = 0; i < n; i++) {
    uint64_t t = a + b;
    a = b;
    b = t;
  }
  return a;
}

__attribute__((noinline)) int64_t soak_switch(int64_t x) {
  switch (x & 15) {
  case 0: return x + 7;
  case 1: return x * 3;
  case 2: return x ^ 0x55;
  case 3: return x - 11;
  case 4: return x << 2;
  case 5: return x >> 1;
  case 6: return ~x;
  case 7: return x * x;
  case 8: return x + 1000;
  case 9: return x | 0x100;
  case 10: return x & 0xff;
  case 11: return -x;
  case 12: return x * 5 + 1;
  default: return x;
  }
}

static int64_t switch_ref(int64_t x) {
  static const int op[16] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 13, 13};
  int64_t r[14] = {x + 7, x * 3, x ^ 0x55, x - 11, (int64_t)((uint64_t)x << 2), x >> 1, ~x,
                   x * x, x + 1000, x | 0x100, x & 0xff, -x, x * 5 + 1, x};
  return r[op[x & 15]];
}

/* a loop with a data-dependent trip count and a branch inside */
__attribute__((noinline)) uint64_t soak_mix(const uint32_t *v, int n) {
  uint64_t s = 0;
  for (int i = 0; i < n; i++) {
    if (v[i] & 1) s += v[i] * 3u;
    else s ^= (uint64_t)v[i] << (i & 7);
  }
  return s;
}

static uint64_t mix_ref(const uint32_t *v, int n) {
  uint64_t s = 0;
  for (int i = 0; i < n; i++) s = (v[i] % 2) ? s + (uint32_t)(v[i] * 3u) : s ^ ((uint64_t)v[i] << (i % 8));
  return s;
}

/* libc string functions: the result is a length the caller recomputes */
__attribute__((noinline)) size_t soak_strings(unsigned tid, uint64_t k) {
  char *a = malloc(64), *b = malloc(64);
  size_t n = 0;
  if (!a || !b) {
    free(a);
    free(b);
    return (size_t)-1;
  }
  snprintf(a, 64, "t%u-k%llu", tid, (unsigned long long)k);
  n = strlen(a);
  memcpy(b, a, n + 1);
  if (strcmp(a, b) != 0) n = (size_t)-1;
  free(a);
  free(b);
  return n;
}

static size_t strings_ref(unsigned tid, uint64_t k) {
  size_t n = 3; /* 't', '-', 'k' */
  do n++; while (tid /= 10);
  do n++; while (k /= 10);
  return n;
}

__attribute__((noinline)) int soak_io(unsigned tid) {
  char c = (char)('a' + tid % 26);
  if (getpid() != mypid) return -1;
  return (int)write(devnull, &c, 1);
}

/* One round: every function once, each result checked. */
__attribute__((noinline)) int soak_round(unsigned tid, uint64_t r, uint32_t *v) {
  int bad = 0;
  uint64_t n = 10 + (r + tid) % 12;
  if (soak_fib(n) != fib_iter(n)) bad++;
  for (int64_t x = (int64_t)r; x < (int64_t)r + 16; x++)
    if (soak_switch(x) != switch_ref(x)) bad++;
  for (int i = 0; i < 32; i++) v[i] = (uint32_t)(r * 2654435761u + (uint64_t)i * 40503u + tid);
  if (soak_mix(v, 32) != mix_ref(v, 32)) bad++;
  if (soak_strings(tid, r) != strings_ref(tid, r)) bad++;
  if (soak_io(tid) != 1) bad++;
  return bad;
}

static void *worker(void *arg) {
  unsigned tid = (unsigned)(uintptr_t)arg;
  uint32_t v[32];
  for (uint64_t r = 0; !stop_now; r++) {
    int bad = soak_round(tid, r, v);
    if (bad) __atomic_add_fetch(&mismatches[tid], (uint64_t)bad, __ATOMIC_RELAXED);
    __atomic_store_n(&rounds[tid], r + 1, __ATOMIC_RELAXED);
  }
  return NULL;
}

static void totals(int nt, uint64_t *r, uint64_t *m) {
  *r = *m = 0;
  for (int i = 0; i < nt; i++) {
    *r += __atomic_load_n(&rounds[i], __ATOMIC_RELAXED);
    *m += __atomic_load_n(&mismatches[i], __ATOMIC_RELAXED);
  }
}

/* the status file holds one line, rewritten in place at a fixed width */
static void status(int fd, int nt) {
  char line[80];
  uint64_t r, m;
  totals(nt, &r, &m);
  int n = snprintf(line, sizeof line, "rounds %20llu mismatches %10llu\n",
                   (unsigned long long)r, (unsigned long long)m);
  if (pwrite(fd, line, (size_t)n, 0) != n) perror("vt_soak: status");
}

int main(int argc, char **argv) {
  pthread_t th[MAXT];
  int nt = argc > 2 ? atoi(argv[2]) : 4;
  if (argc < 2 || nt < 1 || nt > MAXT) {
    fprintf(stderr, "usage: vt_soak STATUSFILE [THREADS]\n");
    return 2;
  }
  int fd = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC, 0644);
  devnull = open("/dev/null", O_WRONLY);
  if (fd < 0 || devnull < 0) {
    perror("vt_soak");
    return 2;
  }
  setvbuf(stdout, NULL, _IOLBF, 0);
  signal(SIGUSR1, on_stop);
  signal(SIGTERM, on_stop);
  mypid = getpid();
  for (int i = 0; i < nt; i++) pthread_create(&th[i], NULL, worker, (void *)(uintptr_t)i);
  status(fd, nt);
  printf("ready %d\n", (int)mypid);
  struct timespec tick = {0, 50 * 1000 * 1000};
  while (!stop_now) {
    nanosleep(&tick, NULL);
    status(fd, nt);
  }
  for (int i = 0; i < nt; i++) pthread_join(th[i], NULL);
  status(fd, nt);
  uint64_t r, m;
  totals(nt, &r, &m);
  printf("done rounds %llu mismatches %llu\n", (unsigned long long)r, (unsigned long long)m);
  return m != 0;
}
