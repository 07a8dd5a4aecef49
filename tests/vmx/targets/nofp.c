/* nofp [N]: main -> outer -> middle -> leaf, N times, built with
 * -fomit-frame-pointer (src/vmx/build.mk): vmxstack must unwind it by the
 * CFI in .eh_frame.  The frames are given work that keeps rsp moving
 * (arrays, calls) so a frame-pointer walk cannot get through. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static volatile long sink;

__attribute__((noinline)) long leaf(long x) {
  __asm__ volatile("");
  return x * 3 + 1;
}

__attribute__((noinline)) long middle(long x) {
  volatile char buf[40];
  memset((char *)buf, (int)x, sizeof buf);
  return leaf(x + buf[3]) + buf[7];
}

__attribute__((noinline)) long outer(long x) {
  volatile long a[9];
  for (int i = 0; i < 9; i++)
    a[i] = x + i;
  return middle(a[x & 7]) + a[8];
}

int main(int argc, char **argv) {
  long n = argc > 1 ? atol(argv[1]) : 3;
  for (long i = 0; i < n; i++)
    sink += outer(i);
  printf("nofp done %ld\n", n);
  return 0;
}
