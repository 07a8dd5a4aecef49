/*
 * vt_xbranch - a target whose hand-written assembly jumps from one function
 * to a label inside another, the way glibc's __mempcpy_*_erms enters
 * __memmove_*_erms three bytes after its start:
 *
 *   xb_add:     mov rax,rdi  (3 bytes)   xb_plus: lea rax,[rdi+1000]
 *   .Lxb_body:  add rax,rsi                       jmp .Lxb_body
 *               ret
 *
 * A 5-byte jump at xb_add's entry covers .Lxb_body: every xb_plus call would
 * then run the middle of the jump.  xb_mix has an instruction boundary at
 * +2 inside the bytes a jump at its entry displaces (ENTER plus OFFSET:0x2).
 * The libc string functions (memcpy, mempcpy, memmove, strcpy...) run too.
 *
 *   vt_xbranch ROUNDS          prints "checksum H errors E"
 *   vt_xbranch 0 SECONDS       prints "ready ADDR" (xb_mix's), runs SECONDS, then
 *                              "calls N errors E" (for attaching)
 * Every result is checked against C; the checksum depends on ROUNDS only.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

long xb_add(long a, long b);
long xb_plus(long a, long b);
int xb_mix(int a, int b);

__asm__(".text\n"
        ".globl xb_plus\n.type xb_plus,@function\n"
        "xb_plus:\n"
        "  lea 1000(%rdi),%rax\n"
        "  jmp .Lxb_body\n"
        ".size xb_plus,.-xb_plus\n"
        ".p2align 4\n"
        ".globl xb_add\n.type xb_add,@function\n"
        "xb_add:\n"
        "  mov %rdi,%rax\n"
        ".Lxb_body:\n"
        "  add %rsi,%rax\n"
        "  ret\n"
        ".size xb_add,.-xb_add\n"
        ".p2align 4\n"
        ".globl xb_mix\n.type xb_mix,@function\n"
        "xb_mix:\n"
        "  mov %edi,%eax\n"  /* 2 bytes: +2 is a boundary */
        "  add %esi,%eax\n"
        "  imul %eax,%eax\n"
        "  add $7,%eax\n"
        "  ret\n"
        ".size xb_mix,.-xb_mix\n");

/* Through pointers: the compiler would turn mempcpy into memcpy. */
static void *(*volatile p_mempcpy)(void *, const void *, size_t) = mempcpy;
static void *(*volatile p_memcpy)(void *, const void *, size_t) = memcpy;

static uint64_t h = 1469598103934665603ull;
static long errors;

static void mix(uint64_t v) { h = (h ^ v) * 1099511628211ull; }

static void round_(long i) {
  long a = i * 7 + 3, b = i % 1000;
  long r1 = xb_add(a, b), r2 = xb_plus(a, b);
  int r3 = xb_mix((int)(i & 0xff), (int)(b & 0xff));
  int a8 = (int)(i & 0xff), b8 = (int)(b & 0xff);
  if (r1 != a + b || r2 != a + b + 1000 || r3 != (a8 + b8) * (a8 + b8) + 7)
    errors++;
  char src[300], dst[300], tmp[300];
  size_t n = 1 + (size_t)(i % 290);
  for (size_t k = 0; k < n; k++)
    src[k] = (char)('a' + (i + (long)k) % 26);
  src[n] = 0;
  p_memcpy(dst, src, n + 1);
  char *e = p_mempcpy(tmp, src, n);
  *e = 0;
  memmove(dst + 1, dst, n / 2);
  if (e != tmp + n || strcmp(tmp, src) || memcmp(dst + 1, src, n / 2) || strlen(tmp) != n)
    errors++;
  char *p = stpcpy(tmp, src);
  if (p != tmp + n)
    errors++;
  mix((uint64_t)r1), mix((uint64_t)r2), mix((uint64_t)r3), mix((uint64_t)(unsigned char)dst[n / 2]);
}

int main(int argc, char **argv) {
  long rounds = argc > 1 ? atol(argv[1]) : 1000;
  if (rounds > 0) {
    for (long i = 0; i < rounds; i++)
      round_(i);
    printf("checksum %016llx errors %ld\n", (unsigned long long)h, errors);
    return errors != 0;
  }
  double secs = argc > 2 ? atof(argv[2]) : 1;
  struct timespec t0, t;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  printf("ready %p\n", (void *)xb_mix);
  fflush(stdout);
  long i = 0;
  do {
    for (int k = 0; k < 1000; k++)
      round_(i++);
    clock_gettime(CLOCK_MONOTONIC, &t);
  } while ((double)(t.tv_sec - t0.tv_sec) + (double)(t.tv_nsec - t0.tv_nsec) / 1e9 < secs);
  printf("calls %ld errors %ld\n", i, errors);
  return errors != 0;
}
