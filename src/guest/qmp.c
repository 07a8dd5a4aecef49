/* qmp: QEMU machine protocol client (see qmp.h). */
#include "guest/qmp.h"

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

enum {
  QMP_MAX_MSG = 16 << 20, /* larger messages mean a confused peer */
  QMP_MAX_EVENTS = 256,   /* queued events; the oldest are dropped */
  QMP_CMD_TIMEOUT = 30000 /* ms a command may take */
};

struct qmp {
  int fd;
  char *buf;               /* bytes read, not yet framed into messages */
  size_t len, cap;
  char *events[QMP_MAX_EVENTS]; /* ring of queued event messages */
  int ev_head, ev_n;
  char *cur_event;         /* the one qmp_next_event returned last */
  char err[256];
};

static void seterr(qmp *q, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(q->err, sizeof q->err, fmt, ap);
  va_end(ap);
}

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- JSON scanning: only what QMP messages need ---- */

static const char *skip_ws(const char *p, const char *e) {
  while (p < e && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')) p++;
  return p;
}

/* p at an opening quote; returns the position after the closing one. */
static const char *skip_string(const char *p, const char *e) {
  for (p++; p < e; p++) {
    if (*p == '\\') {
      if (++p >= e) return NULL;
    } else if (*p == '"') {
      return p + 1;
    }
  }
  return NULL;
}

/* Returns the position after the JSON value at p, NULL if it is cut short. */
static const char *skip_value(const char *p, const char *e) {
  p = skip_ws(p, e);
  if (p >= e) return NULL;
  if (*p == '"') return skip_string(p, e);
  if (*p == '{' || *p == '[') {
    int depth = 0;
    while (p < e) {
      if (*p == '"') {
        p = skip_string(p, e);
        if (!p) return NULL;
        continue;
      }
      if (*p == '{' || *p == '[') depth++;
      else if (*p == '}' || *p == ']') {
        if (--depth == 0) return p + 1;
      }
      p++;
    }
    return NULL;
  }
  const char *s = p;
  while (p < e && !strchr(",}] \t\r\n", *p)) p++;
  return p > s ? p : NULL;
}

/* Finds KEY (length n) among the members of the object at p; returns the
 * start of its value. */
static const char *find_member(const char *p, const char *e, const char *key, size_t n) {
  p = skip_ws(p, e);
  if (p >= e || *p != '{') return NULL;
  p++;
  for (;;) {
    p = skip_ws(p, e);
    if (p >= e || *p != '"') return NULL;
    const char *ks = p + 1, *ke = skip_string(p, e);
    if (!ke) return NULL;
    p = skip_ws(ke, e);
    if (p >= e || *p != ':') return NULL;
    const char *v = skip_ws(p + 1, e);
    if ((size_t)(ke - 1 - ks) == n && memcmp(ks, key, n) == 0) return v;
    p = skip_value(v, e);
    if (!p) return NULL;
    p = skip_ws(p, e);
    if (p >= e || *p != ',') return NULL;
    p++;
  }
}

/* Follows a dotted key path from the object at json. */
static const char *find_path(const char *json, const char *path) {
  const char *p = json, *e = json + strlen(json);
  while (p && *path) {
    const char *dot = strchr(path, '.');
    size_t n = dot ? (size_t)(dot - path) : strlen(path);
    p = find_member(p, e, path, n);
    path += n + (dot != NULL);
  }
  return p;
}

static int hexval(int c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

static unsigned read_u4(const char *p, const char *e, int *ok) {
  unsigned v = 0;
  for (int i = 0; i < 4; i++) {
    int h = p + i < e ? hexval((unsigned char)p[i]) : -1;
    if (h < 0) { *ok = 0; return 0; }
    v = v << 4 | (unsigned)h;
  }
  *ok = 1;
  return v;
}

/* Appends byte c to out (always NUL-terminated, truncating). */
static void put(char *out, size_t cap, size_t *n, char c) {
  if (*n + 1 < cap) out[*n] = c;
  (*n)++;
}

static void put_utf8(char *out, size_t cap, size_t *n, unsigned cp) {
  if (cp < 0x80) {
    put(out, cap, n, (char)cp);
  } else if (cp < 0x800) {
    put(out, cap, n, (char)(0xc0 | cp >> 6));
    put(out, cap, n, (char)(0x80 | (cp & 0x3f)));
  } else if (cp < 0x10000) {
    put(out, cap, n, (char)(0xe0 | cp >> 12));
    put(out, cap, n, (char)(0x80 | (cp >> 6 & 0x3f)));
    put(out, cap, n, (char)(0x80 | (cp & 0x3f)));
  } else {
    put(out, cap, n, (char)(0xf0 | cp >> 18));
    put(out, cap, n, (char)(0x80 | (cp >> 12 & 0x3f)));
    put(out, cap, n, (char)(0x80 | (cp >> 6 & 0x3f)));
    put(out, cap, n, (char)(0x80 | (cp & 0x3f)));
  }
}

/* Decodes the string literal at p into out; -1 if p is no string. */
static int decode_string(const char *p, const char *e, char *out, size_t cap) {
  size_t n = 0;
  if (p >= e || *p != '"') return -1;
  for (p++; p < e && *p != '"'; p++) {
    if (*p != '\\') {
      put(out, cap, &n, *p);
      continue;
    }
    if (++p >= e) return -1;
    switch (*p) {
    case 'n': put(out, cap, &n, '\n'); break;
    case 't': put(out, cap, &n, '\t'); break;
    case 'r': put(out, cap, &n, '\r'); break;
    case 'b': put(out, cap, &n, '\b'); break;
    case 'f': put(out, cap, &n, '\f'); break;
    case 'u': {
      int ok;
      unsigned cp = read_u4(p + 1, e, &ok);
      if (!ok) { put(out, cap, &n, '?'); break; }
      p += 4;
      if (cp >= 0xd800 && cp < 0xdc00 && p + 2 < e && p[1] == '\\' && p[2] == 'u') {
        unsigned lo = read_u4(p + 3, e, &ok);
        if (ok && lo >= 0xdc00 && lo < 0xe000) {
          cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
          p += 6;
        }
      }
      if (cp >= 0xd800 && cp < 0xe000) cp = '?';
      put_utf8(out, cap, &n, cp);
      break;
    }
    default: put(out, cap, &n, *p); break; /* \" \\ \/ and the unknown */
    }
  }
  if (p >= e) return -1;
  if (cap) out[n < cap ? n : cap - 1] = 0;
  return 0;
}

int qmp_json_str(const char *json, const char *key, char *out, size_t cap) {
  const char *v = find_path(json, key);
  if (!v) return -1;
  return decode_string(v, json + strlen(json), out, cap);
}

int qmp_json_int(const char *json, const char *key, int64_t *val) {
  const char *v = find_path(json, key);
  if (!v) return -1;
  if (strncmp(v, "true", 4) == 0) { *val = 1; return 0; }
  if (strncmp(v, "false", 5) == 0) { *val = 0; return 0; }
  char *end;
  errno = 0;
  long long x = strtoll(v, &end, 10);
  if (end == v || errno) return -1;
  *val = x;
  return 0;
}

size_t qmp_json_quote(char *out, size_t cap, const char *s) {
  size_t n = cap ? strnlen(out, cap) : 0;
  put(out, cap, &n, '"');
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\') {
      put(out, cap, &n, '\\');
      put(out, cap, &n, (char)c);
    } else if (c < 0x20) {
      char esc[8];
      snprintf(esc, sizeof esc, "\\u%04x", c);
      for (char *e = esc; *e; e++) put(out, cap, &n, *e);
    } else {
      put(out, cap, &n, (char)c);
    }
  }
  put(out, cap, &n, '"');
  if (cap) out[n < cap ? n : cap - 1] = 0;
  return n;
}

