/* selfattach AGENT.so SOCKPATH N: what attach mode does through ptrace,
 * done by the process itself: dlopen the agent, call vpagent_start(SOCK)
 * (which must return at once), then call work(i, 3) N times every 10 ms
 * for ever, printing the time vpagent_start took.  SIGUSR2 makes it call
 * vpagent_start again (a second attach).  selfattach ... N BUSY also runs
 * BUSY threads calling work in a tight loop (patching under fire). */
#include <dlfcn.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t again;
static volatile long sink;
static void on_usr2(int sig) { again = sig; }

__attribute__((noinline)) long work(long i, long k) {
  __asm__ volatile("");
  return i + k;
}

static void *busy(void *arg) {
  long sum = 0;
  for (long i = 0;; i++) {
    sum += work(i, 3);
    if (!(i & 0xffff))
      sink += sum;
  }
  return arg;
}

int main(int argc, char **argv) {
  if (argc < 4)
    return 2;
  void *h = dlopen(argv[1], RTLD_NOW);
  int (*start)(const char *) = h ? (int (*)(const char *))dlsym(h, "vpagent_start") : NULL;
  if (!start) {
    fprintf(stderr, "selfattach: %s\n", dlerror());
    return 1;
  }
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  int rc = start(argv[2]);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  printf("start %d %lld us\n", rc,
         (long long)((t1.tv_sec - t0.tv_sec) * 1000000 + (t1.tv_nsec - t0.tv_nsec) / 1000));
  fflush(stdout);
  signal(SIGUSR2, on_usr2);
  for (int i = 0; argc > 4 && i < atoi(argv[4]); i++) {
    pthread_t th;
    pthread_create(&th, NULL, busy, NULL);
  }
  long n = atol(argv[3]);
  for (;;) {
    if (again) {
      again = 0;
      start(argv[2]);
    }
    for (long i = 0; i < n; i++)
      sink += work(i, 3);
    usleep(10000);
  }
}
