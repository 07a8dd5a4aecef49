/*
 * ring.c - per-thread output rings and their time-ordered drain.
 *
 * Each ring has one producer (the owning thread; the caller keeps a signal
 * handler on the same thread from re-entering) and one consumer (the
 * drainer).  head and tail count bytes ever written and consumed; a record
 * is a 16-byte header and its bytes rounded up to 16, never split across the
 * ring's end: when it would be, a pad record fills the rest of the ring.
 * head is published once per rt_emit, after every byte is written.
 *
 * Time order across drains: a record becomes visible some time after its
 * stamp was taken, so the drainer must not hand out stamps later than what
 * a still-unpublished record might carry.  The producer makes seq odd (a
 * full barrier) before reading the clock and even after publishing.  The
 * drainer reads the clock, then each seq: an even seq means any later
 * record will be stamped after the drainer's clock; an odd seq means a
 * record is in flight, stamped no earlier than the drainer's clock at the
 * last drain that saw a different seq (the floor).  Records are delivered
 * only below the smallest of these bounds.
 */
#include "rt/rtint.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PAD_STREAM 0xffff

typedef rt_rec rec;

static uint64_t rec_bytes(uint64_t len) { return sizeof(rec) + ((len + 15) & ~15ull); }

uint64_t rt_clock(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Where a record of len bytes starting at pos ends, padding past the ring's
 * end if needed; *at gets the record's start. */
static uint64_t place(uint64_t pos, uint64_t len, uint64_t size, uint64_t *at) {
  uint64_t off = pos & (size - 1), need = rec_bytes(len);
  if (size - off < need)
    pos += size - off;
  *at = pos;
  return pos + need;
}

int rt_emit(rt_thread *th, int stream, const void *data, size_t n) {
  rt_space *sp = rt_space_of(th);
  uint64_t size = sp->ring_bytes, max = size / 4 - sizeof(rec);
  unsigned char *ring = rt_ring(sp, th);
  uint64_t head = LD(&th->head), tail = LDA(&th->tail), pos = head, at;
  uint64_t seq = LD(&th->seq);
  size_t left = n;
  do { /* first pass: does everything fit? */
    size_t k = left < max ? left : max;
    pos = place(pos, k, size, &at);
    left -= k;
  } while (left);
  if (pos - tail > size) {
    __atomic_fetch_add(&sp->dropped, 1, __ATOMIC_RELAXED);
    return -1;
  }
  __atomic_store_n(&th->seq, seq + 1, __ATOMIC_SEQ_CST); /* before the clock */
  uint64_t stamp = rt_clock();
  const unsigned char *src = data;
  pos = head;
  left = n;
  do {
    size_t k = left < max ? left : max;
    uint64_t next = place(pos, k, size, &at);
    if (at != pos) { /* pad to the ring's end */
      rec p = {0, (uint32_t)(at - pos - sizeof(rec)), PAD_STREAM, 0};
      memcpy(ring + (pos & (size - 1)), &p, sizeof p);
    }
    rec r = {stamp, (uint32_t)k, (uint16_t)stream, 0};
    memcpy(ring + (at & (size - 1)), &r, sizeof r);
    if (k)
      memcpy(ring + (at & (size - 1)) + sizeof r, src, k);
    src += k;
    left -= k;
    pos = next;
  } while (left);
  STR_(&th->head, pos);
  STR_(&th->seq, seq + 2);
  return 0;
}

uint64_t rt_dropped(rt_space *sp) { return LD(&sp->dropped); }

typedef struct cursor {
  rt_thread *th;
  uint32_t i;          /* block index */
  uint64_t pos, end;
  rec r;               /* header of the record at pos, a checked copy */
  const unsigned char *data; /* its bytes, or NULL: no record */
  uint64_t key;        /* the stamp it is ordered by */
} cursor;

#define FUTURE_NS 1000000000ull /* a stamp this far ahead is a lie */

static int corrupt(rt_drainer *d, const char *fmt, uint64_t t, uint64_t v) {
  rt_arg a[2] = {{0, t, NULL}, {0, v, NULL}};
  rt_format(d->err, sizeof d->err, fmt, a, 2);
  return -1;
}

/* Skip pads; point c at the next record, if any.  The header is read once
 * into c->r and must lie inside the ring and inside what was published:
 * the space may be shared with a process we do not trust.  0, or -1 if the
 * ring breaks the rules. */
static int peek(rt_drainer *d, cursor *c) {
  uint64_t size = d->lay->ring_bytes, max = size / 4 - sizeof(rec);
  const unsigned char *ring = (const unsigned char *)c->th + d->lay->block_ring;
  c->data = NULL;
  while (c->pos < c->end) {
    uint64_t off = c->pos & (size - 1), room = size - off;
    uint64_t left = c->end - c->pos;
    rec r;
    memcpy(&r, ring + off, sizeof r);
    if (r.stream == PAD_STREAM) { /* pads reach exactly to the ring's end */
      if ((uint64_t)r.len + sizeof r != room || room > left)
        return corrupt(d, "thread %u ring: pad length %u", c->i, r.len);
      c->pos += room;
      continue;
    }
    if (r.stream > RT_BIN)
      return corrupt(d, "thread %u ring: record stream %u", c->i, r.stream);
    if (r.len > max || rec_bytes(r.len) > room || rec_bytes(r.len) > left)
      return corrupt(d, "thread %u ring: record length %u", c->i, r.len);
    c->r = r;
    c->data = ring + off + sizeof r;
    c->key = r.stamp > d->now + FUTURE_NS ? 0 : r.stamp;
    return 0;
  }
  return 0;
}

/* Min-heap of cursors by (stamp, thread index). */
static int before(const cursor *a, const cursor *b) {
  if (a->key != b->key)
    return a->key < b->key;
  return a->i < b->i;
}

static void sift_down(cursor **h, size_t n, size_t i) {
  for (;;) {
    size_t l = 2 * i + 1, m = i;
    if (l < n && before(h[l], h[m]))
      m = l;
    if (l + 1 < n && before(h[l + 1], h[m]))
      m = l + 1;
    if (m == i)
      return;
    cursor *t = h[i];
    h[i] = h[m];
    h[m] = t;
    i = m;
  }
}

/* New drops as one line, at most once a second (a flooded ring would
 * otherwise flood the error stream too), and always at the final drain. */
static void report_drops(rt_drainer *d, int final, rt_sink sink, void *ctx) {
  uint64_t n = LD(&((rt_space *)d->base)->dropped);
  if (n <= d->dropped_reported) /* a count going back is not ours to say */
    return;
  if (!final && d->drops_at && d->now - d->drops_at < 1000000000ull)
    return;
  d->drops_at = d->now;
  char msg[96];
  rt_arg a = {0, n - d->dropped_reported, NULL};
  size_t len = rt_format(msg, sizeof msg,
                         "vprobe: %u output records or probe fires dropped\n",
                         &a, 1);
  d->dropped_reported = n;
  sink(ctx, RT_ERR, msg, len);
}

static rt_thread *block_at(rt_drainer *d, uint32_t i) {
  return (rt_thread *)(d->base + d->lay->off_blocks +
                       (uint64_t)i * d->lay->block_size);
}

/* The stamp below which every record is visible (see the top comment);
 * fills cs with the threads' cursors.  With d->last_all, upto UINT64_MAX
 * means no producer is left: no bound (an odd seq left behind, or written
 * by a process that lies, must not hold the last records back).  0, or -1
 * if a ring's head is out of range. */
static int snapshot(rt_drainer *d, cursor *cs, uint32_t *ncs, uint64_t *upto) {
  /* bounds are inclusive (a later record may carry the same stamp), so
   * the limit, exclusive, is one more */
  uint64_t now = rt_clock(), limit = *upto;
  int final = d->last_all && limit == UINT64_MAX;
  limit = limit < now + 1 ? limit : now + 1;
  if (final)
    limit = UINT64_MAX;
  __atomic_thread_fence(__ATOMIC_SEQ_CST); /* the clock before the seqs */
  const uint64_t *slots = (const uint64_t *)(d->base + d->lay->off_slots);
  uint32_t n = 0;
  for (uint32_t i = 0; i < d->lay->max_threads; i++) {
    rt_thread *th = block_at(d, i);
    if (!LDA(&slots[i]) || !LDA(&th->ready))
      continue;
    rt_dstate *s = &d->ds[i];
    uint64_t seq = __atomic_load_n(&th->seq, __ATOMIC_SEQ_CST);
    uint64_t head = LDA(&th->head);
    if (head - s->tail > d->lay->ring_bytes)
      return corrupt(d, "thread %u ring: head %u out of range", i, head);
    if (seq & 1) {
      if (seq != s->last_seq)
        s->floor = d->drain_prev;
      if (!final)
        limit = s->floor + 1 < limit ? s->floor + 1 : limit;
    }
    s->last_seq = seq;
    cs[n].th = th;
    cs[n].i = i;
    cs[n].pos = s->tail;
    cs[n].end = head;
    n++;
  }
  d->drain_prev = d->now = now;
  *ncs = n;
  *upto = limit;
  return 0;
}

/* What was consumed, to our copy and to the producer. */
static void consumed(rt_drainer *d, cursor *c) {
  d->ds[c->i].tail = c->pos;
  STR_(&c->th->tail, c->pos);
}

size_t rt_drain_core(rt_drainer *d, uint64_t upto, rt_sink sink, void *ctx) {
  uint32_t nt = d->lay->max_threads, ncs = 0;
  cursor *cs = malloc(sizeof *cs * nt);
  cursor **heap = malloc(sizeof *heap * nt);
  size_t n = 0, done = 0;
  d->err[0] = 0;
  if (!cs || !heap || snapshot(d, cs, &ncs, &upto) != 0)
    ncs = 0;
  for (uint32_t i = 0; i < ncs; i++) {
    cursor *c = &cs[i];
    if (peek(d, c) != 0)
      break;
    if (c->data && c->key < upto)
      heap[n++] = c;
    else
      consumed(d, c); /* leading pads */
  }
  if (d->err[0])
    n = 0;
  for (size_t i = n / 2; i-- > 0;)
    sift_down(heap, n, i);
  while (n) { /* each turn consumes >= 16 published bytes: bounded */
    cursor *c = heap[0];
    sink(ctx, c->r.stream, c->data, c->r.len);
    done++;
    c->pos += rec_bytes(c->r.len);
    if (peek(d, c) != 0)
      break;
    consumed(d, c);
    if (!c->data || c->key >= upto)
      heap[0] = heap[--n];
    sift_down(heap, n, 0);
  }
  if (!d->err[0])
    report_drops(d, upto == UINT64_MAX, sink, ctx);
  free(cs);
  free(heap);
  return done;
}

/* A space only this process writes: its own header is the layout, and the
 * drainer's state lives in it. */
size_t rt_drain(rt_space *sp, uint64_t upto, rt_sink sink, void *ctx) {
  uint32_t zero = 0, nt = sp->max_threads;
  if (!CAS(&sp->draining, &zero, 1))
    return 0;
  rt_drainer d;
  d.lay = sp;
  d.base = rt_base(sp);
  d.ds = malloc(sizeof *d.ds * nt);
  d.drain_prev = sp->drain_prev;
  d.dropped_reported = sp->dropped_reported;
  d.drops_at = sp->drops_at;
  d.last_all = 0; /* UINT64_MAX here is "all so far", writers may remain */
  size_t n = 0;
  if (d.ds) {
    uint64_t *slots = rt_slots(sp);
    for (uint32_t i = 0; i < nt; i++) {
      rt_thread *th = rt_block(sp, i);
      int live = LDA(&slots[i]) && LDA(&th->ready);
      d.ds[i] = (rt_dstate){live ? LD(&th->tail) : 0, live ? th->last_seq : 0,
                            live ? th->floor : 0};
    }
    n = rt_drain_core(&d, upto, sink, ctx);
    for (uint32_t i = 0; i < nt; i++) {
      rt_thread *th = rt_block(sp, i);
      if (LDA(&slots[i]) && LDA(&th->ready))
        th->last_seq = d.ds[i].last_seq, th->floor = d.ds[i].floor;
    }
    if (d.err[0]) {
      char msg[200];
      rt_arg a = {1, 0, d.err};
      size_t k = rt_format(msg, sizeof msg, "vprobe: runtime space corrupted (%s)\n", &a, 1);
      sink(ctx, RT_ERR, msg, k);
    }
    sp->drain_prev = d.drain_prev;
    sp->dropped_reported = d.dropped_reported;
    sp->drops_at = d.drops_at;
    free(d.ds);
  }
  STR_(&sp->draining, 0);
  return n;
}
