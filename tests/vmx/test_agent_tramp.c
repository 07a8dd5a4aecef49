/*
 * test_agent_tramp.c - the patching mechanism on its own, with a stub hook:
 * exact hit counts (1 and 4 threads), arguments seen in the frame, the
 * relocation of RIP-relative and branch instructions, the trap fallback for
 * tiny functions and for branch targets inside the patch, a thread asleep
 * inside the bytes a jump replaces (moved out before they change), the
 * return trampoline, guarded reads, and code bytes identical after unpatch.
 */
#include "vmx/tramp.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Functions with known first instructions. */
__asm__(".text\n"
        ".globl t_rip\n t_rip:\n"           /* mov rax,[rip+t_val]; add rax,rdi; ret */
        "  mov t_val(%rip),%rax\n  add %rdi,%rax\n  ret\n"
        ".globl t_rip_end\n t_rip_end:\n"
        ".globl t_br\n t_br:\n"             /* test; jz rel8 in the first 5 bytes */
        "  test %rdi,%rdi\n  jz 1f\n  mov $1,%eax\n  ret\n1: mov $2,%eax\n  ret\n"
        ".globl t_br_end\n t_br_end:\n"
        ".globl t_tiny\n t_tiny:\n"         /* a 1-byte function */
        "  ret\n"
        ".globl t_tiny_end\n t_tiny_end:\n"
        "  nop\n  nop\n  nop\n  nop\n  nop\n  ret\n"
        ".globl t_loop\n t_loop:\n"         /* a branch back into the first 5 bytes */
        "  xor %eax,%eax\n2: add $1,%eax\n  cmp %edi,%eax\n  jl 2b\n  ret\n"
        ".globl t_loop_end\n t_loop_end:\n"
        ".globl t_call\n t_call:\n"         /* a call rel32 first */
        "  call t_tiny\n  lea 1(%rdi),%rax\n  ret\n"
        ".globl t_call_end\n t_call_end:\n"
        ".globl t_avx\n t_avx:\n"          /* ymm0 live across an inner point */
        "  vmovdqu (%rdi),%ymm0\n"
        ".globl t_avx_mid\n t_avx_mid:\n"
        "  nopl 0(%rax,%rax,1)\n  nop\n  nop\n"
        "  vmovdqu %ymm0,(%rsi)\n  vzeroupper\n  ret\n"
        ".globl t_avx_end\n t_avx_end:\n"
        ".globl t_park\n t_park:\n"       /* rdi = flag: pause() inside the */
        "  mov $34,%eax\n"                  /* 5 bytes at t_park_site, then */
        ".globl t_park_site\n t_park_site:\n" /* *flag = 1 */
        "  nop\n  syscall\n  nop\n  nop\n  movl $1,(%rdi)\n  ret\n"
        ".globl t_park_end\n t_park_end:\n"
        ".data\n t_val: .quad 1000\n .text\n");
void t_park(volatile int *flag);
extern char t_park_site[], t_park_end[];
void t_avx(const void *in, void *out);
extern char t_avx_mid[], t_avx_end[];
long t_rip(long), t_br(long), t_loop(long), t_call(long);
void t_tiny(void);
extern char t_rip_end[], t_br_end[], t_tiny_end[], t_loop_end[], t_call_end[];

__attribute__((noinline)) long add(long a, long b) {
  __asm__ volatile("");
  return a + b;
}

/* Called through a volatile pointer so the compiler keeps every call. */
static long (*volatile p_add)(long, long) = add;
static long (*volatile p_rip)(long) = t_rip;
static long (*volatile p_br)(long) = t_br;
static long (*volatile p_loop)(long) = t_loop;
static long (*volatile p_call)(long) = t_call;
static void (*volatile p_tiny)(void) = t_tiny;

typedef struct counter {
  long hits;
  long last_rdi, last_rsi;
  uint64_t last_rip;
} counter;

static void hook(void *arg, tramp_frame *f) {
  counter *c = arg;
  __atomic_add_fetch(&c->hits, 1, __ATOMIC_RELAXED);
  c->last_rdi = (long)f->rdi;
  c->last_rsi = (long)f->rsi;
  c->last_rip = f->rip;
}

static int nfail;
#define CHECK(c, ...)                                                          \
  do {                                                                         \
    if (!(c)) {                                                                \
      printf("FAIL %s:%d: ", __FILE__, __LINE__);                              \
      printf(__VA_ARGS__);                                                     \
      printf("\n");                                                            \
      nfail++;                                                                 \
    }                                                                          \
  } while (0)

