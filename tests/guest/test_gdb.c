/* Unit tests of the gdb remote protocol client against a fake stub on a
 * socketpair: framing, acks, run-length and escapes, the handshake and the
 * register map (including QEMU 7.2's description that lists three
 * registers its stub does not serve), memory, breakpoints, stop replies. */
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "guest/gdb.h"

/* ---- the fake stub ---- */

typedef struct stub {
  int fd;
  int noack;
  int bad_checksum_once; /* corrupt the first reply's checksum */
  char last_z[64];       /* last Z/z packet seen */
  char mem[64];          /* memory at 0x1000 */
} stub;

static void put_raw(stub *s, const char *payload, int corrupt) {
  char buf[16384];
  unsigned sum = 0;
  for (const char *p = payload; *p; p++) sum += (unsigned char)*p;
  int n = snprintf(buf, sizeof buf, "$%s#%02x", payload, (sum + (unsigned)corrupt) & 0xff);
  assert_true(write(s->fd, buf, (size_t)n) == n);
}

static void put(stub *s, const char *payload) {
  int corrupt = s->bad_checksum_once && !s->noack;
  s->bad_checksum_once = 0;
  put_raw(s, payload, corrupt);
  if (s->noack) return;
  char c;
  while (read(s->fd, &c, 1) == 1) {
    if (c == '+') return;
    if (c == '-') put_raw(s, payload, 0);
  }
}

/* Next packet's payload; 0x03 comes back as "\003". */
static int get(stub *s, char *buf, size_t cap) {
  char c;
  size_t n = 0;
  do {
    if (read(s->fd, &c, 1) != 1) return -1;
    if (c == 3) {
      strcpy(buf, "\003");
      return 1;
    }
  } while (c != '$');
  while (read(s->fd, &c, 1) == 1 && c != '#')
    if (n + 1 < cap) buf[n++] = c;
  buf[n] = 0;
  char cs[2];
  if (read(s->fd, cs, 2) != 2) return -1;
  if (!s->noack) assert_true(write(s->fd, "+", 1) == 1);
  return (int)n;
}

static const char target_xml[] =
    "<?xml version=\"1.0\"?><target><architecture>i386:x86-64</architecture>"
    "<xi:include href=\"core.xml\"/></target>";

/* 16 GPRs, rip, eflags, 6 selectors, 3 phantom bases, fs_base... efer. */
static void core_xml(char *out, size_t cap) {
  static const char *const r64[] = {"rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "rsp",
                                    "r8",  "r9",  "r10", "r11", "r12", "r13", "r14", "r15", "rip"};
  size_t n = (size_t)snprintf(out, cap, "<feature name=\"org.gnu.gdb.i386.core\">");
  for (int i = 0; i < 17; i++)
    n += (size_t)snprintf(out + n, cap - n, "<reg name=\"%s\" bitsize=\"64\"%s/>", r64[i],
                          i == 0 ? " regnum=\"0\"" : "");
  n += (size_t)snprintf(out + n, cap - n, "<reg name=\"eflags\" bitsize=\"32\"/>");
  static const char *const seg[] = {"cs", "ss", "ds", "es", "fs", "gs"};
  for (int i = 0; i < 6; i++)
    n += (size_t)snprintf(out + n, cap - n, "<reg name=\"%s\" bitsize=\"32\"/>", seg[i]);
  static const char *const rest[] = {"ss_base", "ds_base", "es_base", "fs_base", "gs_base",
                                     "k_gs_base", "cr0", "cr2", "cr3", "cr4", "cr8", "efer"};
  for (int i = 0; i < 12; i++)
    n += (size_t)snprintf(out + n, cap - n, "<reg name=\"%s\" bitsize=\"64\"/>", rest[i]);
  snprintf(out + n, cap - n, "</feature>");
}

/* The 'g' reply: what QEMU 7.2 sends (no ss/ds/es_base). rax=1.., rip=
 * 0xffffffff81000000, cr0=0x80050033, efer=0xd01. */
