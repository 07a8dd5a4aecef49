/*
 * vt_ifunc - a target for IFUNC and never-probed functions.
 *   vt_ifunc N [SECONDS]   prints "restorer 0xADDR" (libc's signal return
 *                  trampoline, from sigaction), calls strlen and memset N
 *                  times each (on data the compiler cannot see); with
 *                  SECONDS, prints "ready" and goes on doing so that long;
 *                  then prints "len=L" (the lengths' sum over the first N
 *                  calls) and exits 0.
 * vt_restorer is a function of its own whose code is the rt_sigreturn
 * trampoline (never probed, whatever its name).
 */
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

__asm__(".text\n.globl vt_restorer\n.type vt_restorer,@function\nvt_restorer:\n"
        "  mov $15, %rax\n  syscall\n  hlt\n.size vt_restorer, .-vt_restorer\n");

static void on_usr2(int sig) { (void)sig; }

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static uint64_t batch(long n) {
  char buf[256];
  volatile size_t vlen = 100;
  uint64_t total = 0;
  for (long i = 0; i < n; i++) {
    size_t k = vlen + (size_t)(i % 50);
    memset(buf, 'a' + (int)(i % 26), k);
    buf[k] = 0;
    total += strlen(buf);
  }
  return total;
}

int main(int argc, char **argv) {
  long n = argc > 1 ? atol(argv[1]) : 100;
  struct sigaction sa, old;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_usr2;
  sigaction(SIGUSR2, &sa, NULL);
  sigaction(SIGUSR2, NULL, &old);
  printf("restorer %p\n", (void *)old.sa_restorer);
  fflush(stdout);
  uint64_t total = batch(n);
  double secs = argc > 2 ? atof(argv[2]) : 0;
  if (secs > 0) {
    printf("ready\n");
    fflush(stdout);
    double end = now() + secs;
    while (now() < end) batch(n);
  }
  printf("len=%llu\n", (unsigned long long)total);
  return 0;
}
