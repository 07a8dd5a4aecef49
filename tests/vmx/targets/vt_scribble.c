/*
 * vt_scribble - a probe target that turns on its prober: it calls
 * scr_tick, finds the region vprobe shared with it (the agent maps a memfd
 * named vprobe-vmx, seen in /proc/self/maps) and writes over it while
 * vprobe drains.
 *   vt_scribble MODE SECONDS
 * MODE: heads   every ring head of the space set to random values
 *       reclen  every ring's next record claims a length of 4294967295
 *       header  the space's layout fields (offsets, sizes, counts) randomized
 *       random  random bytes over the whole space
 *       table   every thread's first aggregate table claims more arena
 *               bytes than it has, then the process exits at once (the
 *               drain never reads that: vprobe's post-mortem check must)
 *       none    nothing (the control run)
 * Prints "ready" once it found the region, "scribbled" once it wrote, and
 * goes on calling scr_tick until SECONDS pass; exit 0 (3: no region seen).
 *
 * Targets are built without the project's headers, so the few offsets it
 * needs are spelled out here; they mirror struct vmx_shared
 * (src/vmx/proto.h) and struct rt_space / rt_thread (src/rt/rtint.h), and
 * the magic numbers are checked before anything is written.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define VMX_MAGIC 0x31585056u
#define RT_MAGIC 0x31304550534b5056ull
/* vmx_shared */
#define SH_SPACE_OFF 32
#define SH_SPACE_LEN 40
/* rt_space */
#define SP_MAX_THREADS 36
#define SP_RING_BYTES 40
#define SP_BLOCK_SIZE 48
#define SP_OFF_AGGRS 80
#define SP_OFF_SLOTS 96
#define SP_OFF_BLOCKS 104
#define SP_BLOCK_RING 128
#define SP_LAYOUT_END 136 /* magic .. block_ring */
/* rt_aggr_desc, rt_table */
#define AG_TABLE_OFF 96
#define TB_ARENA_USED 8
/* rt_thread */
#define TH_HEAD 64
#define TH_TAIL 128

static volatile uint64_t sink;

__attribute__((noinline)) uint64_t scr_tick(uint64_t i) {
  sink += i;
  return sink;
}

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static unsigned char *find_region(void) {
  FILE *f = fopen("/proc/self/maps", "r");
  char line[512];
  unsigned long lo = 0;
  while (f && fgets(line, sizeof line, f))
    if (strstr(line, "/memfd:vprobe-vmx") && sscanf(line, "%lx-", &lo) == 1)
      break;
    else
      lo = 0;
  if (f) fclose(f);
  return (unsigned char *)lo;
}

static uint64_t get64(const unsigned char *p) {
  uint64_t v;
  memcpy(&v, p, 8);
  return v;
}

static uint32_t get32(const unsigned char *p) {
  uint32_t v;
  memcpy(&v, p, 4);
  return v;
}

static uint64_t rnd(uint64_t *s) {
  *s ^= *s << 13, *s ^= *s >> 7, *s ^= *s << 17;
  return *s;
}

static void scribble(const char *mode, unsigned char *sp, uint64_t len,
                     uint64_t *seed) {
  uint32_t nt = get32(sp + SP_MAX_THREADS), ring = get32(sp + SP_RING_BYTES);
  uint64_t bsize = get64(sp + SP_BLOCK_SIZE), slots = get64(sp + SP_OFF_SLOTS);
  uint64_t blocks = get64(sp + SP_OFF_BLOCKS), bring = get64(sp + SP_BLOCK_RING);
  if (!strcmp(mode, "none"))
    return;
  if (!strcmp(mode, "random")) {
    for (uint64_t i = 0; i < len; i += 8) {
      uint64_t v = rnd(seed);
      memcpy(sp + i, &v, len - i < 8 ? len - i : 8);
    }
    return;
  }
  if (!strcmp(mode, "header")) {
    for (int i = 8; i < SP_LAYOUT_END; i += 8) {
      uint64_t v = rnd(seed);
      memcpy(sp + i, &v, 8);
    }
    return;
  }
  for (uint32_t t = 0; t < nt; t++) {
    if (!get64(sp + slots + 8ull * t)) continue;
    unsigned char *th = sp + blocks + t * bsize;
    if (!strcmp(mode, "heads")) {
      uint64_t v = rnd(seed);
      memcpy(th + TH_HEAD, &v, 8);
    } else if (!strcmp(mode, "table")) {
      uint64_t toff = get64(sp + get64(sp + SP_OFF_AGGRS) + AG_TABLE_OFF);
      uint32_t bad = 0xffffffffu;
      memcpy(th + toff + TB_ARENA_USED, &bad, 4);
    } else { /* reclen: the record at the consumer's tail */
      uint64_t tail = get64(th + TH_TAIL);
      uint32_t bad = 4294967295u;
      memcpy(th + bring + (tail & (ring - 1)) + 8, &bad, 4);
    }
  }
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: vt_scribble heads|reclen|header|random|none SECONDS\n");
    return 2;
  }
  double end = now() + atof(argv[2]), start = now();
  unsigned char *r = NULL;
  uint64_t seed = 0x9E3779B97F4A7C15ull ^ (uint64_t)start, i = 0;
  int done = 0;
  setvbuf(stdout, NULL, _IOLBF, 0);
  while (now() < end) {
    for (int k = 0; k < 200; k++) scr_tick(i++);
    if (!r && (r = find_region())) {
      if (get32(r) != VMX_MAGIC || get64(r + get64(r + SH_SPACE_OFF)) != RT_MAGIC) {
        fprintf(stderr, "vt_scribble: the region's layout is not the expected one\n");
        return 3;
      }
      printf("ready\n");
    }
    if (r && !done && now() - start > 0.3) {
      scribble(argv[1], r + get64(r + SH_SPACE_OFF), get64(r + SH_SPACE_LEN), &seed);
      printf("scribbled\n");
      done = 1;
      if (!strcmp(argv[1], "table")) _exit(0);
    }
    struct timespec ts = {0, 1000000};
    nanosleep(&ts, NULL);
  }
  if (!r) return 3;
  return 0;
}
