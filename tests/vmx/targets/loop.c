/* loop N [THREADS [FOREVER]]: each thread calls work(i, 3) N times (with
 * FOREVER=1: until killed, pausing 1 ms every N calls) and main prints the
 * total of the results.  A probe target for the VMX tests and the bench:
 * with LOOP_TIME set in the environment it also prints, on stderr, the
 * wall time of the calls in ns ("elapsed_ns N") and the CPU time the
 * process spent meanwhile ("cpu_ns N"). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

__attribute__((noinline)) long work(long i, long k) {
  __asm__ volatile("");
  return i + k;
}

static long n;
static int forever;

static void *run(void *arg) {
  long sum = 0;
  (void)arg;
  do {
    for (long i = 0; i < n; i++)
      sum += work(i, 3);
    if (forever)
      usleep(1000);
  } while (forever);
  return (void *)sum;
}

int main(int argc, char **argv) {
  n = argc > 1 ? atol(argv[1]) : 1000000;
  int nt = argc > 2 ? atoi(argv[2]) : 1;
  forever = argc > 3 && atoi(argv[3]);
  if (nt < 1 || nt > 64)
    nt = 1;
  pthread_t th[64];
  long total = 0;
  struct timespec t0, t1, c0, c1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c0);
  for (int i = 1; i < nt; i++)
    pthread_create(&th[i], NULL, run, NULL);
  total += (long)run(NULL);
  for (int i = 1; i < nt; i++) {
    void *r;
    pthread_join(th[i], &r);
    total += (long)r;
  }
  clock_gettime(CLOCK_MONOTONIC, &t1);
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c1);
  if (getenv("LOOP_TIME"))
    fprintf(stderr, "elapsed_ns %lld\ncpu_ns %lld\n",
            (long long)(t1.tv_sec - t0.tv_sec) * 1000000000 + (t1.tv_nsec - t0.tv_nsec),
            (long long)(c1.tv_sec - c0.tv_sec) * 1000000000 + (c1.tv_nsec - c0.tv_nsec));
  printf("total %ld\n", total);
  return 0;
}
