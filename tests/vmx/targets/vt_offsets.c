/*
 * vt_offsets - a self-checking target for probes at every offset of one
 * function.  vt_offsets THREADS N: each thread calls work(i) for i < N and
 * sums the results; every thread must get the same sum, printed as
 * "sum=S calls=C" (exit 0), else "MISMATCH" (exit 2).  work has a loop, a
 * switch (a jump table), calls and RIP-relative loads and stores, so that
 * its instructions come in every kind a probe must be placed over.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

static const uint32_t table[16] = {3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8, 9, 7, 9, 3};
static uint64_t gdata[8] = {11, 13, 17, 19, 23, 29, 31, 37};
static __thread uint64_t tcalls;

__attribute__((noinline)) uint64_t helper(uint64_t x) {
  __asm__ volatile("" ::: "memory");
  return x * 3 + 1;
}

__attribute__((noinline)) uint64_t work(uint64_t x) {
  uint64_t s = x;
  tcalls++;
  for (uint64_t i = 0; i < (x & 7) + 1; i++) {
    switch ((x + i) % 7) {
    case 0: s += table[(x + i) & 15]; break;
    case 1: s ^= helper(i + x); break;
    case 2: s = s * 31 + x; break;
    case 3: s += gdata[(x + i) & 7]; break;
    case 4: s -= i * 5; break;
    case 5: s = (s << 3) | i; break;
    default: s = s * 7 + helper(s); break;
    }
  }
  return s;
}

static uint64_t n_per;

static void *run(void *arg) {
  uint64_t s = 0;
  for (uint64_t i = 0; i < n_per; i++) s += work(i);
  ((uint64_t *)arg)[0] = s;
  ((uint64_t *)arg)[1] = tcalls;
  return NULL;
}

int main(int argc, char **argv) {
  int nt = argc > 1 ? atoi(argv[1]) : 4;
  n_per = argc > 2 ? strtoull(argv[2], NULL, 0) : 1000;
  if (nt < 1 || nt > 64) return 1;
  pthread_t th[64];
  uint64_t res[64][2];
  for (int i = 0; i < nt; i++) pthread_create(&th[i], NULL, run, res[i]);
  uint64_t calls = 0;
  int bad = 0;
  for (int i = 0; i < nt; i++) {
    pthread_join(th[i], NULL);
    bad |= res[i][0] != res[0][0];
    calls += res[i][1];
  }
  if (bad) {
    printf("MISMATCH\n");
    return 2;
  }
  printf("sum=%llu calls=%llu\n", (unsigned long long)res[0][0], (unsigned long long)calls);
  return 0;
}