/* A hook whose C clobbers the vector registers (as libc's AVX string
 * functions do, ending with vzeroupper). */
static void avx_hook(void *arg, tramp_frame *f) {
  (void)f;
  __asm__ volatile("vpxor %%ymm0,%%ymm0,%%ymm0\n vzeroupper" ::: "xmm0", "memory");
  (*(long *)arg)++;
}

static tramp_site *patch(tramp_set *s, void *fn, void *end, counter *c, int want_how) {
  char err[256];
  tramp_site *t = tramp_patch(s, (uint64_t)fn, (uint64_t)fn, (uint64_t)end, 0, hook, c,
                              err, sizeof err);
  CHECK(t, "patch: %s", err);
  if (t)
    CHECK(tramp_site_how(t) == want_how, "how %d, want %d", tramp_site_how(t), want_how);
  return t;
}

static void *thread_main(void *arg) {
  long n = (long)arg, sum = 0;
  for (long i = 0; i < n; i++)
    sum += p_add(i, 1);
  return (void *)sum;
}

static void *park_main(void *flag) {
  t_park(flag);
  return NULL;
}

static void wake(int sig) { (void)sig; }

/* EXIT: the hook swaps the return address for the return trampoline. */
typedef struct exitctl {
  uint64_t stub, saved;
  long entries, exits, retval;
} exitctl;

static void exit_hook(void *arg, tramp_frame *f) {
  exitctl *x = arg;
  x->entries++;
  x->saved = *(uint64_t *)f->rsp;
  *(uint64_t *)f->rsp = x->stub;
}

static uint64_t ret_hook(void *arg, tramp_frame *f) {
  exitctl *x = arg;
  x->exits++;
  x->retval = (long)f->rax;
  return x->saved;
}

