/* recurse N DEPTH: calls rec(DEPTH) N times (rec recurses DEPTH levels,
 * returning DEPTH), then N times escape(), which calls jumper() that
 * longjmps back over it; exits 1 if any result is wrong.  For EXIT probes:
 * deep recursion and frames skipped by longjmp. */
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>

static jmp_buf env;
long rec(long d);
static long (*volatile recp)(long) = rec; /* keeps the recursion real */

__attribute__((noinline)) long rec(long d) {
  __asm__ volatile("");
  return d ? 1 + recp(d - 1) : 0;
}

__attribute__((noinline)) void jumper(long i) {
  __asm__ volatile("");
  longjmp(env, (int)(i & 0xff) + 1);
}

__attribute__((noinline)) long escape(long i) {
  __asm__ volatile("");
  jumper(i);
  return -1;
}

int main(int argc, char **argv) {
  volatile long n = argc > 1 ? atol(argv[1]) : 1000, depth = argc > 2 ? atol(argv[2]) : 10;
  volatile long bad = 0;
  for (long i = 0; i < n; i++)
    bad += rec(depth) != depth;
  for (volatile long i = 0; i < n; i++) {
    volatile long v = setjmp(env);
    if (!v)
      escape(i);
    else
      bad += v != (i & 0xff) + 1;
    bad += rec(3) != 3;
  }
  printf("bad %ld\n", (long)bad);
  return bad != 0;
}
