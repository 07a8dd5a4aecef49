/*
 * gdb.c - GDB remote serial protocol client (see gdb.h).
 *
 * Packets are `$payload#xx` with xx the modulo-256 sum of the payload.  Until
 * QStartNoAckMode is accepted every packet is acknowledged with '+'.  Replies
 * may use run-length encoding (`X*n`: repeat X n-29 times) and binary
 * replies escape '#', '$', '}' and '*' as '}' followed by the byte ^ 0x20.
 */
#include "guest/gdb.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static void seterr(gdb_conn *g, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(g->err, sizeof g->err, fmt, ap);
  va_end(ap);
}

static int connect_unix(const char *path) {
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  if (strlen(path) >= sizeof sa.sun_path) {
    errno = ENAMETOOLONG;
    return -1;
  }
  strcpy(sa.sun_path, path);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
    int e = errno;
    close(fd);
    errno = e;
    return -1;
  }
  return fd;
}

static int connect_tcp(const char *host, const char *port) {
  struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res, *ai;
  if (getaddrinfo(*host ? host : "127.0.0.1", port, &hints, &res) != 0) {
    errno = EHOSTUNREACH;
    return -1;
  }
  int fd = -1;
  for (ai = res; ai; ai = ai->ai_next) {
    fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, 0);
    if (fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) break;
    if (fd >= 0) close(fd);
    fd = -1;
  }
  freeaddrinfo(res);
  if (fd >= 0) {
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  return fd;
}

gdb_conn *gdb_from_fd(int fd) {
  gdb_conn *g = calloc(1, sizeof *g);
  if (!g) return NULL;
  g->fd = fd;
  g->pktsize = 4096;
  return g;
}

gdb_conn *gdb_open(const char *addr, char *err, size_t errcap) {
  int fd;
  if (!strncmp(addr, "unix:", 5)) {
    char path[256];
    snprintf(path, sizeof path, "%s", addr + 5);
    path[strcspn(path, ",")] = 0; /* "unix:/p,server,nowait" */
    fd = connect_unix(path);
  } else {
    const char *a = !strncmp(addr, "tcp:", 4) ? addr + 4 : addr;
    const char *colon = strrchr(a, ':');
    if (!colon) {
      snprintf(err, errcap, "%s: not unix:PATH or HOST:PORT", addr);
      return NULL;
    }
    char host[128], port[32];
    snprintf(host, sizeof host, "%.*s", (int)(colon - a), a);
    snprintf(port, sizeof port, "%s", colon + 1);
    port[strcspn(port, ",")] = 0;
    fd = connect_tcp(host, port);
  }
  if (fd < 0) {
    snprintf(err, errcap, "%s: cannot connect: %s", addr, strerror(errno));
    return NULL;
  }
  gdb_conn *g = gdb_from_fd(fd);
  if (!g) {
    close(fd);
    snprintf(err, errcap, "out of memory");
  }
  return g;
}

void gdb_close(gdb_conn *g) {
  if (!g) return;
  if (g->fd >= 0) close(g->fd);
  free(g->last);
  free(g);
}