int main(void) {
  char err[256];
  tramp_set *s = tramp_open(64, err, sizeof err);
  if (!s) {
    printf("tramp_open: %s\n", err);
    return 1;
  }
  enum { N = 1000000 };

  /* A plain function: exact counts, arguments, bytes restored. */
  uint8_t before[16], after[16];
  memcpy(before, (void *)add, 16);
  counter c = {0};
  tramp_site *t = patch(s, (void *)add, NULL, &c, TRAMP_JUMP);
  long sum = 0;
  for (long i = 0; i < N; i++)
    sum += p_add(i, 7);
  CHECK(c.hits == N, "add hits %ld", c.hits);
  CHECK(sum == (long)N * (N - 1) / 2 + 7L * N, "add results wrong");
  CHECK(c.last_rdi == N - 1 && c.last_rsi == 7, "args %ld %ld", c.last_rdi, c.last_rsi);
  CHECK(c.last_rip == (uint64_t)add, "rip");

  /* Four threads. */
  c.hits = 0;
  pthread_t th[4];
  for (int i = 0; i < 4; i++)
    pthread_create(&th[i], NULL, thread_main, (void *)(long)N);
  for (int i = 0; i < 4; i++)
    pthread_join(th[i], NULL);
  CHECK(c.hits == 4L * N, "threaded hits %ld", c.hits);
  if (t)
    tramp_unpatch(s, t);
  memcpy(after, (void *)add, 16);
  CHECK(!memcmp(before, after, 16), "add bytes differ after unpatch");
  c.hits = 0;
  p_add(1, 2);
  CHECK(c.hits == 0, "hook ran after unpatch");

  /* RIP-relative first instruction. */
  counter cr = {0};
  memcpy(before, (void *)t_rip, 16);
  t = patch(s, (void *)t_rip, t_rip_end, &cr, TRAMP_JUMP);
  CHECK(p_rip(5) == 1005, "t_rip result %ld", p_rip(5));
  CHECK(cr.hits == 1, "t_rip hits %ld", cr.hits);
  if (t)
    tramp_unpatch(s, t);
  CHECK(!memcmp(before, (void *)t_rip, 16), "t_rip bytes");

  /* A conditional branch in the displaced bytes. */
  counter cb = {0};
  t = patch(s, (void *)t_br, t_br_end, &cb, TRAMP_JUMP);
  CHECK(p_br(0) == 2 && p_br(3) == 1, "t_br results");
  CHECK(cb.hits == 2, "t_br hits %ld", cb.hits);
  if (t)
    tramp_unpatch(s, t);

  /* A call in the displaced bytes. */
  counter cc = {0};
  t = patch(s, (void *)t_call, t_call_end, &cc, TRAMP_JUMP);
  CHECK(p_call(41) == 42, "t_call result");
  CHECK(cc.hits == 1, "t_call hits %ld", cc.hits);
  if (t)
    tramp_unpatch(s, t);

  /* Too short for a jump: a trap. */
  counter ct = {0};
  memcpy(before, (void *)t_tiny, 8);
  t = patch(s, (void *)t_tiny, t_tiny_end, &ct, TRAMP_TRAP);
  for (int i = 0; i < 1000; i++)
    p_tiny();
  CHECK(ct.hits == 1000, "t_tiny hits %ld", ct.hits);
  if (t)
    tramp_unpatch(s, t);
  CHECK(!memcmp(before, (void *)t_tiny, 8), "t_tiny bytes");

  /* A loop branching back inside the first 5 bytes: a trap too. */
  counter cl = {0};
  t = patch(s, (void *)t_loop, t_loop_end, &cl, TRAMP_TRAP);
  CHECK(p_loop(10) == 10, "t_loop result %ld", p_loop(10));
  CHECK(cl.hits == 1, "t_loop hits %ld", cl.hits);
  if (t)
    tramp_unpatch(s, t);

  /* An inner point (not an entry): the whole vector state survives. */
  if (__builtin_cpu_supports("avx")) {
    long hits = 0;
    uint8_t in[32], out[32];
    for (int i = 0; i < 32; i++)
      in[i] = (uint8_t)(i * 7 + 1);
    t = tramp_patch(s, (uint64_t)t_avx_mid, (uint64_t)t_avx, (uint64_t)t_avx_end, 0,
                    avx_hook, &hits, err, sizeof err);
    CHECK(t && tramp_site_how(t) == TRAMP_JUMP, "t_avx patch: %s", err);
    memset(out, 0, sizeof out);
    t_avx(in, out);
    CHECK(hits == 1 && !memcmp(in, out, 32), "ymm0 not preserved across the probe");
    if (t)
      tramp_unpatch(s, t);
  }

  /* A thread asleep in a system call whose pc (just past the syscall) is
   * inside the bytes the jump replaces: the commit moves it to the same
   * place in the tail, so it finishes through the original instructions.
   * Left there, the wake-up below would resume it in the middle of the
   * jump and crash this test. */
  volatile int parked = 0;
  pthread_t pt;
  signal(SIGUSR1, wake);
  pthread_create(&pt, NULL, park_main, (void *)&parked);
  usleep(200000);
  CHECK(!parked, "the thread did not park");
  memcpy(before, t_park_site, 8);
  counter cpk = {0};
  t = tramp_patch(s, (uint64_t)t_park_site, (uint64_t)t_park, (uint64_t)t_park_end, 0, hook,
                  &cpk, err, sizeof err);
  CHECK(t && tramp_site_how(t) == TRAMP_JUMP, "t_park_site: %s", t ? "a trap" : err);
  pthread_kill(pt, SIGUSR1);
  pthread_join(pt, NULL);
  CHECK(parked == 1, "the parked thread did not finish");
  CHECK(cpk.hits == 0, "t_park_site hits %ld", cpk.hits);
  if (t)
    tramp_unpatch(s, t);
  CHECK(!memcmp(before, t_park_site, 8), "t_park_site bytes");

  /* The return trampoline. */
  exitctl x = {0};
  x.stub = tramp_ret_stub(s, ret_hook, &x);
  CHECK(x.stub, "no return stub");
  char err2[256];
  t = tramp_patch(s, (uint64_t)add, 0, 0, 0, exit_hook, &x, err2, sizeof err2);
  CHECK(t, "patch for exit: %s", err2);
  CHECK(p_add(40, 2) == 42, "add through exit");
  CHECK(x.entries == 1 && x.exits == 1 && x.retval == 42, "exit %ld %ld %ld", x.entries,
        x.exits, x.retval);
  if (t)
    tramp_unpatch(s, t);

  /* Guarded reads. */
  CHECK(tramp_guard_install() == 0, "guard install");
  uint64_t v = 0, src = 0x1122334455667788ull;
  CHECK(tramp_read(&v, (uint64_t)&src, 8, 1) == 0 && v == src, "guarded read");
  CHECK(tramp_read(&v, 16, 8, 1) == -1, "guarded bad read");
  CHECK(tramp_read(&v, 16, 8, 0) == -1, "readv bad read");
  CHECK(tramp_read(&v, (uint64_t)&src, 8, 0) == 0, "readv read");
  char str[] = "hello";
  char out[8] = {0};
  CHECK(tramp_read(out, (uint64_t)str, 6, 1) == 0 && !strcmp(out, "hello"), "bytes");

  if (nfail)
    return 1;
  printf("ok\n");
  return 0;
}
