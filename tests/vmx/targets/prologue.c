/* prologue N: functions whose first bytes test the patcher: rip_fn starts
 * with a RIP-relative load, br_fn with a conditional branch, tiny_fn is one
 * byte long (a trap, not a jump), call_fn starts with a call.  Each is
 * called N times; exits 1 if any result is wrong. */
#include <stdio.h>
#include <stdlib.h>

__asm__(".text\n"
        ".globl rip_fn\n.type rip_fn,@function\n rip_fn:\n"
        "  mov rip_val(%rip),%rax\n  add %rdi,%rax\n  ret\n"
        ".size rip_fn,.-rip_fn\n"
        ".globl br_fn\n.type br_fn,@function\n br_fn:\n"
        "  test %rdi,%rdi\n  jz 1f\n  mov $1,%eax\n  ret\n1: mov $2,%eax\n  ret\n"
        ".size br_fn,.-br_fn\n"
        ".globl tiny_fn\n.type tiny_fn,@function\n tiny_fn:\n  ret\n"
        ".size tiny_fn,.-tiny_fn\n"
        "  nop\n  nop\n  nop\n  nop\n"
        ".globl call_fn\n.type call_fn,@function\n call_fn:\n"
        "  call tiny_fn\n  lea 1(%rdi),%rax\n  ret\n"
        ".size call_fn,.-call_fn\n"
        ".data\n rip_val: .quad 1000\n .text\n");
long rip_fn(long), br_fn(long), call_fn(long);
void tiny_fn(void);

static long (*volatile p_rip)(long) = rip_fn;
static long (*volatile p_br)(long) = br_fn;
static long (*volatile p_call)(long) = call_fn;
static void (*volatile p_tiny)(void) = tiny_fn;

int main(int argc, char **argv) {
  long n = argc > 1 ? atol(argv[1]) : 1000, bad = 0;
  for (long i = 0; i < n; i++) {
    bad += p_rip(i) != 1000 + i;
    bad += p_br(i & 1) != ((i & 1) ? 1 : 2);
    bad += p_call(i) != i + 1;
    p_tiny();
  }
  printf("bad %ld\n", bad);
  return bad != 0;
}