static int writeall(gdb_conn *g, const char *p, size_t n) {
  while (n) {
    ssize_t w = send(g->fd, p, n, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      seterr(g, "gdb stub: write: %s", strerror(errno));
      return -1;
    }
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

/* Next byte from the stub; -1 error/EOF, -2 timeout.  An ack still owed
 * goes out before we block: a stub may wait for it. */
static int getbyte(gdb_conn *g, int timeout_ms) {
  if (g->rpos == g->rlen) {
    if (g->ack_due) {
      g->ack_due = 0;
      if (writeall(g, "+", 1) < 0) return -1;
    }
    struct pollfd pf = {.fd = g->fd, .events = POLLIN};
    for (;;) {
      int r = poll(&pf, 1, timeout_ms);
      if (r < 0 && errno == EINTR) continue; /* callers wait in short slices */
      if (r < 0) {
        seterr(g, "gdb stub: poll: %s", strerror(errno));
        return -1;
      }
      if (r == 0) return -2;
      break;
    }
    ssize_t n;
    do n = read(g->fd, g->rbuf, sizeof g->rbuf);
    while (n < 0 && errno == EINTR);
    if (n <= 0) {
      seterr(g, "gdb stub: connection closed");
      return -1;
    }
    g->rlen = (size_t)n;
    g->rpos = 0;
  }
  return (unsigned char)g->rbuf[g->rpos++];
}

/* In ack mode the '+' we owe for the stub's last packet rides in front of
 * our next one, and we do not wait for the stub's '+' (a '-' makes
 * gdb_recv resend): on QEMU each separate ack costs a wakeup of its main
 * loop and of ours, and a breakpoint hit is three commands. */
int gdb_send(gdb_conn *g, const char *payload, size_t n) {
  char *pkt = malloc(n + 6); /* [+] $ payload # xx NUL */
  if (!pkt) return -1;
  unsigned sum = 0;
  size_t at = 0;
  if (g->ack_due) pkt[at++] = '+';
  g->ack_due = 0;
  pkt[at++] = '$';
  for (size_t i = 0; i < n; i++) sum += (unsigned char)payload[i];
  memcpy(pkt + at, payload, n);
  snprintf(pkt + at + n, 4, "#%02x", sum & 0xff);
  int r = writeall(g, pkt, at + n + 3);
  if (g->noack) {
    free(pkt);
    return r;
  }
  free(g->last);
  g->last = pkt;
  g->lastlen = at + n + 3;
  if (at) memmove(pkt, pkt + 1, --g->lastlen); /* a resend owes no ack */
  return r;
}

static int hexval(int c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

int gdb_recv(gdb_conn *g, char *buf, size_t cap, int timeout_ms) {
  for (int resends = 0;;) {
    int c;
    /* Skip acks and noise up to the start of a packet ('%' notifications
     * are read and dropped like packets); a '-' asks for our last packet
     * again. */
    do {
      c = getbyte(g, timeout_ms);
      if (c < 0) return c;
      if (c == '-' && !g->noack && g->last) {
        if (++resends > 3) {
          seterr(g, "gdb stub: packet refused (bad checksum?)");
          return -1;
        }
        if (writeall(g, g->last, g->lastlen) < 0) return -1;
      }
    } while (c != '$' && c != '%');
    int notif = c == '%';
    size_t n = 0;
    unsigned sum = 0;
    int esc = 0, prev = -1;
    for (;;) {
      c = getbyte(g, 5000);
      if (c < 0) {
        if (c == -2) seterr(g, "gdb stub: truncated packet");
        return -1;
      }
      if (c == '#') break;
      sum += (unsigned)c;
      if (esc) {
        c ^= 0x20;
        esc = 0;
      } else if (c == '}') {
        esc = 1;
        continue;
      } else if (c == '*' && prev >= 0) {
        /* Run-length: the next byte is the count + 29. */
        int r = getbyte(g, 5000);
        if (r < 0) return -1;
        sum += (unsigned)r;
        for (int k = 0; k < r - 29 && n + 1 < cap; k++) buf[n++] = (char)prev;
        continue;
      }
      if (n + 1 < cap) buf[n++] = (char)c;
      prev = c;
    }
    int h = getbyte(g, 5000), l = getbyte(g, 5000);
    if (h < 0 || l < 0) return -1;
    buf[n] = 0;
    if (!g->noack) {
      if (hexval(h) * 16 + hexval(l) != (int)(sum & 0xff)) {
        if (writeall(g, "-", 1) < 0) return -1;
        continue;
      }
      g->ack_due = 1;
    }
    if (notif) continue;
    return (int)n;
  }
}

int gdb_cmd(gdb_conn *g, const char *cmd, char *buf, size_t cap) {
  if (gdb_send(g, cmd, strlen(cmd)) < 0) return -1;
  int n = gdb_recv(g, buf, cap, 10000);
  if (n == -2) seterr(g, "gdb stub: no reply to %.20s", cmd);
  return n < 0 ? -1 : n;
}

int gdb_ok(const char *reply) { return !strcmp(reply, "OK"); }

/* ---- target description ---- */

/* Read a qXfer:features:read object, chunk by chunk, into a malloc'd
 * string. */
static char *xfer(gdb_conn *g, const char *annex) {
  size_t len = 0, cap = 4096;
  char *out = malloc(cap), *reply = malloc(GDB_PKT_MAX);
  if (!out || !reply) goto fail;
  for (;;) {
    char cmd[256];
    snprintf(cmd, sizeof cmd, "qXfer:features:read:%s:%zx,%x", annex, len,
             g->pktsize - 16);
    int n = gdb_cmd(g, cmd, reply, GDB_PKT_MAX);
    if (n < 1 || (reply[0] != 'm' && reply[0] != 'l')) {
      seterr(g, "gdb stub: cannot read %s", annex);
      goto fail;
    }
    while (len + (size_t)n + 1 > cap) {
      char *p = realloc(out, cap *= 2);
      if (!p) goto fail;
      out = p;
    }
    memcpy(out + len, reply + 1, (size_t)n - 1);
    len += (size_t)n - 1;
    out[len] = 0;
    if (reply[0] == 'l' || n == 1) break;
  }
  free(reply);
  return out;
fail:
  free(out);
  free(reply);
  return NULL;
}

/* Value of attribute name in the tag starting at p (up to '>'). */
static int attr(const char *p, const char *name, char *val, size_t cap) {
  const char *end = strchr(p, '>');
  size_t nl = strlen(name);
  for (const char *q = p; q && q < end; q++) {
    if (!strncmp(q, name, nl) && q[nl] == '=' && (q[nl + 1] == '"' || q[nl + 1] == '\'') &&
        (q[-1] == ' ' || q[-1] == '\t' || q[-1] == '\n')) {
      char quote = q[nl + 1];
      const char *v = q + nl + 2, *e = strchr(v, quote);
      if (!e) return -1;
      snprintf(val, cap, "%.*s", (int)(e - v), v);
      return 0;
    }
  }
  return -1;
}

/* Add the registers of one description, following its xi:includes in
 * document order (the register order is the 'g' packet order). */
static int load_desc(gdb_conn *g, const char *annex, int depth) {
  if (depth > 4) return 0;
  char *xml = xfer(g, annex);
  if (!xml) return -1;
  for (const char *p = xml; (p = strchr(p, '<')); p++) {
    char val[256];
    if (!strncmp(p, "<xi:include", 11)) {
      if (attr(p, "href", val, sizeof val) == 0 && load_desc(g, val, depth + 1) < 0) {
        free(xml);
        return -1;
      }
    } else if (!strncmp(p, "<reg ", 5) && g->nregs < GDB_MAX_REGS) {
      gdb_reg *r = &g->regs[g->nregs];
      if (attr(p, "name", r->name, sizeof r->name) < 0) continue;
      r->bits = attr(p, "bitsize", val, sizeof val) == 0 ? atoi(val) : 64;
      if (attr(p, "regnum", val, sizeof val) == 0) {
        int num = atoi(val);
        /* Registers are numbered in order; a regnum only jumps ahead. */
        if (num > g->nregs && num < GDB_MAX_REGS) {
          g->regs[num] = *r;
          for (int k = g->nregs; k < num; k++) g->regs[k].name[0] = 0;
          g->nregs = num;
          r = &g->regs[num];
        }
      }
      g->nregs++;
    }
  }
  free(xml);
  return 0;
}

int gdb_reg_find(const gdb_conn *g, const char *name) {
  for (int i = 0; i < g->nregs; i++)
    if (!strcasecmp(g->regs[i].name, name)) return i;
  return -1;
}

int gdb_threads(gdb_conn *g) {
  char reply[1024];
  g->nthreads = 0;
  const char *q = "qfThreadInfo";
  for (;;) {
    int n = gdb_cmd(g, q, reply, sizeof reply);
    if (n < 1 || reply[0] != 'm') break;
    for (char *p = reply + 1; *p && g->nthreads < GDB_MAX_THREADS;) {
      g->threads[g->nthreads++] = (int)strtol(p, &p, 16);
      if (*p == ',') p++;
      else break;
    }
    q = "qsThreadInfo";
  }
  if (g->nthreads == 0) g->threads[g->nthreads++] = 1;
  return g->nthreads;
}

/* QEMU 7.2's i386-64bit.xml lists ss_base, ds_base and es_base after the
 * segment selectors, but its stub never serves them: the registers it
 * numbers 24.. are fs_base, gs_base, k_gs_base, cr0...  (checked with 'p'
 * against known values: cr0 has PG|PE, efer has LMA).  The 'g' reply is then
 * exactly those 24 bytes shorter than the description; drop the three. */
static void fix_qemu72(gdb_conn *g) {
  int total = 0, at = gdb_reg_find(g, "ss_base");
  for (int i = 0; i < g->nregs; i++) total += (g->regs[i].bits + 7) / 8;
  if (at < 0 || total - g->gbytes != 24 || at + 3 > g->nregs ||
      strcmp(g->regs[at + 1].name, "ds_base") || strcmp(g->regs[at + 2].name, "es_base"))
    return;
  memmove(&g->regs[at], &g->regs[at + 3], (size_t)(g->nregs - at - 3) * sizeof g->regs[0]);
  g->nregs -= 3;
}

#define QSUPPORTED "qSupported:swbreak+;hwbreak+;vContSupported+;xmlRegisters=i386"

int gdb_handshake(gdb_conn *g) {
  char reply[GDB_PKT_MAX];
  /* Ack mode until the stub agrees otherwise; a stray '+' is harmless. */
  if (writeall(g, "+", 1) < 0) return -1;
  /* QEMU stops the VM when a debugger connects and may say so (a stop
   * reply) before it answers: skip stop replies up to qSupported's. */
  if (gdb_send(g, QSUPPORTED, strlen(QSUPPORTED)) < 0) return -1;
  gdb_stop early;
  do
    if (gdb_recv(g, reply, sizeof reply, 10000) < 0) {
      seterr(g, "gdb stub: no reply to qSupported");
      return -1;
    }
  while (gdb_parse_stop(reply, &early) == 0);
  const char *ps = strstr(reply, "PacketSize=");
  if (ps) {
    g->pktsize = (int)strtol(ps + 11, NULL, 16);
    if (g->pktsize < 256) g->pktsize = 256;
    if (g->pktsize > GDB_PKT_MAX) g->pktsize = GDB_PKT_MAX;
  }
  int xml = strstr(reply, "qXfer:features:read+") != NULL;
  if (gdb_cmd(g, "QStartNoAckMode", reply, sizeof reply) < 0) return -1;
  if (gdb_ok(reply)) g->noack = 1;
  /* Stop the target: the '?' reply tells whether it already is. */
  gdb_stop st;
  if (gdb_query_stop(g, &st) < 0) return -1;
  if (!xml) {
    seterr(g, "gdb stub: no target description (qXfer:features:read)");
    return -1;
  }
  if (load_desc(g, "target.xml", 0) < 0) return -1;
  if (gdb_reg_find(g, "rip") < 0) {
    seterr(g, "gdb stub: target is not x86-64 (no rip register)");
    return -1;
  }
  /* Offsets in the 'g' packet: in register order, as long as it lasts. */
  int n = gdb_cmd(g, "g", reply, sizeof reply);
  if (n < 0) return -1;
  g->gbytes = n / 2;
  fix_qemu72(g);
  int off = 0;
  for (int i = 0; i < g->nregs; i++) {
    int bytes = (g->regs[i].bits + 7) / 8;
    g->regs[i].offset = off + bytes <= g->gbytes ? off : -1;
    off += bytes;
  }
  if (gdb_cmd(g, "qqemu.Supported", reply, sizeof reply) >= 0)
    g->phys_mode = strstr(reply, "PhyMemMode") ? 1 : -1;
  gdb_threads(g);
  return 0;
}

/* ---- registers and memory ---- */

static uint64_t le_hex(const char *p, int bytes) {
  uint64_t v = 0;
  for (int i = bytes < 8 ? bytes : 8; i-- > 0;)
    v = v << 8 | (uint64_t)(hexval(p[2 * i]) << 4 | hexval(p[2 * i + 1]));
  return v;
}

int gdb_read_regs(gdb_conn *g, uint64_t *regs) {
  if (gdb_send(g, "g", 1) < 0) return -1;
  return gdb_recv_regs(g, regs);
}

int gdb_recv_regs(gdb_conn *g, uint64_t *regs) {
  char reply[GDB_PKT_MAX];
  int n = gdb_recv(g, reply, sizeof reply, 10000);
  if (n == -2) seterr(g, "gdb stub: no reply to g");
  if (n < 0) return -1;
  if (reply[0] == 'E' || n < 2 * 8) {
    seterr(g, "gdb stub: 'g' failed: %s", reply);
    return -1;
  }
  for (int i = 0; i < g->nregs; i++) {
    const gdb_reg *r = &g->regs[i];
    int bytes = (r->bits + 7) / 8;
    regs[i] = r->offset >= 0 && 2 * (r->offset + bytes) <= n
                  ? le_hex(reply + 2 * r->offset, bytes)
                  : 0;
  }
  return 0;
}

int gdb_read_reg(gdb_conn *g, int regnum, uint64_t *val) {
  char cmd[32], reply[128];
  snprintf(cmd, sizeof cmd, "p%x", regnum);
  int n = gdb_cmd(g, cmd, reply, sizeof reply);
  if (n < 2 || reply[0] == 'E') {
    seterr(g, "gdb stub: cannot read register %d", regnum);
    return -1;
  }
  *val = le_hex(reply, n / 2);
  return 0;
}

int gdb_write_reg(gdb_conn *g, int regnum, uint64_t val) {
  char cmd[64], reply[64];
  int bytes = regnum >= 0 && regnum < g->nregs ? (g->regs[regnum].bits + 7) / 8 : 8;
  int n = snprintf(cmd, sizeof cmd, "P%x=", regnum);
  for (int i = 0; i < bytes && i < 8; i++) n += snprintf(cmd + n, sizeof cmd - (size_t)n, "%02x", (unsigned)(val >> (8 * i)) & 0xff);
  if (gdb_cmd(g, cmd, reply, sizeof reply) < 0) return -1;
  return gdb_ok(reply) ? 0 : -1;
}

int gdb_set_thread(gdb_conn *g, int thread) {
  char cmd[32], reply[64];
  snprintf(cmd, sizeof cmd, "Hg%x", thread);
  if (gdb_cmd(g, cmd, reply, sizeof reply) < 0) return -1;
  return gdb_ok(reply) ? 0 : -1;
}

int gdb_read_mem(gdb_conn *g, uint64_t addr, void *buf, size_t n) {
  unsigned char *out = buf;
  char reply[GDB_PKT_MAX], cmd[64];
  size_t chunk = (size_t)(g->pktsize - 8) / 2;
  while (n) {
    size_t k = n < chunk ? n : chunk;
    snprintf(cmd, sizeof cmd, "m%llx,%zx", (unsigned long long)addr, k);
    int r = gdb_cmd(g, cmd, reply, sizeof reply);
    if (r < 0) return -1;
    if (reply[0] == 'E' || r == 0 || (size_t)r < 2 * k) return -1;
    for (size_t i = 0; i < k; i++)
      out[i] = (unsigned char)(hexval(reply[2 * i]) << 4 | hexval(reply[2 * i + 1]));
    out += k;
    addr += k;
    n -= k;
  }
  return 0;
}

int gdb_write_mem(gdb_conn *g, uint64_t addr, const void *buf, size_t n) {
  const unsigned char *in = buf;
  size_t chunk = (size_t)(g->pktsize - 40) / 2;
  char *cmd = malloc(2 * chunk + 40), reply[64];
  if (!cmd) return -1;
  int rc = 0;
  while (n && rc == 0) {
    size_t k = n < chunk ? n : chunk;
    int len = snprintf(cmd, 40, "M%llx,%zx:", (unsigned long long)addr, k);
    for (size_t i = 0; i < k; i++) len += sprintf(cmd + len, "%02x", in[i]);
    if (gdb_cmd(g, cmd, reply, sizeof reply) < 0 || !gdb_ok(reply)) rc = -1;
    in += k;
    addr += k;
    n -= k;
  }
  free(cmd);
  return rc;
}

int gdb_phys(gdb_conn *g, int on) {
  char reply[64];
  if (g->phys_mode < 0) {
    seterr(g, "gdb stub: no physical memory mode (qqemu.PhyMemMode)");
    return -1;
  }
  if (gdb_cmd(g, on ? "Qqemu.PhyMemMode:1" : "Qqemu.PhyMemMode:0", reply,
              sizeof reply) < 0)
    return -1;
  return gdb_ok(reply) ? 0 : -1;
}

int gdb_breakpoint(gdb_conn *g, int insert, int type, uint64_t addr, int len) {
  char cmd[64], reply[64];
  snprintf(cmd, sizeof cmd, "%c%d,%llx,%x", insert ? 'Z' : 'z', type,
           (unsigned long long)addr, len);
  if (gdb_cmd(g, cmd, reply, sizeof reply) < 0) return -1;
  if (!gdb_ok(reply)) {
    seterr(g, "gdb stub: %s refused (%s)", cmd, *reply ? reply : "unsupported");
    return -1;
  }
  return 0;
}

/* ---- execution ---- */

int gdb_cont(gdb_conn *g) { return gdb_send(g, "vCont;c", 7); }

int gdb_cont_at(gdb_conn *g, uint64_t addr) {
  char cmd[32];
  int n = snprintf(cmd, sizeof cmd, "c%llx", (unsigned long long)addr);
  return gdb_send(g, cmd, (size_t)n);
}

int gdb_step(gdb_conn *g, int thread) {
  char cmd[32];
  int n = snprintf(cmd, sizeof cmd, "vCont;s:%x", thread);
  return gdb_send(g, cmd, (size_t)n);
}

int gdb_interrupt(gdb_conn *g) {
  int acked = g->ack_due;
  g->ack_due = 0;
  return writeall(g, acked ? "+\003" : "\003", acked ? 2 : 1);
}

int gdb_interrupt_regs(gdb_conn *g) {
  /* gdb_send writes "[+]$g#67"; the 0x03 goes first, in the same write */
  char pkt[] = "+\003$g#67";
  int acked = g->ack_due;
  g->ack_due = 0;
  free(g->last);
  g->last = g->noack ? NULL : strdup("$g#67");
  g->lastlen = 5;
  return writeall(g, acked ? pkt : pkt + 1, sizeof pkt - (acked ? 1 : 2));
}

int gdb_parse_stop(const char *reply, gdb_stop *st) {
  memset(st, 0, sizeof *st);
  if (reply[0] == 'W' || reply[0] == 'X') {
    st->kind = GDB_STOP_EXITED;
    return 0;
  }
  if ((reply[0] != 'T' && reply[0] != 'S') || hexval(reply[1]) < 0 || hexval(reply[2]) < 0)
    return -1;
  st->kind = GDB_STOP_SIGNAL;
  st->signal = hexval(reply[1]) * 16 + hexval(reply[2]);
  if (reply[0] == 'S') return 0;
  /* T05key:value;key:value; */
  for (const char *p = reply + 3; *p;) {
    const char *colon = strchr(p, ':'), *semi = strchr(p, ';');
    if (!colon || (semi && semi < colon)) break;
    size_t kl = (size_t)(colon - p);
    const char *v = colon + 1;
    if (kl == 6 && !strncmp(p, "thread", 6)) {
      if (*v == 'p') v = strchr(v, '.') ? strchr(v, '.') + 1 : v + 1;
      st->thread = (int)strtol(v, NULL, 16);
    } else if (kl >= 5 && !strncmp(p + kl - 5, "watch", 5)) {
      st->kind = GDB_STOP_WATCH;
      st->watch = kl == 5 ? 'w' : p[0];
      st->addr = strtoull(v, NULL, 16);
    }
    if (!semi) break;
    p = semi + 1;
  }
  return 0;
}

int gdb_wait_stop(gdb_conn *g, gdb_stop *st, int timeout_ms) {
  char reply[1024];
  for (;;) {
    int n = gdb_recv(g, reply, sizeof reply, timeout_ms);
    if (n < 0) return n;
    if (reply[0] == 'O' && reply[1] != 'K') continue; /* console output */
    if (gdb_parse_stop(reply, st) == 0) return 0;
    seterr(g, "gdb stub: unexpected reply %.40s", reply);
    return -1;
  }
}

int gdb_query_stop(gdb_conn *g, gdb_stop *st) {
  char reply[1024];
  if (gdb_cmd(g, "?", reply, sizeof reply) < 0) return -1;
  if (gdb_parse_stop(reply, st) < 0) {
    seterr(g, "gdb stub: bad stop reply %.40s", reply);
    return -1;
  }
  return 0;
}

int gdb_detach(gdb_conn *g) {
  char reply[64];
  return gdb_cmd(g, "D", reply, sizeof reply) < 0 ? -1 : 0;
}
