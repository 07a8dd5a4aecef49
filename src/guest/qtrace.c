/* qtrace: QEMU trace events as VP static probes (see qtrace.h). */
#include "guest/qtrace.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

enum {
  P_IN = 1, P_OUT = 2, P_DSTART = 4, P_DFINISH = 8, P_TRIPLE = 16,
  MAX_RAW = 16,       /* VMM:TRACE: probes per script */
  NPEND = 1024,       /* outstanding disk requests remembered */
  MAX_VDEV = 16,
  QLEN = 65536        /* fires parsed but not yet taken; more are dropped */
};

/* Names scripts use and what they turn on. */
static const struct {
  const char *name;
  unsigned bit;
  const char *events;
} probe_map[] = {
  {"In", P_IN, "memory_region_ops_read"},
  {"Out", P_OUT, "memory_region_ops_write"},
  {"Disk_IOStart", P_DSTART, "virtio_blk_handle_read,virtio_blk_handle_write"},
  {"Disk_IOFinish", P_DFINISH,
   "virtio_blk_handle_read,virtio_blk_handle_write,virtio_blk_req_complete"},
  {"Guest_TripleFault", P_TRIPLE, ""},
};

struct pending { uint64_t req, rw, sector, n; };

/* A reader thread drains the FIFO all the time, parsing lines into a queue
 * of fires.  QEMU writes its log from the vCPU threads, some holding the big
 * lock: a FIFO left full would stall the VM and, with it, every QMP or gdb
 * request the engine makes meanwhile. */
struct qtrace {
  qmp *q;
  int rfd, wfd;            /* the FIFO's ends; we hold a writer so poll blocks */
  int evfd;                /* readable while the queue has fires */
  int stopfd;              /* tells the reader thread to end */
  pthread_t thread;
  int have_thread;
  int logging;             /* QEMU's log is on: turn it off at stop */
  pthread_mutex_t mu;
  qtrace_event *queue;     /* ring of QLEN */
  size_t qhead, qn;
  uint64_t dropped;
  char dir[64], fifo[96];
  unsigned want;
  char probe_name[5][64];  /* as the script spelled them (with "VMM:" or not) */
  char raw[MAX_RAW][64];   /* VMM:TRACE: event names */
  char raw_probe[MAX_RAW][64];
  int nraw;
  char *io_names;          /* "\nname\nname\n": regions of the I/O space */
  struct pending pend[NPEND];
  uint64_t vdev[MAX_VDEV];
  int nvdev;
  char buf[65536];
  size_t len;
};

static const char *strip_vmm(const char *name) {
  return strncmp(name, "VMM:", 4) == 0 ? name + 4 : name;
}

static int map_index(const char *name) {
  name = strip_vmm(name);
  for (size_t i = 0; i < sizeof probe_map / sizeof probe_map[0]; i++)
    if (strcmp(name, probe_map[i].name) == 0) return (int)i;
  return -1;
}

