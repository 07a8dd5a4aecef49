/*
 * rt.h - the VP runtime's shared structures: the space, per-thread blocks,
 * output rings, aggregates, bags and the formatter.  This header is the whole
 * interface of src/rt/.
 *
 * A space is one contiguous region of memory laid out from an rt_layout.  It
 * holds no pointers, only offsets, so the same bytes can be mapped into a
 * probed process (where probes write) and into vprobe (which drains output).
 * It is the only mutable state the runtime shares between threads.
 *
 * Nothing on the probe-fire path blocks, takes a lock or calls malloc:
 * per-thread blocks are claimed lock-free, aggregates are per-thread tables
 * merged when printed, bags are lock-free, output goes to one single-producer
 * ring per thread.
 */
#ifndef RT_H
#define RT_H

#include <stddef.h>
#include <stdint.h>

#define RT_STR 256 /* string slot size, with the NUL */

typedef struct rt_space rt_space;
typedef struct rt_thread rt_thread;

typedef struct rt_aggr_shape {
  uint8_t nint, nstr; /* 0..4 each */
} rt_aggr_shape;

typedef struct rt_layout {
  uint32_t nints, nstrs;       /* per-thread globals */
  const uint64_t *int_init;    /* nints values, or NULL for zeros */
  const char *const *str_init; /* nstrs strings (NULL entry = ""), or NULL */
  uint32_t nshared;            /* pervm/pervmk/perhost integers */
  const uint64_t *shared_init;
  uint32_t naggrs;
  const rt_aggr_shape *aggrs;
  const char *const *aggr_names;
  uint32_t nbags;
  const uint32_t *bag_sizes;
  uint32_t max_threads;  /* 0: default 256 */
  uint32_t ring_bytes;   /* per thread; 0: default 256 KiB */
  uint32_t aggr_buckets; /* per thread per aggregate; 0: default 4096 */
} rt_layout;

/* Space. */
size_t rt_space_size(const rt_layout *layout);
/* Lay out a space in mem (rt_space_size bytes, zeroed or not). */
rt_space *rt_space_init(void *mem, size_t size, const rt_layout *layout);
/* Use a space another process laid out (a shared mapping). NULL if the
 * bytes are not a space. */
rt_space *rt_space_attach(void *mem, size_t size);

/* Per-thread block for thread id tid, claimed on first use (lock-free).
 * NULL when every block is taken (the fire is then dropped and counted). */
rt_thread *rt_thread_get(rt_space *sp, uint32_t tid);
rt_space *rt_thread_space(rt_thread *th);
uint64_t *rt_thread_ints(rt_thread *th);        /* nints per-thread globals */
char (*rt_thread_strs(rt_thread *th))[RT_STR];  /* nstrs per-thread strings */
uint64_t *rt_shared_int(rt_space *sp, uint32_t i); /* use with __atomic_* */

/* Output.  Records carry a stamp (rt_clock) and reach the user merged in
 * stamp order across threads. */
enum rt_stream { RT_OUT, RT_ERR, RT_BIN };
uint64_t rt_clock(void); /* CLOCK_MONOTONIC, ns */
/* Periodic timers: after firing a tick due at `next` at time `now`, the
 * next deadline (phase kept; missed ticks are skipped, never burst). */
uint64_t rt_timer_next(uint64_t next, uint64_t period, uint64_t now);
/* Append a record; 0, or -1 if the ring is full (the record is dropped and
 * counted; the drain reports drops on the error stream). */
int rt_emit(rt_thread *th, int stream, const void *data, size_t n);

/* Controller side: take every record stamped before `upto` (UINT64_MAX for
 * all) from every thread's ring, in stamp order, and hand each to sink.
 * Returns the number of records.  One drainer at a time (a second one gets
 * 0).  Records that a thread still writing could precede are held for the
 * next drain, so stamps never go backwards from one drain to the next.  New
 * drops since the last drain are reported as one line on RT_ERR.  For a
 * space only this process writes; rt_view_drain below is for one shared with
 * a process that is not trusted. */
