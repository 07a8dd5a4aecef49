/*
 * rtint.h - the runtime's private layout, shared by the modules of src/rt/.
 * Nothing outside src/rt/ includes it; rt.h is the interface.
 *
 * Layout of a space (every number is an offset from the space's first byte,
 * every area 64-byte aligned):
 *
 *   rt_space header | int inits | string inits | shared ints
 *   | aggregate descriptors | bag descriptors | thread slots (one u64 each)
 *   | thread blocks | per-aggregate merge areas | bag slots
 *
 * A thread block is: rt_thread header (ring head and tail on their own
 * cache lines) | ints | strings | ring bytes | one table per aggregate.
 * A table is: rt_table header | buckets | string-key arena.
 */
#ifndef RTINT_H
#define RTINT_H

#include "rt/rt.h"

#define RT_MAGIC 0x31304550534b5056ull /* "VPKSPE01" */
#define RT_ALIGN(x) (((x) + 63) & ~(uint64_t)63)
#define RT_LINE 4096       /* printer's text buffer per aggregate */
#define RT_MAXCOL 32       /* columns of a printed aggregate */
#define RT_STRAVG 32       /* arena bytes per string key per bucket */

/* Relaxed/acquire/release shorthands: every shared word goes through these. */
#define LD(p) __atomic_load_n((p), __ATOMIC_RELAXED)
#define LDA(p) __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define ST(p, v) __atomic_store_n((p), (v), __ATOMIC_RELAXED)
#define STR_(p, v) __atomic_store_n((p), (v), __ATOMIC_RELEASE)
#define CAS(p, e, d)                                                          \
  __atomic_compare_exchange_n((p), (e), (d), 0, __ATOMIC_ACQ_REL,              \
                              __ATOMIC_ACQUIRE)

struct rt_space {
  uint64_t magic, size;
  uint32_t nints, nstrs, nshared, naggrs, nbags, max_threads;
  uint32_t ring_bytes, aggr_buckets;
  uint64_t block_size;
  uint64_t off_int_init, off_str_init, off_shared, off_aggrs, off_bags;
  uint64_t off_slots, off_blocks;
  uint64_t block_ints, block_strs, block_ring; /* inside a block */
  uint64_t dropped;          /* atomic: records and fires lost */
  uint64_t dropped_reported; /* drainer only */
  uint64_t drain_prev;       /* drainer: clock at the previous drain */
  uint32_t draining;         /* one drainer at a time */
  uint64_t drops_at;         /* drainer: clock of the last drop report */
};

struct rt_thread {
  uint64_t self_off; /* this block's offset in the space */
  uint32_t tid, ready;
  char pad0[48];
  uint64_t head; /* producer: bytes ever written */
  uint64_t seq;  /* producer: odd while an rt_emit is under way */
  char pad1[48];
  uint64_t tail;     /* consumer: bytes ever consumed */
  uint64_t last_seq; /* drainer: seq seen by the last drain */
  uint64_t floor;    /* drainer: lower bound of the pending record's stamp */
  char pad2[40];
};

/* A ring record's header; the sink is handed the bytes right after it. */
typedef struct rt_rec {
  uint64_t stamp;
  uint32_t len;
  uint16_t stream, flags;
} rt_rec;
static inline uint64_t rt_rec_stamp(const void *data) {
  return ((const rt_rec *)data - 1)->stamp;
}

typedef struct rt_aggr_desc {
  char name[64];
  uint32_t nint, nstr;
  uint32_t gen;         /* current generation, from 1 */
  uint32_t busy;        /* a printer holds the merge area */
  uint32_t bucket_size; /* bytes per bucket */
  uint32_t arena_size;  /* string-key bytes per thread table */
  uint32_t serial;      /* print counter, stamps merge entries */
  uint32_t pad;
  uint64_t table_off; /* inside a thread block */
  uint64_t merge_off; /* inside the space */
  uint64_t lost;      /* samples refused by full tables */
  uint64_t lost_reported; /* by the printer (holding busy) */
} rt_aggr_desc;

typedef struct rt_table {
  uint32_t gen, used, arena_used, pad;
  char pad1[48];
} rt_table;

/* A bucket: this header, then nint u64 keys, then nstr u32 arena offsets. */
typedef struct rt_bucket {
  uint32_t gen, hash;
  int64_t count, sum, min, max, latest;
} rt_bucket;

