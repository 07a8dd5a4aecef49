/*
 * aggrfmt.c - printing a merged aggregate: logaggr's table and printa's
 * formats (docs/vp.md, "Aggregate output").
 *
 * A print is planned as a row of items, each literal text or a cell showing
 * one field through a conversion.  The default table is the empty format
 * with every field appended.  Unless the format has '=' conversions (printed
 * as written), cells are padded to a column width taken from the header and
 * the data, so every layout comes out aligned; a string key with newlines
 * (a stack trace) spans several lines.  Runs inside probes: no
 * malloc, no stdio; scratch lives in the aggregate's merge area.
 */
#include "rt/rtint.h"

#include <string.h>

/* Fields: keys are 0..7 (integer keys first), then the values.  F_BAD is a
 * selector naming no field (an empty cell), F_NONE no selector at all. */
enum { F_AVG = 8, F_COUNT, F_MIN, F_MAX, F_SUM, F_LATEST, F_PCT, F_BAD, F_NONE };

typedef struct item {
  const char *lit; /* literal text, or NULL for a cell */
  uint32_t litn;
  int field;
  rt_spec spec;
  int width, left;
} item;

typedef struct plan {
  const rt_aggr_desc *a;
  int countonly, raw, nitems;
  item it[RT_MAXCOL * 2];
  int64_t total;
} plan;

static const char *const vnames[] = {"avg", "count", "min", "max",
                                     "sum", "latest", "pct%"};

static int nkeys(const rt_aggr_desc *a) { return (int)(a->nint + a->nstr); }
static int is_key(int f) { return f < F_AVG; }
static int is_strkey(const rt_aggr_desc *a, int f) {
  return is_key(f) && f >= (int)a->nint;
}

/* The fields in default order: keys, avg, count, min, max, pct (count-only:
 * keys, count, pct).  Returns how many. */
static int default_fields(const plan *p, int *f) {
  int n = 0;
  for (int k = 0; k < nkeys(p->a); k++)
    f[n++] = k;
  if (!p->countonly) {
    f[n++] = F_AVG;
    f[n++] = F_COUNT;
    f[n++] = F_MIN;
    f[n++] = F_MAX;
  } else {
    f[n++] = F_COUNT;
  }
  f[n++] = F_PCT;
  return n;
}

static void field_name(const rt_aggr_desc *a, int f, char *out, size_t cap) {
  rt_arg arg = {0, 0, NULL};
  if (!is_key(f)) {
    rt_format(out, cap, vnames[f - F_AVG], NULL, 0);
  } else if (f < (int)a->nint) {
    arg.i = (uint64_t)f;
    rt_format(out, cap, "intKey%d", &arg, 1);
  } else {
    arg.i = (uint64_t)(f - (int)a->nint);
    rt_format(out, cap, "strKey%d", &arg, 1);
  }
}

/* "%N$" or "%name$" right after the '%'; F_NONE if there is none. */
static int parse_selector(const rt_aggr_desc *a, const char **f) {
  const char *s = *f, *d = strchr(s, '$');
  if (!d || d == s || d - s > 8)
    return F_NONE;
  int n = 0, digits = 1;
  for (const char *c = s; c < d; c++) {
    if (*c < '0' || *c > '9')
      digits = 0;
    else
      n = n * 10 + (*c - '0');
  }
  int field = F_NONE;
  if (digits) {
    field = n < nkeys(a) ? n : F_NONE;
  } else {
    for (int v = 0; v < 7; v++)
      if ((size_t)(d - s) == strcspn(vnames[v], "%") &&
          !strncmp(s, vnames[v], (size_t)(d - s)))
        field = F_AVG + v;
    if (field == F_NONE)
      return F_NONE;
  }
  *f = d + 1;
  return field == F_NONE ? F_BAD : field;
}

static item *add_item(plan *p) {
  if (p->nitems >= (int)(sizeof p->it / sizeof p->it[0]))
    return NULL;
  item *it = &p->it[p->nitems++];
  memset(it, 0, sizeof *it);
  it->spec.width = it->spec.prec = -1;
  return it;
}

static void add_lit(plan *p, const char *s, size_t n) {
  item *it = n ? add_item(p) : NULL;
  if (it) {
    it->lit = s;
    it->litn = (uint32_t)n;
  }
}

