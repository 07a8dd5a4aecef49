/*
 * vt_work - a probe target for the VMX controller tests.
 *   vt_work count THREADS N     each thread calls work_add N times; prints
 *                               "sum=S" (S = THREADS * N * (N+1) / 2)
 *   vt_work loop SECONDS [US]   prints "ready", calls work_tick (and
 *                               work_mul) until SECONDS pass or SIGUSR1
 *                               comes, sleeping US microseconds every 1000
 *                               calls; "done N"
 *   vt_work fork N              N calls, then a child makes N calls and
 *                               prints "child N", then N more in the parent
 *   vt_work exec SECONDS        loop for SECONDS (or until SIGUSR1), then
 *                               exec itself as "loop 1"
 *   vt_work status K            prints "hello" and exits with status K
 *   vt_work orphan SECONDS      as loop, in a thread: main has called
 *                               pthread_exit (its thread is a zombie)
 *   vt_work waves T SECONDS     prints "ready", then every 0.25 s starts T
 *                               new threads that call work_tick for 0.2 s;
 *                               "threads N" (how many ran) at the end
 */
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

__attribute__((noinline)) uint64_t work_add(uint64_t x) {
  __asm__ volatile("" ::: "memory");
  return x + 1;
}

__attribute__((noinline)) int64_t work_mul(int64_t a, int64_t b) {
  __asm__ volatile("" ::: "memory");
  return a * b;
}

__attribute__((noinline)) uint64_t work_tick(uint64_t n) {
  __asm__ volatile("" ::: "memory");
  return n ^ 0x5a;
}

static uint64_t nper;
static volatile sig_atomic_t stop_now; /* SIGUSR1: end the loop early */

static void on_usr1(int sig) {
  (void)sig;
  stop_now = 1;
}

static void *count_thread(void *arg) {
  uint64_t s = 0;
  for (uint64_t i = 0; i < nper; i++) s += work_add(i);
  *(uint64_t *)arg = s;
  return NULL;
}

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static uint64_t loop(double secs, unsigned us) {
  double end = now() + secs;
  uint64_t n = 0, x = 0;
  while (now() < end && !stop_now) {
    for (int i = 0; i < 1000; i++, n++) x += work_tick(n);
    x += (uint64_t)work_mul((int64_t)n, 3);
    if (us) usleep(us);
  }
  return n + (x & 0); /* x keeps the calls alive */
}

static void *wave_thread(void *arg) {
  (void)arg;
  loop(0.2, 0);
  return NULL;
}

static double orphan_secs;

static void *orphan_thread(void *arg) {
  (void)arg;
  printf("ready %d\n", (int)getpid());
  uint64_t n = loop(orphan_secs, 0);
  printf("done %llu\n", (unsigned long long)n);
  exit(0);
}

static int waves(int nt, double secs) {
  printf("ready %d\n", (int)getpid());
  double end = now() + secs;
  int total = 0;
  while (now() < end && !stop_now) {
    pthread_t th[64];
    for (int i = 0; i < nt; i++) pthread_create(&th[i], NULL, wave_thread, NULL);
    for (int i = 0; i < nt; i++) pthread_join(th[i], NULL);
    total += nt;
    usleep(50000);
  }
  printf("threads %d\n", total);
  return 0;
}

int main(int argc, char **argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  signal(SIGUSR1, on_usr1);
  if (argc >= 4 && strcmp(argv[1], "count") == 0) {
    int nt = atoi(argv[2]);
    nper = strtoull(argv[3], NULL, 0);
    pthread_t th[64];
    uint64_t sums[64], total = 0;
    if (nt < 1 || nt > 64) return 2;
    for (int i = 0; i < nt; i++) pthread_create(&th[i], NULL, count_thread, &sums[i]);
    for (int i = 0; i < nt; i++) pthread_join(th[i], NULL), total += sums[i];
    printf("sum=%llu\n", (unsigned long long)total);
    return 0;
  }
  if (argc >= 3 && strcmp(argv[1], "loop") == 0) {
    printf("ready %d\n", (int)getpid());
    uint64_t n = loop(atof(argv[2]), argc > 3 ? (unsigned)atoi(argv[3]) : 0);
    printf("done %llu\n", (unsigned long long)n);
    return 0;
  }
  if (argc >= 3 && strcmp(argv[1], "fork") == 0) {
    uint64_t n = strtoull(argv[2], NULL, 0), s = 0;
    for (uint64_t i = 0; i < n; i++) s += work_add(i);
    pid_t c = fork();
    if (c == 0) {
      uint64_t k = 0;
      for (uint64_t i = 0; i < n; i++) k += work_add(i) - i;
      printf("child %llu\n", (unsigned long long)k);
      _exit(0);
    }
    int st = 0;
    waitpid(c, &st, 0);
    for (uint64_t i = 0; i < n; i++) s += work_add(i);
    printf("parent %llu child-status %d\n", (unsigned long long)s, st);
    return st != 0;
  }
  if (argc >= 3 && strcmp(argv[1], "exec") == 0) {
    printf("ready %d\n", (int)getpid());
    loop(atof(argv[2]), 100);
    signal(SIGUSR1, SIG_DFL);
    execl("/proc/self/exe", argv[0], "loop", "1", (char *)NULL);
    return 1;
  }
  if (argc >= 3 && strcmp(argv[1], "orphan") == 0) {
    pthread_t th;
    orphan_secs = atof(argv[2]);
    pthread_create(&th, NULL, orphan_thread, NULL);
    pthread_exit(NULL);
  }
  if (argc >= 4 && strcmp(argv[1], "waves") == 0) {
    int nt = atoi(argv[2]);
    return nt >= 1 && nt <= 64 ? waves(nt, atof(argv[3])) : 2;
  }
  if (argc >= 3 && strcmp(argv[1], "status") == 0) {
    printf("hello\n");
    return atoi(argv[2]);
  }
  fprintf(stderr, "usage: vt_work count|loop|fork|exec|status|waves ...\n");
  return 2;
}