static void g_reply(char *out) {
  size_t n = 0;
  uint64_t v[16];
  for (int i = 0; i < 16; i++) v[i] = (uint64_t)i + 1;
  for (int i = 0; i < 16; i++)
    for (int b = 0; b < 8; b++) n += (size_t)sprintf(out + n, "%02x", (unsigned)(v[i] >> (8 * b)) & 0xff);
  n += (size_t)sprintf(out + n, "00000081ffffffff"); /* rip */
  n += (size_t)sprintf(out + n, "46020000");         /* eflags */
  for (int i = 0; i < 6; i++) n += (size_t)sprintf(out + n, "10000000");
  n += (size_t)sprintf(out + n, "%s", "0000000000000000" "00004000808888ff" "0000000000000000");
  n += (size_t)sprintf(out + n, "3300058000000000"); /* cr0 */
  n += (size_t)sprintf(out + n, "0010000000000000"); /* cr2 = 0x1000 */
  for (int i = 0; i < 3; i++) n += (size_t)sprintf(out + n, "0000000000000000");
  n += (size_t)sprintf(out + n, "010d000000000000"); /* efer */
}

static void *stub_main(void *arg) {
  stub *s = arg;
  char buf[16384], reply[16384];
  while (get(s, buf, sizeof buf) >= 0) {
    if (!strcmp(buf, "\003")) {
      put(s, "T02thread:02;");
    } else if (!strncmp(buf, "qSupported", 10)) {
      put(s, "PacketSize=1000;qXfer:features:read+;vContSupported+");
    } else if (!strcmp(buf, "QStartNoAckMode")) {
      put(s, "OK");
      s->noack = 1;
    } else if (!strcmp(buf, "?")) {
      put(s, "T05thread:01;");
    } else if (!strncmp(buf, "qXfer:features:read:", 20)) {
      char annex[64], body[8192];
      unsigned off, len;
      assert_int_equal(sscanf(buf + 20, "%63[^:]:%x,%x", annex, &off, &len), 3);
      if (!strcmp(annex, "target.xml")) snprintf(body, sizeof body, "%s", target_xml);
      else core_xml(body, sizeof body);
      /* Serve in 100-byte chunks to exercise the m/l loop. */
      size_t bl = strlen(body);
      if (off >= bl) put(s, "l");
      else {
        snprintf(reply, sizeof reply, "%c%.100s", off + 100 >= bl ? 'l' : 'm', body + off);
        put(s, reply);
      }
    } else if (!strcmp(buf, "g")) {
      g_reply(reply);
      put(s, reply);
    } else if (!strncmp(buf, "p", 1)) {
      put(s, "efbeadde00000000");
    } else if (!strcmp(buf, "qqemu.Supported")) {
      put(s, "sstepbits;sstep;PhyMemMode");
    } else if (!strcmp(buf, "qfThreadInfo")) {
      put(s, "m1,2");
    } else if (!strcmp(buf, "qsThreadInfo")) {
      put(s, "l");
    } else if (buf[0] == 'm') {
      unsigned long long a;
      unsigned len;
      sscanf(buf + 1, "%llx,%x", &a, &len);
      if (a < 0x1000 || a + len > 0x1000 + sizeof s->mem) {
        put(s, "E14");
      } else if (a == 0x1010 && len == 16) {
        put(s, "0*<"); /* run-length: '0' then 31 more ('<' = 29 + 31) */
      } else {
        size_t n = 0;
        for (unsigned i = 0; i < len; i++)
          n += (size_t)sprintf(reply + n, "%02x", (unsigned char)s->mem[a - 0x1000 + i]);
        put(s, reply);
      }
    } else if (buf[0] == 'Z' || buf[0] == 'z') {
      snprintf(s->last_z, sizeof s->last_z, "%s", buf);
      put(s, buf[1] == '4' ? "" : "OK");
    } else if (!strcmp(buf, "vCont;c")) {
      put(s, "T05watch:ffffffff82a079c0;thread:02;");
    } else if (!strncmp(buf, "vCont;s:", 8)) {
      put(s, "T05thread:02;");
    } else if (!strncmp(buf, "Hg", 2) || buf[0] == 'P') {
      put(s, "OK");
    } else if (!strcmp(buf, "D")) {
      put(s, "OK");
      break;
    } else {
      put(s, "");
    }
  }
  return NULL;
}

typedef struct fixture {
  stub st;
  pthread_t th;
  gdb_conn *g;
} fixture;

static int setup(void **state) {
  static fixture f;
  memset(&f, 0, sizeof f);
  int sv[2];
  assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  f.st.fd = sv[1];
  f.st.bad_checksum_once = 1; /* the first reply arrives corrupt: '-' and resend */
  memcpy(f.st.mem, "hello, guest\0\x01\x02\x03", 16);
  pthread_create(&f.th, NULL, stub_main, &f.st);
  f.g = gdb_from_fd(sv[0]);
  assert_non_null(f.g);
  *state = &f;
  return 0;
}