/* A default-form cell: hex keys, left-aligned strings, decimal values. */
static void add_default(plan *p, int f, int prev) {
  if (prev >= 0)
    add_lit(p, "  ", is_key(prev) && is_key(f) ? 1 : 2);
  item *it = add_item(p);
  if (!it)
    return;
  it->field = f;
  it->spec.conv = is_strkey(p->a, f) ? 's' : is_key(f) ? 'p' : 'd';
  it->left = is_strkey(p->a, f);
}

/* Parse fmt into items; fields without a selector are taken in order, and
 * unless a selector or '=' appears, the fields left out follow. */
static void plan_format(plan *p, const char *fmt) {
  int order[16], norder = default_fields(p, order), next = 0, exact = 0;
  int last = -1;
  if (!fmt)
    fmt = "";
  const char *lit = fmt;
  while (*fmt) {
    if (*fmt != '%') {
      fmt++;
      continue;
    }
    add_lit(p, lit, (size_t)(fmt - lit));
    const char *f = fmt + 1;
    if (*f == '%') {
      add_lit(p, "%", 1);
      lit = fmt = f + 1;
      continue;
    }
    int field = parse_selector(p->a, &f);
    rt_spec sp;
    if (!rt_spec_parse(&f, &sp)) { /* not a conversion: keep the text */
      lit = fmt;
      fmt = f;
      continue;
    }
    if (field != F_NONE)
      exact = 1;
    else
      field = next < norder - 1 ? order[next++] : F_BAD;
    if (sp.eq)
      p->raw = 1;
    item *it = add_item(p);
    if (it) {
      it->field = last = field;
      it->spec = sp;
      it->left = sp.minus || (is_strkey(p->a, field) && sp.width < 0);
    }
    lit = fmt = f;
  }
  add_lit(p, lit, (size_t)(fmt - lit));
  if (exact || p->raw)
    return;
  for (; next < norder; next++) {
    add_default(p, order[next], last);
    last = order[next];
  }
}

static int64_t avg_of(const rt_bucket *e) {
  return e->count ? e->sum / e->count : 0;
}

static void pct_text(const plan *p, const rt_bucket *e, char *out, size_t cap) {
  int64_t v = p->countonly ? e->count : e->sum;
  double pc = p->total ? 100.0 * (double)v / (double)p->total : 0.0;
  int64_t tenths = (int64_t)(pc * 10 + (pc < 0 ? -0.5 : 0.5));
  rt_arg args[3] = {{1, 0, tenths < 0 ? "-" : ""},
                    {0, (uint64_t)((tenths < 0 ? -tenths : tenths) / 10), 0},
                    {0, (uint64_t)((tenths < 0 ? -tenths : tenths) % 10), 0}};
  rt_format(out, cap, "%s%d.%d%%", args, 3);
}

/* The value of field f of entry e as a formatter argument. */
static rt_arg field_arg(const plan *p, rt_merge *m, rt_bucket *e, int f,
                        char *tmp, size_t cap) {
  rt_arg a = {0, 0, NULL};
  const rt_aggr_desc *d = p->a;
  if (is_strkey(d, f)) {
    a.is_str = 1;
    a.s = m->arena + rt_bsoffs(e, d)[f - (int)d->nint];
  } else if (is_key(f)) {
    a.i = rt_bkeys(e)[f];
  } else if (f == F_PCT) {
    pct_text(p, e, tmp, cap);
    a.is_str = 1;
    a.s = tmp;
  } else if (f == F_BAD) {
    a.is_str = 1;
    a.s = "";
  } else {
    int64_t v[] = {avg_of(e), e->count, e->min, e->max, e->sum, e->latest};
    a.i = (uint64_t)v[f - F_AVG];
  }
  return a;
}

/* One cell's text, as its conversion prints it (hex always shows 0x, as the
 * default table's keys do). */
static size_t cell_text(const plan *p, rt_merge *m, rt_bucket *e,
                        const item *it, char *out, size_t cap) {
  char tmp[32];
  rt_arg a = field_arg(p, m, e, it->field, tmp, sizeof tmp);
  rt_spec sp = it->spec;
  if (sp.conv == 'x' || sp.conv == 'X')
    sp.hash = 1;
  if (sp.eq)
    sp.width = -1;
  return rt_format_one(out, cap, &sp, &a);
}

static size_t header_text(const plan *p, const item *it, char *out,
                          size_t cap) {
  char name[16];
  rt_arg a = {1, 0, name};
  name[0] = 0;
  if (it->field != F_BAD)
    field_name(p->a, it->field, name, sizeof name);
  rt_spec sp = it->spec;
  sp.conv = 's';
  sp.prec = -1;
  sp.zero = 0;
  return rt_format_one(out, cap, &sp, &a);
}