static int valid_event_name(const char *s) {
  if (!*s || strlen(s) >= 64) return 0;
  for (; *s; s++)
    if (!(*s == '_' || (*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
          (*s >= '0' && *s <= '9')))
      return 0;
  return 1;
}

int qtrace_known(const char *name) {
  if (map_index(name) >= 0) return 1;
  const char *s = strip_vmm(name);
  if (strncmp(s, "TRACE:", 6) == 0 && strip_vmm(name) != name) return valid_event_name(s + 6);
  if (strcmp(s, "HV_Exit") == 0 || strcmp(s, "HV_Resume") == 0) return 2;
  return 0;
}

/* Appends ",trace:EV" for each event of a comma list not yet in cmd. */
static void add_events(char *cmd, size_t cap, const char *events) {
  char tmp[256];
  snprintf(tmp, sizeof tmp, "%s", events);
  for (char *save, *ev = strtok_r(tmp, ",", &save); ev; ev = strtok_r(NULL, ",", &save)) {
    char item[80];
    snprintf(item, sizeof item, "trace:%s", ev);
    size_t n = strlen(item);
    const char *p = cmd;
    int have = 0;
    while ((p = strstr(p, item)) != NULL) {
      if ((p == cmd || p[-1] == ',' || p[-1] == ' ') && (p[n] == 0 || p[n] == ',')) have = 1;
      p += n;
    }
    if (have) continue;
    size_t len = strlen(cmd);
    snprintf(cmd + len, cap - len, "%s%s", cmd[len - 1] == ' ' ? "" : ",", item);
  }
}

/* Collects the region names of QEMU's I/O address space from the flat
 * memory view, so port accesses can be told from MMIO in the shared
 * memory_region_ops events. */
static int load_io_names(qtrace *t, char *err, size_t cap) {
  size_t outcap = 1 << 20;
  char *out = malloc(outcap);
  if (!out) { snprintf(err, cap, "out of memory"); return -1; }
  if (qmp_hmp(t->q, "info mtree -f", out, outcap) != 0) {
    snprintf(err, cap, "info mtree: %s", qmp_error(t->q));
    free(out);
    return -1;
  }
  t->io_names = calloc(1, strlen(out) + 2);
  if (!t->io_names) { free(out); snprintf(err, cap, "out of memory"); return -1; }
  strcpy(t->io_names, "\n");
  int in_io = 0;
  for (char *save, *l = strtok_r(out, "\r\n", &save); l; l = strtok_r(NULL, "\r\n", &save)) {
    if (strncmp(l, "FlatView", 8) == 0) in_io = 0;
    else if (strstr(l, "AS \"I/O\"")) in_io = 1;
    if (!in_io) continue;
    char *kind = strstr(l, ", i/o): ");
    if (!kind) continue;
    char *name = kind + 8, *at = strstr(name, " @");
    if (at) *at = 0;
    if (strcmp(name, "io") == 0) continue; /* unassigned ports */
    char key[80];
    snprintf(key, sizeof key, "\n%s\n", name);
    if (!strstr(t->io_names, key)) {
      strcat(t->io_names, name);
      strcat(t->io_names, "\n");
    }
  }
  free(out);
  return 0;
}

/* Parses the number after " KEY " on the line. */
static int field(const char *line, const char *key, uint64_t *v) {
  size_t n = strlen(key);
  for (const char *p = strstr(line, key); p; p = strstr(p + 1, key)) {
    if ((p == line || p[-1] == ' ') && p[n] == ' ') {
      char *end;
      errno = 0;
      unsigned long long x = strtoull(p + n + 1, &end, 0);
      if (end == p + n + 1 || errno) return -1;
      *v = x;
      return 0;
    }
  }
  return -1;
}

static struct pending *pend_slot(qtrace *t, uint64_t req) {
  return &t->pend[(req >> 4 ^ req >> 14) % NPEND];
}

static int vdev_id(qtrace *t, uint64_t vdev) {
  for (int i = 0; i < t->nvdev; i++)
    if (t->vdev[i] == vdev) return i;
  if (t->nvdev == MAX_VDEV) return MAX_VDEV;
  t->vdev[t->nvdev] = vdev;
  return t->nvdev++;
}

static void set_probe(qtrace_event *ev, const char *name) {
  snprintf(ev->probe, sizeof ev->probe, "%s", name);
}

/* Port accesses: memory_region_ops_* on a region of the I/O space.  Its
 * addr is the absolute address, the port for the I/O space. */
static int parse_io(qtrace *t, const char *line, int write, qtrace_event *ev) {
  if (!(t->want & (write ? P_OUT : P_IN))) return 0;
  const char *nm = strstr(line, " name '");
  const char *ne = nm ? strrchr(nm + 7, '\'') : NULL;
  if (!ne || ne - (nm + 7) > 70) return 0;
  char key[80];
  snprintf(key, sizeof key, "\n%.*s\n", (int)(ne - (nm + 7)), nm + 7);
  uint64_t cpu, addr, value, size;
  if (field(line, "cpu", &cpu) || field(line, "addr", &addr) || field(line, "value", &value) ||
      field(line, "size", &size))
    return 0;
  if (addr > 0xffff || !t->io_names || !strstr(t->io_names, key)) return 0;
  set_probe(ev, t->probe_name[write ? 1 : 0]);
  ev->vcpu = (int)(int32_t)cpu;
  ev->nargs = 4;
  ev->args[0] = addr;
  ev->args[1] = size;
  ev->args[2] = value;
  ev->args[3] = 1;
  return 1;
}

static void disk_args(qtrace_event *ev, int ctl, const struct pending *p) {
  ev->nargs = 8;
  ev->args[0] = QTRACE_ADAPTER_VIRTIO;
  ev->args[1] = (uint64_t)ctl;
  ev->args[2] = 0;
  ev->args[3] = p->rw;
  ev->args[4] = p->req;
  ev->args[5] = p->sector;
  ev->args[6] = p->n;
  ev->args[7] = 0;
}

static int parse_disk(qtrace *t, const char *line, int kind, qtrace_event *ev) {
  uint64_t vdev, req;
  if (field(line, "vdev", &vdev) || field(line, "req", &req)) return 0;
  int ctl = vdev_id(t, vdev);
  struct pending *p = pend_slot(t, req);
  if (kind != 2) { /* handle_read (0) / handle_write (1): the start */
    struct pending np = {req, kind == 0, 0, 0};
    if (field(line, "sector", &np.sector) || field(line, "nsectors", &np.n)) return 0;
    *p = np;
    if (!(t->want & P_DSTART)) return 0;
    set_probe(ev, t->probe_name[2]);
    disk_args(ev, ctl, p);
    return 1;
  }
  if (!(t->want & P_DFINISH)) return 0;
  uint64_t status = 0;
  field(line, "status", &status);
  struct pending known = {req, 0, 0, 0};
  if (p->req == req) known = *p;
  p->req = 0;
  set_probe(ev, t->probe_name[3]);
  disk_args(ev, ctl, &known);
  ev->nargs = 9;
  ev->args[8] = status;
  return 1;
}

static void push(qtrace *t, const qtrace_event *ev);

/* VMM:TRACE:EVENT: every number after the event name, in order. */
static void parse_raw(qtrace *t, const char *line, size_t namelen) {
  for (int i = 0; i < t->nraw; i++) {
    if (strlen(t->raw[i]) != namelen || memcmp(line, t->raw[i], namelen) != 0) continue;
    qtrace_event ev = {.vcpu = -1};
    set_probe(&ev, t->raw_probe[i]);
    for (const char *p = line + namelen; *p && ev.nargs < 10;) {
      if ((*p >= '0' && *p <= '9') || (*p == '-' && p[1] >= '0' && p[1] <= '9')) {
        char *end;
        int neg = *p == '-';
        uint64_t v = strtoull(p + neg, &end, 0);
        ev.args[ev.nargs++] = neg ? -v : v;
        p = end;
        while (*p && *p != ' ' && *p != ',' && *p != '=') p++; /* "12(b)" and such */
      } else {
        /* skip a word that is not a number (it may hold digits: "cpu0") */
        while (*p && *p != ' ' && *p != '=' && *p != ',' && *p != '(') p++;
        if (*p) p++;
      }
    }
    push(t, &ev);
  }
}

/* One log line to the fires it makes (a line may serve a mapped probe and
 * a VMM:TRACE one). */
static void parse_line(qtrace *t, const char *line) {
  qtrace_event ev = {.vcpu = -1};
  size_t namelen = strcspn(line, " ");
  int got = 0;
  if (t->nraw) parse_raw(t, line, namelen);
#define IS(s) (namelen == sizeof(s) - 1 && memcmp(line, s, namelen) == 0)
  if (IS("memory_region_ops_read")) got = parse_io(t, line, 0, &ev);
  else if (IS("memory_region_ops_write")) got = parse_io(t, line, 1, &ev);
  else if (IS("virtio_blk_handle_read")) got = parse_disk(t, line, 0, &ev);
  else if (IS("virtio_blk_handle_write")) got = parse_disk(t, line, 1, &ev);
  else if (IS("virtio_blk_req_complete")) got = parse_disk(t, line, 2, &ev);
#undef IS
  if (got) push(t, &ev);
}

/* A QMP reset event for Guest_TripleFault; consumes QMP events. */
static int check_qmp(qtrace *t, qtrace_event *ev) {
  char name[64];
  while (qmp_next_event(t->q, name, sizeof name, 0) == 1) {
    if (strcmp(name, "RESET") != 0 && strcmp(name, "SHUTDOWN") != 0) continue;
    char reason[64] = "";
    qmp_json_str(qmp_event_json(t->q), "data.reason", reason, sizeof reason);
    if (strcmp(reason, "guest-reset") != 0) continue;
    memset(ev, 0, sizeof *ev);
    ev->vcpu = -1;
    set_probe(ev, t->probe_name[4]);
    return 1;
  }
  return 0;
}

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void push(qtrace *t, const qtrace_event *ev) {
  pthread_mutex_lock(&t->mu);
  if (t->qn == QLEN) {
    t->dropped++;
  } else {
    t->queue[(t->qhead + t->qn) % QLEN] = *ev;
    if (t->qn++ == 0) {
      uint64_t one = 1;
      if (write(t->evfd, &one, sizeof one) < 0) { /* counter full: already readable */ }
    }
  }
  pthread_mutex_unlock(&t->mu);
}

static int pop(qtrace *t, qtrace_event *ev) {
  int got = 0;
  pthread_mutex_lock(&t->mu);
  if (t->qn) {
    *ev = t->queue[t->qhead];
    t->qhead = (t->qhead + 1) % QLEN;
    t->qn--;
    got = 1;
  }
  if (!t->qn) {
    uint64_t v;
    if (read(t->evfd, &v, sizeof v) < 0) { /* was not readable */ }
  }
  pthread_mutex_unlock(&t->mu);
  return got;
}

/* The reader thread: FIFO lines to queued fires until told to stop. */
static void *reader(void *arg) {
  qtrace *t = arg;
  for (;;) {
    struct pollfd pf[2] = {{.fd = t->rfd, .events = POLLIN}, {.fd = t->stopfd, .events = POLLIN}};
    if (poll(pf, 2, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (pf[1].revents) break;
    if (!(pf[0].revents & POLLIN)) continue;
    ssize_t got = read(t->rfd, t->buf + t->len, sizeof t->buf - t->len);
    if (got < 0 && (errno == EAGAIN || errno == EINTR)) continue;
    if (got <= 0) break;
    t->len += (size_t)got;
    char *p = t->buf, *e = t->buf + t->len, *nl;
    while ((nl = memchr(p, '\n', (size_t)(e - p))) != NULL) {
      *nl = 0;
      parse_line(t, p);
      p = nl + 1;
    }
    t->len = (size_t)(e - p);
    if (t->len == sizeof t->buf) t->len = 0; /* a line without end: drop it */
    memmove(t->buf, p, t->len);
  }
  return NULL;
}

/* An HMP command that should print nothing: 0 if it did, else -1 with its
 * output or the failure in reply. */
static int hmp_quiet(qmp *q, const char *cmd, char *reply, size_t cap) {
  int r = qmp_hmp(q, cmd, reply, cap);
  if (r < 0) snprintf(reply, cap, "%s", qmp_error(q));
  return r != 0 || reply[0] ? -1 : 0;
}

qtrace *qtrace_start(qmp *q, const char *const *probes, int n, char *err, size_t cap) {
  qtrace *t = calloc(1, sizeof *t);
  if (!t) { snprintf(err, cap, "out of memory"); return NULL; }
  t->q = q;
  t->rfd = t->wfd = t->stopfd = -1;
  pthread_mutex_init(&t->mu, NULL);
  t->queue = malloc(QLEN * sizeof *t->queue);
  t->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (!t->queue || t->evfd < 0) {
    snprintf(err, cap, "out of memory");
    goto fail;
  }
  char cmd[2048] = "log ";
  for (int i = 0; i < n; i++) {
    int k = map_index(probes[i]);
    const char *s = strip_vmm(probes[i]);
    if (k >= 0) {
      t->want |= probe_map[k].bit;
      snprintf(t->probe_name[k], sizeof t->probe_name[k], "%s", probes[i]);
      if (*probe_map[k].events) add_events(cmd, sizeof cmd, probe_map[k].events);
    } else if (qtrace_known(probes[i]) == 1) { /* VMM:TRACE:EVENT */
      if (t->nraw == MAX_RAW) {
        snprintf(err, cap, "%s: at most %d VMM:TRACE probes", probes[i], MAX_RAW);
        goto fail;
      }
      snprintf(t->raw[t->nraw], 64, "%s", s + 6);
      snprintf(t->raw_probe[t->nraw], 64, "%s", probes[i]);
      add_events(cmd, sizeof cmd, s + 6);
      t->nraw++;
    } else if (qtrace_known(probes[i]) == 2) {
      snprintf(err, cap, "%s: needs KVM (the kvm:%s tracepoint); this QEMU runs TCG",
               probes[i], strcmp(s, "HV_Exit") == 0 ? "kvm_exit" : "kvm_entry");
      goto fail;
    } else {
      snprintf(err, cap, "%s: not a QEMU static probe", probes[i]);
      goto fail;
    }
  }
  if (strcmp(cmd, "log ") == 0) return t; /* only QMP events */

  if ((t->want & (P_IN | P_OUT)) && load_io_names(t, err, cap)) goto fail;
  snprintf(t->dir, sizeof t->dir, "/tmp/vprobe-qtrace.XXXXXX");
  if (!mkdtemp(t->dir)) {
    snprintf(err, cap, "mkdtemp: %s", strerror(errno));
    t->dir[0] = 0;
    goto fail;
  }
  snprintf(t->fifo, sizeof t->fifo, "%s/log", t->dir);
  if (mkfifo(t->fifo, 0600) < 0) {
    snprintf(err, cap, "mkfifo %s: %s", t->fifo, strerror(errno));
    goto fail;
  }
  /* Both ends open before QEMU opens it: its fopen does not block, and poll
   * waits for data rather than seeing hang-ups while QEMU has no writer. */
  t->rfd = open(t->fifo, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  t->wfd = open(t->fifo, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
  t->stopfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (t->rfd < 0 || t->wfd < 0 || t->stopfd < 0) {
    snprintf(err, cap, "open %s: %s", t->fifo, strerror(errno));
    goto fail;
  }
  fcntl(t->rfd, F_SETPIPE_SZ, 1 << 20); /* room for bursts; best effort */
  if (pthread_create(&t->thread, NULL, reader, t) != 0) {
    snprintf(err, cap, "cannot start the trace reader thread");
    goto fail;
  }
  t->have_thread = 1;
  char reply[512], lf[160];
  snprintf(lf, sizeof lf, "logfile %s", t->fifo);
  if (hmp_quiet(q, lf, reply, sizeof reply) || hmp_quiet(q, cmd, reply, sizeof reply)) {
    snprintf(err, cap, "QEMU refused '%s': %s", cmd, reply);
    goto fail;
  }
  t->logging = 1;
  return t;
fail:
  qtrace_stop(t);
  return NULL;
}

int qtrace_next(qtrace *t, qtrace_event *ev, int timeout_ms) {
  int64_t deadline = timeout_ms < 0 ? -1 : now_ms() + timeout_ms;
  for (;;) {
    if ((t->want & P_TRIPLE) && check_qmp(t, ev)) return 1;
    if (pop(t, ev)) return 1;
    struct pollfd pf[2] = {{.fd = t->evfd, .events = POLLIN}, {.fd = -1}};
    if ((t->want & P_TRIPLE) && qmp_fd(t->q) >= 0)
      pf[1] = (struct pollfd){.fd = qmp_fd(t->q), .events = POLLIN};
    int wait = -1;
    if (deadline >= 0) {
      int64_t left = deadline - now_ms();
      if (left <= 0) return 0;
      wait = (int)left;
    }
    int r = poll(pf, 2, wait);
    if (r < 0 && errno != EINTR) return -1;
    if (r == 0) return 0;
  }
}

int qtrace_fd(qtrace *t) { return t->evfd; }

uint64_t qtrace_dropped(qtrace *t) {
  pthread_mutex_lock(&t->mu);
  uint64_t d = t->dropped;
  pthread_mutex_unlock(&t->mu);
  return d;
}

void qtrace_stop(qtrace *t) {
  if (!t) return;
  /* The reader keeps draining while QEMU turns logging off, so a vCPU
   * blocked on a full FIFO cannot hold up the monitor. */
  if (t->logging) {
    char reply[256];
    qmp_hmp(t->q, "log none", reply, sizeof reply);
  }
  if (t->have_thread) {
    uint64_t one = 1;
    if (write(t->stopfd, &one, sizeof one) < 0) { /* cannot fail: fresh counter */ }
    pthread_join(t->thread, NULL);
  }
  if (t->rfd >= 0) close(t->rfd);
  if (t->wfd >= 0) close(t->wfd);
  if (t->stopfd >= 0) close(t->stopfd);
  if (t->evfd >= 0) close(t->evfd);
  if (t->fifo[0]) unlink(t->fifo);
  if (t->dir[0]) rmdir(t->dir);
  pthread_mutex_destroy(&t->mu);
  free(t->queue);
  free(t->io_names);
  free(t);
}