static int teardown(void **state) {
  fixture *f = *state;
  gdb_detach(f->g);
  gdb_close(f->g);
  pthread_join(f->th, NULL);
  close(f->st.fd);
  return 0;
}

static void test_handshake_and_regs(void **state) {
  fixture *f = *state;
  gdb_conn *g = f->g;
  assert_int_equal(gdb_handshake(g), 0);
  assert_true(g->noack);
  assert_int_equal(g->pktsize, 0x1000);
  assert_int_equal(g->nthreads, 2);
  assert_int_equal(g->phys_mode, 1);
  /* The phantom ss_base/ds_base/es_base are dropped: fs_base is 24. */
  assert_int_equal(gdb_reg_find(g, "rip"), 16);
  assert_int_equal(gdb_reg_find(g, "fs_base"), 24);
  assert_int_equal(gdb_reg_find(g, "ss_base"), -1);
  assert_int_equal(gdb_reg_find(g, "efer"), 32);
  uint64_t regs[GDB_MAX_REGS];
  assert_int_equal(gdb_read_regs(g, regs), 0);
  assert_true(regs[0] == 1 && regs[15] == 16);
  assert_true(regs[16] == 0xffffffff81000000ull);
  assert_true(regs[17] == 0x246);
  assert_true(regs[25] == 0xff88888000400000ull); /* gs_base */
  assert_true(regs[gdb_reg_find(g, "cr0")] == 0x80050033ull);
  assert_true(regs[gdb_reg_find(g, "cr2")] == 0x1000);
  assert_true(regs[gdb_reg_find(g, "efer")] == 0xd01);
  uint64_t v;
  assert_int_equal(gdb_read_reg(g, 3, &v), 0);
  assert_true(v == 0xdeadbeef);
  assert_int_equal(gdb_write_reg(g, 16, 0xffffffff81000005ull), 0);
}

static void test_memory(void **state) {
  fixture *f = *state;
  gdb_conn *g = f->g;
  assert_int_equal(gdb_handshake(g), 0);
  char buf[32];
  assert_int_equal(gdb_read_mem(g, 0x1000, buf, 12), 0);
  assert_memory_equal(buf, "hello, guest", 12);
  /* A run-length encoded reply: 32 '0' digits, 16 zero bytes. */
  uint8_t rle[16], zero[16] = {0};
  memset(rle, 0xff, sizeof rle);
  assert_int_equal(gdb_read_mem(g, 0x1010, rle, 16), 0);
  assert_memory_equal(rle, zero, 16);
  assert_int_equal(gdb_read_mem(g, 0x10, buf, 4), -1);    /* E14 */
}

static void test_breakpoints_and_stops(void **state) {
  fixture *f = *state;
  gdb_conn *g = f->g;
  assert_int_equal(gdb_handshake(g), 0);
  assert_int_equal(gdb_breakpoint(g, 1, GDB_BP_SW, 0xffffffff8134a350ull, 1), 0);
  assert_string_equal(f->st.last_z, "Z0,ffffffff8134a350,1");
  assert_int_equal(gdb_breakpoint(g, 0, GDB_WP_WRITE, 0xffffffff82a079c0ull, 8), 0);
  assert_string_equal(f->st.last_z, "z2,ffffffff82a079c0,8");
  assert_int_equal(gdb_breakpoint(g, 1, GDB_WP_ACCESS, 0x1000, 4), -1); /* unsupported */
  gdb_stop st;
  assert_int_equal(gdb_cont(g), 0);
  assert_int_equal(gdb_wait_stop(g, &st, 1000), 0);
  assert_int_equal(st.kind, GDB_STOP_WATCH);
  assert_int_equal(st.watch, 'w');
  assert_true(st.addr == 0xffffffff82a079c0ull);
  assert_int_equal(st.thread, 2);
  assert_int_equal(gdb_interrupt(g), 0);
  assert_int_equal(gdb_wait_stop(g, &st, 1000), 0);
  assert_int_equal(st.signal, 2);
  /* The interrupt with the registers asked for in the same write. */
  uint64_t regs[GDB_MAX_REGS];
  assert_int_equal(gdb_interrupt_regs(g), 0);
  assert_int_equal(gdb_wait_stop(g, &st, 1000), 0);
  assert_int_equal(st.signal, 2);
  assert_int_equal(gdb_recv_regs(g, regs), 0);
  assert_true(regs[gdb_reg_find(g, "rip")] == 0xffffffff81000000ull);
  assert_true(regs[gdb_reg_find(g, "efer")] == 0xd01);
  assert_int_equal(gdb_step(g, 2), 0);
  assert_int_equal(gdb_wait_stop(g, &st, 1000), 0);
  assert_int_equal(st.signal, 5);
  assert_int_equal(gdb_set_thread(g, 2), 0);
  /* Nothing more comes: a timeout. */
  assert_int_equal(gdb_wait_stop(g, &st, 50), -2);
}

