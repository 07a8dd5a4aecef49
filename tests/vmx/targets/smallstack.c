/* smallstack N: work(i, 3) called N times from a thread with a 32 KiB
 * stack, and N times from a SIGUSR1 handler running on an 8 KiB signal
 * stack (raised by the main thread).  Probes there must not overflow. */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

__attribute__((noinline)) long work(long i, long k) {
  __asm__ volatile("");
  return i + k;
}

static long n;
static volatile long sig_sum;

static void *run(void *arg) {
  long sum = 0;
  (void)arg;
  for (long i = 0; i < n; i++)
    sum += work(i, 3);
  return (void *)sum;
}

static void on_usr1(int sig) {
  (void)sig;
  sig_sum += work(1, 3);
}

int main(int argc, char **argv) {
  n = argc > 1 ? atol(argv[1]) : 1000;
  pthread_attr_t at;
  pthread_attr_init(&at);
  pthread_attr_setstacksize(&at, 32 * 1024);
  pthread_t th;
  if (pthread_create(&th, &at, run, NULL))
    return 2;
  void *r;
  pthread_join(th, &r);
  static char alt[8192];
  stack_t ss = {.ss_sp = alt, .ss_size = sizeof alt, .ss_flags = 0};
  sigaltstack(&ss, NULL);
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_usr1;
  sa.sa_flags = SA_ONSTACK;
  sigaction(SIGUSR1, &sa, NULL);
  for (long i = 0; i < n; i++)
    raise(SIGUSR1);
  printf("thread %ld signal %ld\n", (long)r, (long)sig_sum);
  return 0;
}