typedef void (*rt_sink)(void *ctx, int stream, const void *data, size_t n);
size_t rt_drain(rt_space *sp, uint64_t upto, rt_sink sink, void *ctx);
uint64_t rt_dropped(rt_space *sp); /* records and fires lost so far */

/* Controller side, for a space shared with a process that must not be
 * trusted (a probed process can write every byte of it).  rt_view_new
 * copies the layout of a space this process just laid out with
 * rt_space_init, before the bytes are shared; from then on no offset, size
 * or count is taken from the shared bytes again.  rt_view_drain is rt_drain
 * against that copy: every value read from the space (slot words, ring
 * head, seq, record headers) is read once and checked, and a space found
 * corrupt ends the drain with rt_view_error set (sticky: later drains
 * return 0).  Garbage inside the rules is merely delivered; a record stamped
 * more than a second past the drain's clock goes out at once rather than
 * hold its ring.  upto == UINT64_MAX means no producer is left: everything
 * published is delivered.  The drainer's own state (consumed bytes, time
 * bounds, reported drops, the one-drainer flag) lives in the view. */
typedef struct rt_view rt_view;
rt_view *rt_view_new(rt_space *sp, size_t size); /* NULL: out of memory */
void rt_view_free(rt_view *v);
rt_space *rt_view_space(rt_view *v);
size_t rt_view_drain(rt_view *v, uint64_t upto, rt_sink sink, void *ctx);
/* Once no process but this one can write the space (its writer is gone):
 * check everything the runtime will read when this process runs probes
 * over it (header and descriptors against the copy, thread slots and
 * blocks, table counters, string keys and their arena offsets, strings),
 * and reset what a dead printer may have left held (aggregate busy flags,
 * merge areas).  0, or -1 with rt_view_error set. */
int rt_view_check(rt_view *v);
/* Why the space was found corrupt ("thread 3 ring: record length 99"), or
 * NULL. */
const char *rt_view_error(const rt_view *v);

/* Aggregates.  Keys: nint integers, nstr strings as declared.  Returns 0, or
 * -1 when this thread's table for the aggregate is full (counted). */
int rt_aggr_add(rt_thread *th, uint32_t id, const uint64_t *ikeys,
                const char *const *skeys, int64_t value);
int rt_aggr_inc(rt_thread *th, uint32_t id, const uint64_t *ikeys,
                const char *const *skeys);
/* Empty an aggregate in every thread (wait-free for inserters). */
void rt_aggr_clear(rt_space *sp, uint32_t id);
/* Print the merged aggregate to th's output stream: logaggr's table when
 * fmt is NULL, else printa's format (docs/vp.md, "Aggregate output").
 * countonly selects the `count pct%` view.  -1 if another thread is
 * printing the same aggregate at this moment (nothing printed). */
int rt_aggr_print(rt_thread *th, uint32_t id, const char *fmt, int countonly);

/* Bags (shared by all threads, lock-free). */
/* 0, or -1 if the bag is full */
int rt_bag_insert(rt_space *sp, uint32_t id, uint64_t key, uint64_t val);
/* 0 and *val, or -1 if no pair has the key */
int rt_bag_remove(rt_space *sp, uint32_t id, uint64_t key, uint64_t *val);
/* Iterate: start with *cursor = 0; 1 while a pair was produced. */
int rt_bag_next(rt_space *sp, uint32_t id, uint32_t *cursor, uint64_t *key,
                uint64_t *val);

/* printf-style formatting of VP values (docs/vp.md, printf formats). */
typedef struct rt_arg {
  int is_str;
  uint64_t i;
  const char *s;
} rt_arg;
/* Writes at most cap-1 bytes and a NUL; returns the length written. */
size_t rt_format(char *out, size_t cap, const char *fmt, const rt_arg *args,
                 int nargs);

#endif