static void test_parse_stop(void **state) {
  (void)state;
  gdb_stop st;
  assert_int_equal(gdb_parse_stop("T05thread:p1.03;", &st), 0);
  assert_int_equal(st.thread, 3);
  assert_int_equal(gdb_parse_stop("T05rwatch:1000;thread:01;", &st), 0);
  assert_int_equal(st.watch, 'r');
  assert_int_equal(gdb_parse_stop("T05awatch:2000;thread:01;", &st), 0);
  assert_int_equal(st.watch, 'a');
  assert_int_equal(gdb_parse_stop("W00", &st), 0);
  assert_int_equal(st.kind, GDB_STOP_EXITED);
  assert_int_equal(gdb_parse_stop("OK", &st), -1);
  assert_int_equal(gdb_parse_stop("S05", &st), 0);
  assert_int_equal(st.signal, 5);
}

/* Raw bytes the client wrote, or "" if none came within 100 ms. */
static const char *raw(int fd, char *buf, size_t cap) {
  struct pollfd pf = {.fd = fd, .events = POLLIN};
  ssize_t n = poll(&pf, 1, 100) == 1 ? read(fd, buf, cap - 1) : 0;
  buf[n > 0 ? n : 0] = 0;
  return buf;
}

/* Ack mode: the '+' owed for a reply rides in front of the next packet,
 * the client does not wait for the stub's '+', resends on '-', and sends
 * an owed '+' on its own before it blocks. */
static void test_ack_riding(void **state) {
  (void)state;
  int sv[2];
  char buf[256], reply[64];
  assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  gdb_conn *g = gdb_from_fd(sv[0]);
  assert_int_equal(gdb_send(g, "g", 1), 0); /* returns without an ack */
  assert_string_equal(raw(sv[1], buf, sizeof buf), "$g#67");
  assert_int_equal(write(sv[1], "+$OK#9a", 7), 7);
  assert_int_equal(gdb_recv(g, reply, sizeof reply, 1000), 2);
  assert_string_equal(raw(sv[1], buf, sizeof buf), ""); /* the ack waits */
  assert_int_equal(gdb_send(g, "m0,1", 4), 0);
  assert_string_equal(raw(sv[1], buf, sizeof buf), "+$m0,1#fa");
  assert_int_equal(write(sv[1], "-", 1), 1); /* refused: sent again, no '+' */
  assert_int_equal(gdb_recv(g, reply, sizeof reply, 0), -2);
  assert_string_equal(raw(sv[1], buf, sizeof buf), "$m0,1#fa");
  assert_int_equal(write(sv[1], "+$00#60", 7), 7);
  assert_int_equal(gdb_recv(g, reply, sizeof reply, 1000), 2);
  assert_string_equal(reply, "00");
  assert_int_equal(gdb_recv(g, reply, sizeof reply, 0), -2); /* blocks: ack first */
  assert_string_equal(raw(sv[1], buf, sizeof buf), "+");
  gdb_close(g);
  close(sv[1]);
}

static void test_open_errors(void **state) {
  (void)state;
  char err[256];
  assert_null(gdb_open("unix:/nonexistent/sock", err, sizeof err));
  assert_non_null(strstr(err, "cannot connect"));
  assert_null(gdb_open("nonsense", err, sizeof err));
  assert_string_equal(err, "nonsense: not unix:PATH or HOST:PORT");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_handshake_and_regs, setup, teardown),
      cmocka_unit_test_setup_teardown(test_memory, setup, teardown),
      cmocka_unit_test_setup_teardown(test_breakpoints_and_stops, setup, teardown),
      cmocka_unit_test(test_parse_stop),
      cmocka_unit_test(test_ack_riding),
      cmocka_unit_test(test_open_errors),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