/* ---- framing and I/O ---- */

/* Takes the first complete JSON object out of the buffer: 1 with *msg set
 * (malloc'd), 0 if none is complete yet.  Bytes before a '{' are noise. */
static int take_message(qmp *q, char **msg) {
  char *b = q->buf, *e = q->buf + q->len;
  char *s = memchr(b, '{', q->len);
  if (!s) {
    q->len = 0;
    return 0;
  }
  const char *end = skip_value(s, e);
  if (!end) {
    memmove(q->buf, s, (size_t)(e - s));
    q->len = (size_t)(e - s);
    return 0;
  }
  size_t n = (size_t)(end - s);
  *msg = malloc(n + 1);
  if (!*msg) return 0;
  memcpy(*msg, s, n);
  (*msg)[n] = 0;
  q->len = (size_t)(e - end);
  memmove(q->buf, end, q->len);
  return 1;
}

/* Reads one message, waiting until deadline (ms on the monotonic clock, -1
 * forever): 1 message, 0 timeout, -1 error. */
static int read_message(qmp *q, int64_t deadline, char **msg) {
  for (;;) {
    if (q->len && take_message(q, msg)) return 1;
    if (q->fd < 0) { seterr(q, "connection closed"); return -1; }
    int wait = -1;
    if (deadline >= 0) {
      int64_t left = deadline - now_ms();
      wait = left > 0 ? (int)left : 0;
    }
    struct pollfd pf = {.fd = q->fd, .events = POLLIN};
    int r = poll(&pf, 1, wait);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) { seterr(q, "poll: %s", strerror(errno)); return -1; }
    if (r == 0) return 0;
    if (q->cap - q->len < 65536) {
      if (q->cap >= QMP_MAX_MSG) { seterr(q, "message larger than %d bytes", QMP_MAX_MSG); return -1; }
      size_t nc = q->cap ? q->cap * 2 : 131072;
      char *nb = realloc(q->buf, nc);
      if (!nb) { seterr(q, "out of memory"); return -1; }
      q->buf = nb;
      q->cap = nc;
    }
    ssize_t got = read(q->fd, q->buf + q->len, q->cap - q->len);
    if (got < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (got <= 0) {
      if (got == 0) seterr(q, "QEMU closed the QMP connection");
      else seterr(q, "read: %s", strerror(errno));
      close(q->fd);
      q->fd = -1;
      return -1;
    }
    q->len += (size_t)got;
  }
}