/* Appends to the merge area's text buffer, flushing whole lines. */
typedef struct out {
  rt_thread *th;
  char *buf;
  size_t len, line, limit; /* flush past limit: small rings get small writes */
} out;

static void flush(out *o) {
  if (o->len)
    rt_emit(o->th, RT_OUT, o->buf, o->len);
  o->len = o->line = 0;
}

static void out_put(out *o, const char *s, size_t n, int width, int left) {
  size_t padn = width > (int)n ? (size_t)width - n : 0;
  for (size_t k = 0; k < padn + n; k++) {
    if (o->len >= RT_LINE - 2)
      return; /* over-long line: truncated */
    int is_pad = left ? k >= n : k < padn;
    o->buf[o->len++] = is_pad ? ' ' : s[left ? k : k - padn];
  }
}

static void end_line(out *o) {
  while (o->len > o->line && o->buf[o->len - 1] == ' ')
    o->len--;
  if (o->len == o->line || o->buf[o->len - 1] != '\n')
    o->buf[o->len++] = '\n';
  o->line = o->len;
  if (o->len > o->limit) /* lines up to RT_LINE / 2 always fit whole */
    flush(o);
}

/* Multi-line cells (stack traces as string keys, seed 002 section 3.4):
 * a cell's text splits at newlines; the other cells of the row go on its
 * middle line.  Segment `line` of text s (length n), or NULL. */
static const char *segment(const char *s, size_t n, int line, size_t *len) {
  const char *end = s + n;
  if (n && end[-1] == '\n')
    end--;
  for (; line > 0; line--) {
    const char *nl = memchr(s, '\n', (size_t)(end - s));
    if (!nl)
      return NULL;
    s = nl + 1;
  }
  const char *nl = memchr(s, '\n', (size_t)(end - s));
  *len = (size_t)((nl ? nl : end) - s);
  return s;
}

static int nsegments(const char *s, size_t n) {
  size_t len;
  int k = 0;
  while (k < 64 && segment(s, n, k, &len))
    k++;
  return k;
}

static int widest(const char *s, size_t n) {
  size_t len, w = 0;
  for (int k = 0; k < 64 && segment(s, n, k, &len); k++)
    w = len > w ? len : w;
  return (int)w;
}

static rt_bucket *row_entry(const plan *p, rt_merge *m, uint32_t r) {
  return (rt_bucket *)(m->entries + (size_t)m->idx[r] * p->a->bucket_size);
}

/* Widths from the header and every row. */
static void measure(plan *p, rt_merge *m) {
  char buf[RT_STR + 64];
  for (int i = 0; i < p->nitems; i++) {
    item *it = &p->it[i];
    if (it->lit)
      continue;
    it->width = (int)header_text(p, it, buf, sizeof buf);
    for (uint32_t r = 0; r < m->n; r++) {
      size_t n = cell_text(p, m, row_entry(p, m, r), it, buf, sizeof buf);
      int w = widest(buf, n);
      it->width = w > it->width ? w : it->width;
    }
  }
}

static size_t row_cell(plan *p, rt_merge *m, rt_bucket *e, item *it,
                       char *buf, size_t cap) {
  return e ? cell_text(p, m, e, it, buf, cap) : header_text(p, it, buf, cap);
}

/* The header (e NULL) or one bucket's row, as one or more lines. */
static void print_row(plan *p, rt_merge *m, rt_bucket *e, out *o) {
  char buf[RT_STR + 64];
  int height = 1;
  for (int i = 0; !p->raw && i < p->nitems; i++)
    if (!p->it[i].lit) {
      int k = nsegments(buf, row_cell(p, m, e, &p->it[i], buf, sizeof buf));
      height = k > height ? k : height;
    }
  int mid = (height - 1) / 2;
  for (int line = 0; line < height; line++) {
    for (int i = 0; i < p->nitems; i++) {
      item *it = &p->it[i];
      if (it->lit) { /* separators: blank off the middle line */
        out_put(o, line == mid ? it->lit : "", line == mid ? it->litn : 0,
                line == mid ? 0 : (int)it->litn, 0);
        continue;
      }
      size_t n = row_cell(p, m, e, it, buf, sizeof buf), len = n;
      const char *s = buf;
      if (height > 1) {
        int multi = nsegments(buf, n) > 1;
        s = multi || line == mid ? segment(buf, n, multi ? line : 0, &len)
                                 : NULL;
        if (!s)
          s = "", len = 0;
      }
      out_put(o, s, len, p->raw ? 0 : it->width, it->left);
    }
    end_line(o);
  }
}