typedef struct rt_bag_desc {
  uint32_t cap, pad;
  uint64_t off; /* slots: cap rt_bag_slot */
} rt_bag_desc;

typedef struct rt_bag_slot {
  uint64_t state; /* 0 free, 1 held by an inserter/remover, 2 full */
  uint64_t key, val;
} rt_bag_slot;

static inline char *rt_base(rt_space *sp) { return (char *)sp; }
static inline rt_aggr_desc *rt_aggrs(rt_space *sp) {
  return (rt_aggr_desc *)(rt_base(sp) + sp->off_aggrs);
}
static inline rt_bag_desc *rt_bags(rt_space *sp) {
  return (rt_bag_desc *)(rt_base(sp) + sp->off_bags);
}
static inline uint64_t *rt_slots(rt_space *sp) {
  return (uint64_t *)(rt_base(sp) + sp->off_slots);
}
static inline rt_thread *rt_block(rt_space *sp, uint32_t i) {
  return (rt_thread *)(rt_base(sp) + sp->off_blocks + i * sp->block_size);
}
static inline rt_space *rt_space_of(rt_thread *th) {
  return (rt_space *)((char *)th - th->self_off);
}
static inline unsigned char *rt_ring(rt_space *sp, rt_thread *th) {
  return (unsigned char *)th + sp->block_ring;
}
static inline rt_table *rt_table_of(rt_thread *th, const rt_aggr_desc *a) {
  return (rt_table *)((char *)th + a->table_off);
}
static inline uint64_t *rt_bkeys(rt_bucket *b) { return (uint64_t *)(b + 1); }
static inline uint32_t *rt_bsoffs(rt_bucket *b, const rt_aggr_desc *a) {
  return (uint32_t *)(rt_bkeys(b) + a->nint);
}

/* ring.c: the drain, over a layout the drainer trusts.  Everything the
 * drainer keeps about a ring (what it consumed, the seq and floor of the
 * time bound) is in ds, one per thread block, so a space written by a
 * process we do not trust cannot steer it; the shared tail is only told to
 * the producer.  Values read from the space are checked against lay; a
 * violation stops the drain with a message in err (err[0] set). */
typedef struct rt_dstate {
  uint64_t tail, last_seq, floor;
} rt_dstate;
typedef struct rt_drainer {
  const rt_space *lay; /* trusted copy of the header */
  char *base;          /* the space's bytes */
  rt_dstate *ds;       /* lay->max_threads */
  uint64_t drain_prev, dropped_reported;
  uint64_t drops_at; /* clock of the last drop report */
  uint64_t now; /* clock at this drain's snapshot */
  int last_all;  /* upto UINT64_MAX: no producer left, take everything */
  char err[160];
} rt_drainer;
size_t rt_drain_core(rt_drainer *d, uint64_t upto, rt_sink sink, void *ctx);

/* view.c: the controller's trusted copy of a space it laid out. */
struct rt_view {
  rt_space *sp;          /* the shared bytes */
  size_t size;           /* bytes mapped at sp */
  rt_space lay;          /* header as laid out */
  rt_aggr_desc *aggrs;   /* descriptors as laid out (naggrs) */
  rt_bag_desc *bags;     /* (nbags) */
  rt_drainer d;
  int draining;
};

/* format.c: one conversion, for the aggregate printer. */
typedef struct rt_spec {
  char minus, plus, space, hash, zero, eq;
  int width, prec; /* -1: none */
  char conv;
} rt_spec;
/* Parse flags, width, precision, length and conversion after a '%' at *fmt
 * (no '*'); advances *fmt.  0 if the conversion is not one we know. */
int rt_spec_parse(const char **fmt, rt_spec *sp);
/* Format one value into out (NUL-terminated); returns its length. */
size_t rt_format_one(char *out, size_t cap, const rt_spec *sp,
                     const rt_arg *a);

/* aggr.c: merge every thread's table into the aggregate's merge area.
 * Returns the number of entries (their indices in *idx), *total the sum of
 * all values (or counts), *hidden what did not fit. */
typedef struct rt_merge {
  unsigned char *entries; /* bucket_size each */
  char *arena;
  uint32_t *idx;
  char *text;
  uint32_t n, hidden;
  int64_t total_sum, total_count;
} rt_merge;
void rt_aggr_merge(rt_space *sp, uint32_t id, rt_merge *m);

#endif
