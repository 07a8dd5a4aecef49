/* alloc N [THREADS]: each thread mallocs, fills and frees N blocks and
 * calls getpid N times.  A target for probes on libc functions the agent
 * itself might use. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static long n;

static void *run(void *arg) {
  long sum = 0;
  (void)arg;
  for (long i = 0; i < n; i++) {
    char *p = malloc((size_t)(i % 100) + 1);
    if (!p)
      abort();
    memset(p, 1, (size_t)(i % 100) + 1);
    sum += p[0];
    free(p);
    sum += getpid() > 0;
  }
  return (void *)sum;
}

int main(int argc, char **argv) {
  n = argc > 1 ? atol(argv[1]) : 100000;
  int nt = argc > 2 ? atoi(argv[2]) : 1;
  if (nt < 1 || nt > 64)
    nt = 1;
  pthread_t th[64];
  long total = 0;
  for (int i = 1; i < nt; i++)
    pthread_create(&th[i], NULL, run, NULL);
  total += (long)run(NULL);
  for (int i = 1; i < nt; i++) {
    void *r;
    pthread_join(th[i], &r);
    total += (long)r;
  }
  printf("total %ld\n", total);
  return 0;
}
