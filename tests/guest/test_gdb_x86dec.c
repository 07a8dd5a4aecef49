/* Unit tests of the guest code decoder (src/guest/x86dec.c) on bytes taken
 * from the Debian 12 cloud kernel (6.1): offset discovery and the ways the
 * engine passes a breakpoint (NOP, push $imm, successors). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "guest/guest_dec.h"

/* __get_task_comm: task_lock; strscpy(buf, tsk->comm, n); task_unlock. */
static const uint8_t get_task_comm[] = {
    0x0f, 0x1f, 0x44, 0x00, 0x00,             /* nopl 0x0(%rax,%rax,1) */
    0x41, 0x55,                               /* push %r13 */
    0x4c, 0x8d, 0xaa, 0xb0, 0x0c, 0x00, 0x00, /* lea 0xcb0(%rdx),%r13 */
    0x41, 0x54,                               /* push %r12 */
    0x49, 0x89, 0xf4,                         /* mov %rsi,%r12 */
    0x55,                                     /* push %rbp */
    0x48, 0x89, 0xfd,                         /* mov %rdi,%rbp */
    0x4c, 0x89, 0xef,                         /* mov %r13,%rdi */
    0x53,                                     /* push %rbx */
    0x48, 0x89, 0xd3,                         /* mov %rdx,%rbx */
    0xe8, 0xcd, 0x31, 0x6c, 0x00,             /* call _raw_spin_lock */
    0x48, 0x8d, 0xb3, 0xa0, 0x0b, 0x00, 0x00, /* lea 0xba0(%rbx),%rsi */
    0x4c, 0x89, 0xe2,                         /* mov %r12,%rdx */
    0x48, 0x89, 0xef,                         /* mov %rbp,%rdi */
    0xe8, 0xeb, 0xeb, 0x24, 0x00,             /* call strscpy */
    0x4c, 0x89, 0xef,                         /* mov %r13,%rdi */
    0xe8, 0x43, 0x32, 0x6c, 0x00,             /* call _raw_spin_unlock */
    0x48, 0x89, 0xe8,                         /* mov %rbp,%rax */
    0x5b, 0x5d, 0x41, 0x5c, 0x41, 0x5d,       /* pops */
    0xc3,                                     /* ret */
    0xcc, 0xcc, 0xcc, 0xcc,
    0x48, 0x8d, 0xb7, 0x90, 0x00, 0x00, 0x00, /* (next function) lea 0x90(%rdi),%rsi */
};

/* __x64_sys_getpid on 6.1: no plain load before the return. */
static const uint8_t getpid_61[] = {
    0x0f, 0x1f, 0x44, 0x00, 0x00,                         /* nopl */
    0x31, 0xd2,                                           /* xor %edx,%edx */
    0xbe, 0x01, 0x00, 0x00, 0x00,                         /* mov $1,%esi */
    0x65, 0x48, 0x8b, 0x3c, 0x25, 0x80, 0xfb, 0x01, 0x00, /* mov %gs:0x1fb80,%rdi */
    0xe8, 0xa6, 0xa8, 0x00, 0x00,                         /* call __task_pid_nr_ns */
    0x48, 0x98,                                           /* cltq */
    0xc3,                                                 /* ret */
};

/* An older sys_getpid: current->tgid, returned through the return thunk. */
static const uint8_t getpid_old[] = {
    0x65, 0x48, 0x8b, 0x04, 0x25, 0x00, 0x00, 0x00, 0x00, /* mov %gs:0x0,%rax */
    0x8b, 0x80, 0x74, 0x09, 0x00, 0x00,                   /* mov 0x974(%rax),%eax */
    0xe9, 0x00, 0x10, 0x00, 0x00,                         /* jmp __x86_return_thunk */
};

static void test_offatstrcpy(void **st) {
  (void)st;
  int64_t off = 0;
  assert_int_equal(x86dec_offatstrcpy(get_task_comm, sizeof get_task_comm, 0xffffffff813553b0ull, &off), 0);
  assert_int_equal(off, 0xba0);
  assert_int_equal(x86dec_offatstrcpy(getpid_61, sizeof getpid_61, 0, &off), -1);
}