static int write_all(qmp *q, const char *s, size_t n) {
  while (n) {
    if (q->fd < 0) { seterr(q, "connection closed"); return -1; }
    ssize_t w = send(q->fd, s, n, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) { seterr(q, "write: %s", strerror(errno)); return -1; }
    s += w;
    n -= (size_t)w;
  }
  return 0;
}

static void queue_event(qmp *q, char *msg) {
  if (q->ev_n == QMP_MAX_EVENTS) { /* drop the oldest */
    free(q->events[q->ev_head]);
    q->ev_head = (q->ev_head + 1) % QMP_MAX_EVENTS;
    q->ev_n--;
  }
  q->events[(q->ev_head + q->ev_n) % QMP_MAX_EVENTS] = msg;
  q->ev_n++;
}

/* Sends json, returns the answer message in *msg (malloc'd): 0 "return",
 * 1 "error", -1 failure. */
static int transact(qmp *q, const char *json, char **msg) {
  *msg = NULL;
  if (write_all(q, json, strlen(json)) || write_all(q, "\n", 1)) return -1;
  int64_t deadline = now_ms() + QMP_CMD_TIMEOUT;
  for (;;) {
    char *m;
    int r = read_message(q, deadline, &m);
    if (r < 0) return -1;
    if (r == 0) { seterr(q, "no answer from QEMU within %d ms", QMP_CMD_TIMEOUT); return -1; }
    const char *e = m + strlen(m);
    if (find_member(m, e, "event", 5)) { queue_event(q, m); continue; }
    if (find_member(m, e, "return", 6)) { *msg = m; return 0; }
    if (find_member(m, e, "error", 5)) { *msg = m; return 1; }
    free(m); /* the greeting or noise */
  }
}

static void copy_out(char *out, size_t cap, const char *s, size_t n) {
  if (!out || !cap) return;
  if (n >= cap) n = cap - 1;
  memcpy(out, s, n);
  out[n] = 0;
}

