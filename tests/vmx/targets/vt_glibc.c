/*
 * vt_glibc - a self-checking probe target that lives in libc: THREADS
 * threads each run N rounds of getpid, sched_getcpu, malloc/free, string functions,
 * snprintf/strtol and a signal to itself, checking every result.
 *   vt_glibc THREADS N [fork]   prints "ready", then "checksum C errors E
 *                        signals S" (C depends only on THREADS and N); with
 *                        fork, a child then says whether it still maps
 *                        vprobe's shared region: "child-region yes|no".
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static pid_t pid;
static long rounds;
static int nsig;
static long errors;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;

static void on_usr1(int sig) {
  (void)sig;
  __atomic_fetch_add(&nsig, 1, __ATOMIC_RELAXED);
}

static uint64_t round_of(long id, long i, long *bad) {
  uint64_t h = (uint64_t)(id * 1000003 + i);
  if (getpid() != pid)
    ++*bad;
  if (sched_getcpu() < 0)
    ++*bad;
  size_t n = 16 + (size_t)(i % 200);
  char *p = malloc(n), *q = malloc(n);
  if (!p || !q) {
    ++*bad;
    free(p), free(q);
    return h;
  }
  memset(p, 'a' + (int)(i % 26), n - 1);
  p[n - 1] = 0;
  strcpy(q, p);
  if (strlen(q) != n - 1 || strcmp(p, q) || memcmp(p, q, n))
    ++*bad;
  char num[32];
  snprintf(num, sizeof num, "%ld-%ld", id, i);
  char *end;
  if (strtol(num, &end, 10) != id || *end != '-' || strtol(end + 1, NULL, 10) != i)
    ++*bad;
  h = h * 31 + strlen(num) + (uint64_t)(unsigned char)q[n / 2];
  free(p), free(q);
  if (i % 1000 == 0)
    raise(SIGUSR1);
  return h;
}

static void *worker(void *arg) {
  long id = (long)(intptr_t)arg, bad = 0;
  uint64_t h = 0;
  for (long i = 0; i < rounds; i++)
    h ^= round_of(id, i, &bad) * 0x9e3779b97f4a7c15ull;
  pthread_mutex_lock(&mu);
  errors += bad;
  pthread_mutex_unlock(&mu);
  return (void *)(uintptr_t)h;
}

int main(int argc, char **argv) {
  long nt = argc > 1 ? atol(argv[1]) : 4;
  rounds = argc > 2 ? atol(argv[2]) : 100000;
  if (nt < 1 || nt > 64)
    nt = 4;
  pid = getpid();
  signal(SIGUSR1, on_usr1);
  printf("ready\n");
  fflush(stdout);
  pthread_t th[64];
  for (long i = 0; i < nt; i++)
    pthread_create(&th[i], NULL, worker, (void *)(intptr_t)i);
  uint64_t sum = 0;
  for (long i = 0; i < nt; i++) {
    void *r;
    pthread_join(th[i], &r);
    sum += (uint64_t)(uintptr_t)r;
  }
  printf("checksum %llx errors %ld signals %d\n", (unsigned long long)sum, errors, (int)nsig);
  fflush(stdout);
  if (argc > 3 && !strcmp(argv[3], "fork")) {
    pid_t child = fork();
    if (child == 0) {
      FILE *m = fopen("/proc/self/maps", "r");
      char line[512];
      int seen = 0;
      while (m && fgets(line, sizeof line, m))
        seen |= strstr(line, "vprobe-vmx") != NULL;
      printf("child-region %s\n", seen ? "yes" : "no");
      exit(0);
    }
    waitpid(child, NULL, 0);
  }
  return errors != 0;
}