static void test_offatret(void **st) {
  (void)st;
  int64_t off = 0;
  assert_int_equal(x86dec_offatret(getpid_old, sizeof getpid_old, 0xffffffff81000000ull, &off), 0);
  assert_int_equal(off, 0x974);
  /* The call's result is what 6.1 returns: nothing to find. */
  assert_int_equal(x86dec_offatret(getpid_61, sizeof getpid_61, 0xffffffff810b0f40ull, &off), -1);
}

static void test_pass(void **st) {
  (void)st;
  assert_int_equal(x86dec_nop_len(get_task_comm, sizeof get_task_comm), 5);
  static const uint8_t nop3[] = {0x0f, 0x1f, 0x00, 0xfc};
  assert_int_equal(x86dec_nop_len(nop3, sizeof nop3), 3);
  assert_int_equal(x86dec_nop_len(getpid_old, sizeof getpid_old), 0);
  int64_t imm = 0;
  static const uint8_t irq_stub[] = {0x6a, 0x20, 0xe9, 0x69, 0x0b, 0x00, 0x00};
  assert_int_equal(x86dec_push_imm(irq_stub, sizeof irq_stub, &imm), 2);
  assert_int_equal(imm, 0x20);
  static const uint8_t push_neg[] = {0x6a, 0xec};
  assert_int_equal(x86dec_push_imm(push_neg, sizeof push_neg, &imm), 2);
  assert_true(imm == -20);
  static const uint8_t push_reg[] = {0x55};
  assert_int_equal(x86dec_push_imm(push_reg, sizeof push_reg, &imm), 0);
  uint64_t next[2];
  /* jmp rel32 at 0x1002: to 0x1002 + 5 + 0xb69. */
  assert_int_equal(x86dec_successors(irq_stub + 2, 5, 0x1002, next), 1);
  assert_true(next[0] == 0x1002 + 5 + 0xb69);
  static const uint8_t jz[] = {0x74, 0x10}; /* je +0x10 */
  assert_int_equal(x86dec_successors(jz, sizeof jz, 0x2000, next), 2);
  assert_true(next[0] == 0x2002 && next[1] == 0x2012);
  static const uint8_t mov[] = {0x48, 0x89, 0xe5};
  assert_int_equal(x86dec_successors(mov, sizeof mov, 0x3000, next), 1);
  assert_true(next[0] == 0x3003);
  static const uint8_t ret[] = {0xc3};
  assert_int_equal(x86dec_successors(ret, sizeof ret, 0x4000, next), -1);
  static const uint8_t repmovs[] = {0xf3, 0x48, 0xa5};
  assert_int_equal(x86dec_successors(repmovs, sizeof repmovs, 0x5000, next), -1);
}

/* GUEST:OFFSET's check: where instructions start in getpid_old
 * (9-byte mov, 6-byte mov, 5-byte jmp). */
static void test_insn_at(void **st) {
  (void)st;
  size_t start = 99;
  assert_int_equal(x86dec_insn_at(getpid_old, sizeof getpid_old, 0, &start), 0);
  assert_int_equal(x86dec_insn_at(getpid_old, sizeof getpid_old, 9, &start), 0);
  assert_int_equal(x86dec_insn_at(getpid_old, sizeof getpid_old, 15, &start), 0);
  assert_int_equal(x86dec_insn_at(getpid_old, sizeof getpid_old, 3, &start), 1);
  assert_int_equal(start, 0);
  assert_int_equal(x86dec_insn_at(getpid_old, sizeof getpid_old, 12, &start), 1);
  assert_int_equal(start, 9);
  static const uint8_t bad[] = {0x90, 0x06, 0x90, 0x90}; /* push %es: not in 64-bit mode */
  assert_int_equal(x86dec_insn_at(bad, sizeof bad, 3, &start), -1);
  assert_int_equal(start, 1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_offatstrcpy),
      cmocka_unit_test(test_offatret),
      cmocka_unit_test(test_pass),
      cmocka_unit_test(test_insn_at),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