/* Row order: pct ascending, then keys. */
static int row_before(const plan *p, rt_merge *m, uint32_t x, uint32_t y) {
  const rt_aggr_desc *a = p->a;
  rt_bucket *ex = (rt_bucket *)(m->entries + (size_t)x * a->bucket_size);
  rt_bucket *ey = (rt_bucket *)(m->entries + (size_t)y * a->bucket_size);
  int64_t vx = p->countonly ? ex->count : ex->sum;
  int64_t vy = p->countonly ? ey->count : ey->sum;
  if (vx != vy)
    return vx < vy;
  for (uint32_t k = 0; k < a->nint; k++)
    if (rt_bkeys(ex)[k] != rt_bkeys(ey)[k])
      return rt_bkeys(ex)[k] < rt_bkeys(ey)[k];
  for (uint32_t k = 0; k < a->nstr; k++) {
    int c = strcmp(m->arena + rt_bsoffs(ex, a)[k],
                   m->arena + rt_bsoffs(ey, a)[k]);
    if (c)
      return c < 0;
  }
  return 0;
}

static void sift(const plan *p, rt_merge *m, uint32_t n, uint32_t i) {
  uint32_t *v = m->idx;
  for (;;) {
    uint32_t l = 2 * i + 1, big = i;
    if (l < n && row_before(p, m, v[big], v[l]))
      big = l;
    if (l + 1 < n && row_before(p, m, v[big], v[l + 1]))
      big = l + 1;
    if (big == i)
      return;
    uint32_t t = v[i];
    v[i] = v[big];
    v[big] = t;
    i = big;
  }
}

static void sort_rows(const plan *p, rt_merge *m) { /* heapsort: no malloc */
  uint32_t n = m->n;
  for (uint32_t i = n / 2; i-- > 0;)
    sift(p, m, n, i);
  for (uint32_t end = n; end-- > 1;) {
    uint32_t t = m->idx[0];
    m->idx[0] = m->idx[end];
    m->idx[end] = t;
    sift(p, m, end, 0);
  }
}

static void report_lost(rt_thread *th, rt_aggr_desc *a, uint32_t hidden) {
  uint64_t lost = LD(&a->lost);
  char msg[160];
  rt_arg args[2] = {{1, 0, a->name}, {0, lost - a->lost_reported, 0}};
  if (lost != a->lost_reported) {
    size_t n = rt_format(msg, sizeof msg,
                         "vprobe: aggregate %s: %u samples dropped "
                         "(per-thread table full)\n", args, 2);
    rt_emit(th, RT_ERR, msg, n);
    a->lost_reported = lost;
  }
  if (hidden) {
    args[1].i = hidden;
    size_t n = rt_format(msg, sizeof msg,
                         "vprobe: aggregate %s: %u buckets not shown "
                         "(merge area full)\n", args, 2);
    rt_emit(th, RT_ERR, msg, n);
  }
}

int rt_aggr_print(rt_thread *th, uint32_t id, const char *fmt, int countonly) {
  rt_space *sp = rt_space_of(th);
  if (id >= sp->naggrs)
    return -1;
  rt_aggr_desc *a = &rt_aggrs(sp)[id];
  uint32_t zero = 0;
  if (!CAS(&a->busy, &zero, 1))
    return -1; /* another thread is printing it */
  rt_merge m;
  rt_aggr_merge(sp, id, &m);
  plan p;
  memset(&p, 0, sizeof p);
  p.a = a;
  p.countonly = countonly;
  p.total = countonly ? m.total_count : m.total_sum;
  plan_format(&p, fmt);
  sort_rows(&p, &m);
  size_t limit = sp->ring_bytes / 8 < RT_LINE / 2 ? sp->ring_bytes / 8
                                                  : RT_LINE / 2;
  out o = {th, m.text, 0, 0, limit};
  if (!p.raw) {
    measure(&p, &m);
    print_row(&p, &m, NULL, &o);
  }
  for (uint32_t r = 0; r < m.n; r++)
    print_row(&p, &m, row_entry(&p, &m, r), &o);
  flush(&o);
  report_lost(th, a, m.hidden);
  STR_(&a->busy, 0);
  return 0;
}
