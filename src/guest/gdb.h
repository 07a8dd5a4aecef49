/*
 * gdb.h - a client of the GDB remote serial protocol, as QEMU's gdb stub
 * speaks it.  This header is the whole interface of src/guest/gdb.c.
 *
 *   gdb_open --> gdb_handshake --> (regs, memory, breakpoints) --> gdb_cont
 *        <-- gdb_wait_stop (a breakpoint, a watchpoint, an interrupt) <--
 *
 * One connection is one debugger: QEMU stops every vCPU at a stop (all-stop
 * mode) and the registers read are those of the vCPU that stopped, or of the
 * one gdb_set_thread selected.  Threads are vCPUs: thread id = index + 1.
 */
#ifndef GDB_H
#define GDB_H

#include <stddef.h>
#include <stdint.h>

#define GDB_PKT_MAX 16384 /* largest payload we accept */
#define GDB_MAX_REGS 128
#define GDB_MAX_THREADS 64

typedef struct gdb_reg {
  char name[16];
  int bits;   /* bitsize from the target description */
  int offset; /* byte offset in the 'g' packet, -1 if past its end */
} gdb_reg;

typedef struct gdb_conn {
  int fd;
  int noack;      /* QStartNoAckMode accepted */
  int ack_due;    /* a '+' owed for the last packet received (ack mode) */
  char *last;     /* the last packet sent, resent on '-' (ack mode) */
  size_t lastlen;
  int pktsize;    /* the stub's PacketSize */
  int phys_mode;  /* qqemu.PhyMemMode supported (1) / unknown (0) / no (-1) */
  int nregs;
  gdb_reg regs[GDB_MAX_REGS];
  int gbytes;     /* bytes of register data a 'g' reply carries */
  int nthreads;
  int threads[GDB_MAX_THREADS];
  size_t rlen, rpos;
  char rbuf[GDB_PKT_MAX * 2];
  char err[256];  /* last error, one line */
} gdb_conn;

/* Why the target stopped. */
enum { GDB_STOP_SIGNAL, GDB_STOP_WATCH, GDB_STOP_EXITED };
typedef struct gdb_stop {
  int kind;      /* GDB_STOP_* */
  int signal;    /* 5 (SIGTRAP) at a breakpoint, 2 (SIGINT) after 0x03 */
  int thread;    /* thread id (vCPU index + 1), 0 if the reply named none */
  int watch;     /* 'w' write, 'r' read, 'a' access, 0 */
  uint64_t addr; /* watchpoint address */
} gdb_stop;

/* Breakpoint types of Z/z. */
enum { GDB_BP_SW, GDB_BP_HW, GDB_WP_WRITE, GDB_WP_READ, GDB_WP_ACCESS };

/* Connect to "unix:/path" or "[host]:port" ("tcp::1234" and "tcp:h:p" are
 * accepted too).  NULL with err set on failure. */
gdb_conn *gdb_open(const char *addr, char *err, size_t errcap);
/* Wrap an already connected descriptor (tests use a socketpair). */
gdb_conn *gdb_from_fd(int fd);
void gdb_close(gdb_conn *g);

/* qSupported, QStartNoAckMode, stop the target, the register map from
 * target.xml, the thread list.  Leaves the target stopped.  0 or -1. */
int gdb_handshake(gdb_conn *g);

/* Packet layer.  gdb_send frames and sends one payload; gdb_recv returns
 * the next packet's payload length (NUL-terminated, RLE and escapes
 * undone), or -1 on error, or -2 when timeout_ms (>= 0) passed first. */
int gdb_send(gdb_conn *g, const char *payload, size_t n);
int gdb_recv(gdb_conn *g, char *buf, size_t cap, int timeout_ms);
/* Send a command and return its reply's length (reply in buf). */
int gdb_cmd(gdb_conn *g, const char *cmd, char *buf, size_t cap);
/* A reply that is "OK" (1), "Enn" (0) or empty: unsupported (0). */
int gdb_ok(const char *reply);

/* Registers. */
int gdb_reg_find(const gdb_conn *g, const char *name); /* regnum or -1 */
/* Read every register of the selected vCPU ('g') into regs (nregs values,
 * registers wider than 64 bits truncated).  0 or -1. */
int gdb_read_regs(gdb_conn *g, uint64_t *regs);
int gdb_read_reg(gdb_conn *g, int regnum, uint64_t *val); /* 'p' */
int gdb_write_reg(gdb_conn *g, int regnum, uint64_t val); /* 'P' */
int gdb_set_thread(gdb_conn *g, int thread);              /* Hg */
int gdb_threads(gdb_conn *g);                            /* refresh list */

/* Memory of the current vCPU's address space ('m'/'M').  0 or -1. */
int gdb_read_mem(gdb_conn *g, uint64_t addr, void *buf, size_t n);
int gdb_write_mem(gdb_conn *g, uint64_t addr, const void *buf, size_t n);
/* Physical addressing for m/M (QEMU's qqemu.PhyMemMode).  0 or -1. */
int gdb_phys(gdb_conn *g, int on);

/* Z/z packets: 0 ok, -1 refused. */
int gdb_breakpoint(gdb_conn *g, int insert, int type, uint64_t addr, int len);

/* Execution. */
int gdb_cont(gdb_conn *g);              /* vCont;c: returns at once */
/* 'c ADDR': the vCPU that stopped goes on at addr, the others where they
 * are; one packet where 'P' and vCont;c would be two round trips. */
int gdb_cont_at(gdb_conn *g, uint64_t addr);
int gdb_step(gdb_conn *g, int thread);  /* vCont;s:T: returns at once */
int gdb_interrupt(gdb_conn *g);         /* 0x03 */
/* 0x03 and a 'g' in one write: QEMU stops the VM on the 0x03 and answers
 * the 'g' once stopped, so the stop reply is followed by the registers,
 * which gdb_recv_regs then takes (one round trip fewer per sample). */
int gdb_interrupt_regs(gdb_conn *g);
int gdb_recv_regs(gdb_conn *g, uint64_t *regs);
/* Wait for a stop reply: 0 stopped (st filled), -2 timeout, -1 error. */
int gdb_wait_stop(gdb_conn *g, gdb_stop *st, int timeout_ms);
int gdb_parse_stop(const char *reply, gdb_stop *st);
/* Ask the target where it is (the '?' packet) while stopped. */
int gdb_query_stop(gdb_conn *g, gdb_stop *st);
/* Detach: the stub removes our breakpoints and the VM runs on. */
int gdb_detach(gdb_conn *g);

#endif
