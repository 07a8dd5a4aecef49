/*
 * test_agent_place.c - placement exact at every instruction boundary: a
 * real function (a loop, a PIC jump-table switch, a call, a RIP-relative
 * load, a case reached only through the table and entered by falling
 * through) is patched at each boundary, once as a forced trap and once as
 * the placement chooses (a jump where it is safe), and its results over
 * many inputs are checked after each, then the bytes after unpatch.  An
 * address inside an instruction is refused.
 */
#include "vmx/tramp.h"

#include <Zydis/Zydis.h>
#include <stdio.h>
#include <string.h>

long t_sw_helper(long x);
__attribute__((noinline)) long t_sw_helper(long x) { return x * 3 + 1; }

__asm__(".text\n"
        ".globl t_sw\n t_sw:\n"
        "  push %rbx\n"
        "  mov %rdi,%rbx\n"
        "  xor %eax,%eax\n"
        "  lea t_sw_tab(%rip),%rcx\n"
        "  mov %rbx,%rdx\n"
        "  and $3,%edx\n"
        "  movslq (%rcx,%rdx,4),%rdx\n"
        "  add %rcx,%rdx\n"
        "  jmp *%rdx\n"
        "3: add t_sw_k(%rip),%rax\n"      /* case 0: RIP-relative load */
        "  jmp 9f\n"
        "4: mov %rbx,%rdi\n"              /* case 1: a call, then falls into case 2 */
        "  call t_sw_helper\n"
        "  add $1,%rax\n"                 /* a jump here would cover case 2's start */
        "5: add $7,%rax\n"                /* case 2: reached by the table only */
        "  jmp 9f\n"
        "6: mov %rbx,%rcx\n"              /* case 3: a loop */
        "  shr $2,%rcx\n"
        "  and $15,%rcx\n"
        "7: add %rcx,%rax\n"
        "  sub $1,%rcx\n"
        "  jns 7b\n"
        "9: add %rbx,%rax\n"
        "  pop %rbx\n"
        "  ret\n"
        ".globl t_sw_end\n t_sw_end:\n"
        "  int3\n"
        ".pushsection .rodata\n"
        "  .p2align 2\n"
        "t_sw_tab: .long 3b-t_sw_tab, 4b-t_sw_tab, 5b-t_sw_tab, 6b-t_sw_tab\n"
        ".popsection\n"
        ".pushsection .data\n"
        "  .p2align 3\n"
        "t_sw_k: .quad 100\n"
        ".popsection\n");
long t_sw(long x);
extern char t_sw_end[];
static long (*volatile p_sw)(long) = t_sw;

static int nfail;
#define CHECK(c, ...)                                                                        \
  do {                                                                                       \
    if (!(c)) {                                                                              \
      nfail++;                                                                               \
      printf("FAIL %s:%d: ", __FILE__, __LINE__), printf(__VA_ARGS__), printf("\n");         \
    }                                                                                        \
  } while (0)

static void hook(void *arg, tramp_frame *f) {
  (void)f;
  ++*(long *)arg;
}

#define NIN 64
static long input(int i) { return (long)i * 37 - 900; }

static int results_ok(const long *want) {
  int bad = 0;
  for (int i = 0; i < NIN; i++)
    bad += p_sw(input(i)) != want[i];
  return !bad;
}

/* Sites of different loads over each other (t_sw: push rbx @0, mov @1,
 * xor @4, lea @6; a jump at the entry displaces 6 bytes), and the room
 * the controller gives. */
static void overlap(tramp_set *s, uint64_t lo, uint64_t hi, const long *want,
                    const uint8_t *orig) {
  char err[200];
  long h1 = 0, h2 = 0;
  /* a live entry jump: a point at +4 is inside its bytes, refused */
  tramp_site *a = tramp_patch(s, lo, lo, hi, 0, hook, &h1, err, sizeof err);
  CHECK(a && tramp_site_how(a) == TRAMP_JUMP, "entry not a jump: %s", a ? "" : err);
  tramp_site *b = tramp_patch(s, lo + 4, lo, hi, 0, hook, &h2, err, sizeof err);
  CHECK(!b && strstr(err, "inside the 6 bytes a jump"), "+4 under a live jump: %s",
        b ? "accepted" : err);
  CHECK(results_ok(want) && h1 > 0, "entry jump, +4 refused: wrong results");
  tramp_unpatch(s, a);
  tramp_unpatch(s, b);
  CHECK(!memcmp(orig, (void *)lo, hi - lo), "bytes differ after the refused overlap");
  /* a live jump at +4: the entry's jump would cover it, a trap instead */
  h1 = h2 = 0;
  b = tramp_patch(s, lo + 4, lo, hi, 0, hook, &h2, err, sizeof err);
  CHECK(b && tramp_site_how(b) == TRAMP_JUMP, "+4 not a jump: %s", b ? "" : err);
  a = tramp_patch(s, lo, lo, hi, 0, hook, &h1, err, sizeof err);
  CHECK(a && tramp_site_how(a) == TRAMP_TRAP, "entry over a live +4: %s",
        a ? "a jump" : err);
  CHECK(results_ok(want) && h1 > 0 && h2 > 0, "+4 jump and entry trap: wrong results");
  tramp_unpatch(s, b);
  CHECK(results_ok(want), "entry trap after +4 went: wrong results");
  tramp_unpatch(s, a);
  CHECK(!memcmp(orig, (void *)lo, hi - lo), "bytes differ after the overlap");
  /* room: a target at +4 (another function's branch) makes a trap */
  for (int room = 4; room <= 6; room += 2) {
    h1 = 0;
    a = tramp_patch(s, lo, lo, hi, TRAMP_ROOM(room), hook, &h1, err, sizeof err);
    int want_how = room < 6 ? TRAMP_TRAP : TRAMP_JUMP;
    CHECK(a && tramp_site_how(a) == want_how, "room %d: placed as %d", room,
          a ? tramp_site_how(a) : -1);
    CHECK(results_ok(want) && h1 > 0, "room %d: wrong results", room);
    tramp_unpatch(s, a);
  }
  CHECK(!memcmp(orig, (void *)lo, hi - lo), "bytes differ after the room checks");
}