int qmp_cmd(qmp *q, const char *json, char *reply, size_t cap) {
  char *m;
  int r = transact(q, json, &m);
  if (r < 0) {
    copy_out(reply, cap, q->err, strlen(q->err));
    return -1;
  }
  const char *e = m + strlen(m);
  const char *v = find_member(m, e, r == 0 ? "return" : "error", r == 0 ? 6 : 5);
  const char *ve = v ? skip_value(v, e) : NULL;
  if (v && ve) copy_out(reply, cap, v, (size_t)(ve - v));
  else copy_out(reply, cap, "", 0);
  if (r == 1) {
    char desc[200] = "";
    qmp_json_str(m, "error.desc", desc, sizeof desc);
    seterr(q, "QMP error: %s", desc);
  }
  free(m);
  return r;
}

int qmp_hmp(qmp *q, const char *cmdline, char *out, size_t cap) {
  size_t need = strlen(cmdline) * 6 + 128;
  char *json = malloc(need);
  if (!json) { seterr(q, "out of memory"); return -1; }
  snprintf(json, need, "{\"execute\":\"human-monitor-command\",\"arguments\":{\"command-line\":");
  qmp_json_quote(json, need, cmdline);
  strcat(json, "}}");
  char *m;
  int r = transact(q, json, &m);
  free(json);
  if (r < 0) {
    copy_out(out, cap, q->err, strlen(q->err));
    return -1;
  }
  if (r == 0) {
    if (out && cap && qmp_json_str(m, "return", out, cap) < 0) out[0] = 0;
  } else {
    char desc[200] = "";
    qmp_json_str(m, "error.desc", desc, sizeof desc);
    seterr(q, "QMP error: %s", desc);
    copy_out(out, cap, desc, strlen(desc));
  }
  free(m);
  return r;
}

int qmp_next_event(qmp *q, char *name, size_t cap, int timeout_ms) {
  free(q->cur_event);
  q->cur_event = NULL;
  int64_t deadline = timeout_ms < 0 ? -1 : now_ms() + timeout_ms;
  while (!q->ev_n) {
    char *m;
    int r = read_message(q, deadline, &m);
    if (r <= 0) return r;
    if (find_member(m, m + strlen(m), "event", 5)) queue_event(q, m);
    else free(m); /* an answer nobody waits for */
  }
  q->cur_event = q->events[q->ev_head];
  q->ev_head = (q->ev_head + 1) % QMP_MAX_EVENTS;
  q->ev_n--;
  if (qmp_json_str(q->cur_event, "event", name, cap) < 0 && cap) name[0] = 0;
  return 1;
}

const char *qmp_event_json(qmp *q) { return q->cur_event ? q->cur_event : ""; }
const char *qmp_error(qmp *q) { return q->err; }
int qmp_fd(qmp *q) { return q->fd; }

qmp *qmp_open(const char *path, char *err, size_t cap) {
  qmp *q = calloc(1, sizeof *q);
  if (!q) {
    snprintf(err, cap, "out of memory");
    return NULL;
  }
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  if (strlen(path) >= sizeof sa.sun_path) {
    snprintf(err, cap, "%s: socket path too long", path);
    free(q);
    return NULL;
  }
  strcpy(sa.sun_path, path);
  q->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (q->fd < 0 || connect(q->fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
    snprintf(err, cap, "%s: %s", path, strerror(errno));
    qmp_close(q);
    return NULL;
  }
  char *greet;
  int r = read_message(q, now_ms() + 5000, &greet);
  if (r <= 0) {
    snprintf(err, cap, "%s: no QMP greeting (%s)", path, r ? q->err : "timeout");
    qmp_close(q);
    return NULL;
  }
  int ok = find_member(greet, greet + strlen(greet), "QMP", 3) != NULL;
  free(greet);
  if (!ok) {
    snprintf(err, cap, "%s: not a QMP socket", path);
    qmp_close(q);
    return NULL;
  }
  char reply[256];
  if (qmp_cmd(q, "{\"execute\":\"qmp_capabilities\"}", reply, sizeof reply) != 0) {
    snprintf(err, cap, "%s: qmp_capabilities: %s", path, q->err);
    qmp_close(q);
    return NULL;
  }
  return q;
}

void qmp_close(qmp *q) {
  if (!q) return;
  if (q->fd >= 0) close(q->fd);
  for (int i = 0; i < q->ev_n; i++) free(q->events[(q->ev_head + i) % QMP_MAX_EVENTS]);
  free(q->cur_event);
  free(q->buf);
  free(q);
}
