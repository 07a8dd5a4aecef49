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
  uint64_t pos, end;
  const rec *r; /* record at pos, or NULL */
} cursor;

/* Skip pads; point c->r at the next record, if any. */
static void peek(rt_space *sp, cursor *c) {
  unsigned char *ring = rt_ring(sp, c->th);
  uint64_t size = sp->ring_bytes;
  c->r = NULL;
  if (c->end - c->pos > size) /* not a ring we wrote: take nothing */
    c->pos = c->end;
  while (c->pos < c->end) {
    uint64_t off = c->pos & (size - 1);
    const rec *r = (const rec *)(ring + off);
    /* the space may be shared with a process we do not trust: a record
     * must lie inside the ring and inside what was published */
    uint64_t n = r->stream == PAD_STREAM ? sizeof(rec) + r->len
                                         : rec_bytes(r->len);
    if (r->len > size || n > size - off || n > c->end - c->pos) {
      c->pos = c->end;
      return;
    }
    if (r->stream != PAD_STREAM) {
      c->r = r;
      return;
    }
    c->pos += n;
  }
}

/* Min-heap of cursors by (stamp, thread index). */
static int before(const cursor *a, const cursor *b) {
  if (a->r->stamp != b->r->stamp)
    return a->r->stamp < b->r->stamp;
  return a->th < b->th;
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

static void report_drops(rt_space *sp, rt_sink sink, void *ctx) {
  uint64_t d = LD(&sp->dropped);
  if (d == sp->dropped_reported)
    return;
  char msg[96];
  rt_arg a = {0, d - sp->dropped_reported, NULL};
  size_t n = rt_format(msg, sizeof msg,
                       "vprobe: %u output records or probe fires dropped\n",
                       &a, 1);
  sp->dropped_reported = d;
  sink(ctx, RT_ERR, msg, n);
}

/* The stamp below which every record is visible (see the top comment);
 * fills cs with the threads' cursors, returns the bound. */
static uint64_t snapshot(rt_space *sp, cursor *cs, uint32_t *ncs,
                         uint64_t upto) {
  /* bounds are inclusive (a later record may carry the same stamp), so
   * the limit, exclusive, is one more */
  uint64_t now = rt_clock(), limit = upto < now + 1 ? upto : now + 1;
  __atomic_thread_fence(__ATOMIC_SEQ_CST); /* the clock before the seqs */
  uint64_t *slots = rt_slots(sp);
  uint32_t n = 0;
  for (uint32_t i = 0; i < sp->max_threads; i++) {
    rt_thread *th = rt_block(sp, i);
    if (!LDA(&slots[i]) || !LDA(&th->ready))
      continue;
    uint64_t seq = __atomic_load_n(&th->seq, __ATOMIC_SEQ_CST);
    if (seq & 1) {
      if (seq != th->last_seq)
        th->floor = sp->drain_prev;
      limit = th->floor + 1 < limit ? th->floor + 1 : limit;
    }
    th->last_seq = seq;
    cs[n].th = th;
    cs[n].pos = LD(&th->tail);
    cs[n].end = LDA(&th->head);
    n++;
  }
  sp->drain_prev = now;
  *ncs = n;
  return limit;
}

size_t rt_drain(rt_space *sp, uint64_t upto, rt_sink sink, void *ctx) {
  uint32_t zero = 0, nt = sp->max_threads, ncs = 0;
  if (!CAS(&sp->draining, &zero, 1))
    return 0;
  cursor *cs = malloc(sizeof *cs * nt);
  cursor **heap = malloc(sizeof *heap * nt);
  size_t n = 0, done = 0;
  if (cs && heap)
    upto = snapshot(sp, cs, &ncs, upto);
  for (uint32_t i = 0; i < ncs; i++) {
    cursor *c = &cs[i];
    peek(sp, c);
    if (c->r && c->r->stamp < upto)
      heap[n++] = c;
    else
      STR_(&c->th->tail, c->pos); /* consume leading pads */
  }
  for (size_t i = n / 2; i-- > 0;)
    sift_down(heap, n, i);
  while (n) {
    cursor *c = heap[0];
    sink(ctx, c->r->stream, c->r + 1, c->r->len);
    done++;
    c->pos += rec_bytes(c->r->len);
    peek(sp, c);
    STR_(&c->th->tail, c->pos);
    if (!c->r || c->r->stamp >= upto)
      heap[0] = heap[--n];
    sift_down(heap, n, 0);
  }
  report_drops(sp, sink, ctx);
  free(cs);
  free(heap);
  STR_(&sp->draining, 0);
  return done;
}