int main(void) {
  char err[200];
  tramp_set *s = tramp_open(64, err, sizeof err);
  if (!s) {
    printf("FAIL tramp_open: %s\n", err);
    return 1;
  }
  long want[NIN];
  for (int i = 0; i < NIN; i++)
    want[i] = p_sw(input(i));
  uint64_t lo = (uint64_t)(void *)t_sw, hi = (uint64_t)(void *)t_sw_end;
  uint8_t orig[256];
  memcpy(orig, (void *)lo, hi - lo);
  ZydisDecoder dec;
  ZydisDecoderInit(&dec, ZYDIS_MACHINE_MODE_LONG_64, ZYDIS_STACK_WIDTH_64);
  ZydisDecodedInstruction in;
  int bounds = 0, traps = 0, jumps = 0;
  uint64_t fallthrough = 0; /* the `add $1,%rax` before case 2 */
  for (uint64_t a = lo; a < hi; a += in.length) {
    if (!ZYAN_SUCCESS(ZydisDecoderDecodeInstruction(&dec, NULL, (void *)a, hi - a, &in)))
      break;
    if (in.mnemonic == ZYDIS_MNEMONIC_ADD && in.length == 4 && in.raw.imm[0].value.u == 1)
      fallthrough = a;
    bounds++;
    for (int mode = 0; mode < 2; mode++) {
      long hits = 0;
      int flags = mode ? 0 : TRAMP_FORCE_TRAP;
      tramp_site *t = tramp_patch(s, a, lo, hi, flags, hook, &hits, err, sizeof err);
      CHECK(t, "+0x%llx %s: %s", (unsigned long long)(a - lo), mode ? "jump" : "trap", err);
      if (!t)
        continue;
      int how = tramp_site_how(t);
      traps += how == TRAMP_TRAP, jumps += how == TRAMP_JUMP;
      CHECK(mode || how == TRAMP_TRAP, "+0x%llx: forced trap placed as %d",
            (unsigned long long)(a - lo), how);
      if (a == fallthrough)
        CHECK(how == TRAMP_TRAP, "+0x%llx: a jump over a jump table's target",
              (unsigned long long)(a - lo));
      int bad = 0;
      for (int i = 0; i < NIN; i++)
        bad += p_sw(input(i)) != want[i];
      CHECK(!bad, "+0x%llx as %s: %d wrong results", (unsigned long long)(a - lo),
            how == TRAMP_TRAP ? "trap" : "jump", bad);
      CHECK(hits > 0, "+0x%llx: the hook never ran", (unsigned long long)(a - lo));
      tramp_unpatch(s, t);
      CHECK(!memcmp(orig, (void *)lo, hi - lo), "+0x%llx: bytes differ after unpatch",
            (unsigned long long)(a - lo));
    }
  }
  /* inside an instruction (mov %rdi,%rbx at +1): refused, code untouched */
  long hits = 0;
  CHECK(!tramp_patch(s, lo + 2, lo, hi, 0, hook, &hits, err, sizeof err) &&
            strstr(err, "not an instruction boundary"),
        "+0x2 (inside an instruction) accepted");
  CHECK(!memcmp(orig, (void *)lo, hi - lo), "bytes changed by a refused patch");
  overlap(s, lo, hi, want, orig);
  CHECK(fallthrough, "no fall-through instruction found");
  CHECK(bounds > 20, "only %d instructions decoded", bounds);
  printf("%d boundaries: %d trap placements, %d jumps\n", bounds, traps, jumps);
  printf(nfail ? "%d failed\n" : "ok\n", nfail);
  return nfail != 0;
}
