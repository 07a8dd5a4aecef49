/*
 * format.c - printf for VP values, without stdio or malloc (it runs inside
 * probes).  Integers are 64-bit; the compiler checks formats against
 * arguments, but a mismatch here must still never crash: a missing argument
 * is 0 or "", a %s given an integer prints the integer, an integer
 * conversion given a string prints the string.
 */
#include "rt/rtint.h"

#include <string.h>

typedef struct obuf {
  char *p;
  size_t cap, len; /* len never exceeds cap-1 */
} obuf;

static void put(obuf *o, char c) {
  if (o->len + 1 < o->cap)
    o->p[o->len++] = c;
}
static void puts_n(obuf *o, const char *s, size_t n) {
  for (size_t i = 0; i < n; i++)
    put(o, s[i]);
}
static void pad(obuf *o, char c, long n) {
  for (; n > 0; n--)
    put(o, c);
}

static size_t bounded_len(const char *s, long prec) {
  size_t n = 0;
  while (s[n] && (prec < 0 || (long)n < prec))
    n++;
  return n;
}

static void fmt_str(obuf *o, const rt_spec *sp, const char *s) {
  if (!s)
    s = "";
  long n = (long)bounded_len(s, sp->prec);
  long w = sp->width > n ? sp->width - n : 0;
  if (!sp->minus)
    pad(o, ' ', w);
  puts_n(o, s, (size_t)n);
  if (sp->minus)
    pad(o, ' ', w);
}

static void fmt_int(obuf *o, const rt_spec *sp, uint64_t v) {
  char conv = sp->conv, digits[32], prefix[3] = {0};
  int base = 10, signed_ = conv == 'd' || conv == 'i', nd = 0, np = 0;
  const char *set = conv == 'X' ? "0123456789ABCDEF" : "0123456789abcdef";
  if (conv == 'x' || conv == 'X' || conv == 'p')
    base = 16;
  else if (conv == 'o')
    base = 8;
  uint64_t mag = v;
  if (signed_ && (int64_t)v < 0) {
    mag = -v;
    prefix[np++] = '-';
  } else if (signed_ && sp->plus) {
    prefix[np++] = '+';
  } else if (signed_ && sp->space) {
    prefix[np++] = ' ';
  }
  for (uint64_t m = mag; m; m /= base)
    digits[nd++] = set[m % base];
  long prec = sp->prec;
  if (prec < 0 && nd == 0)
    prec = 1; /* "0", unless an explicit precision of 0 asks for nothing */
  if (conv == 'p' || (sp->hash && base == 16 && mag)) {
    prefix[np++] = '0';
    prefix[np++] = conv == 'X' ? 'X' : 'x';
  }
  if (sp->hash && base == 8 && prec <= nd && (nd == 0 || digits[nd - 1] != '0'))
    prec = nd + 1;
  long zeros = prec > nd ? prec - nd : 0;
  long body = np + zeros + nd;
  long w = sp->width > body ? sp->width - body : 0;
  if (sp->zero && !sp->minus && sp->prec < 0) {
    zeros += w; /* the 0 flag pads between the sign/prefix and the digits */
    w = 0;
  }
  if (!sp->minus)
    pad(o, ' ', w);
  puts_n(o, prefix, (size_t)np);
  pad(o, '0', zeros);
  while (nd)
    put(o, digits[--nd]);
  if (sp->minus)
    pad(o, ' ', w);
}

static void fmt_conv(obuf *o, const rt_spec *sp, const rt_arg *a) {
  static const rt_arg none_i = {0, 0, NULL}, none_s = {1, 0, ""};
  if (!a) /* missing: 0, or "" for %s */
    a = sp->conv == 's' ? &none_s : &none_i;
  if (sp->conv == 's' || (a->is_str && sp->conv != 'c')) {
    if (a->is_str) {
      fmt_str(o, sp, a->s);
    } else { /* %s of an integer: the integer, as %d with the same flags */
      rt_spec d = *sp;
      d.conv = 'd';
      d.prec = -1;
      fmt_int(o, &d, a->i);
    }
  } else if (sp->conv == 'c') {
    char c[2] = {a->is_str ? (a->s ? a->s[0] : 0) : (char)a->i, 0};
    long w = sp->width > 1 ? sp->width - 1 : 0;
    if (!sp->minus)
      pad(o, ' ', w);
    put(o, c[0]);
    if (sp->minus)
      pad(o, ' ', w);
  } else {
    fmt_int(o, sp, a->i);
  }
}

static int is_conv(char c) { return c && strchr("diuxXocsp", c) != NULL; }

/* Flags; '=' is the aggregate printer's "no header, no padding". */
static void parse_flags(const char **f, rt_spec *sp) {
  for (;; (*f)++) {
    switch (**f) {
    case '-': sp->minus = 1; continue;
    case '+': sp->plus = 1; continue;
    case ' ': sp->space = 1; continue;
    case '#': sp->hash = 1; continue;
    case '0': sp->zero = 1; continue;
    case '=': sp->eq = 1; continue;
    }
    return;
  }
}

static int parse_num(const char **f) {
  int n = 0;
  while (**f >= '0' && **f <= '9') {
    if (n < 100000)
      n = n * 10 + (**f - '0');
    (*f)++;
  }
  return n;
}

static void skip_length(const char **f) {
  while (**f && strchr("hlLqjzt", **f))
    (*f)++;
}

int rt_spec_parse(const char **fmt, rt_spec *sp) {
  const char *f = *fmt;
  memset(sp, 0, sizeof *sp);
  sp->width = sp->prec = -1;
  parse_flags(&f, sp);
  if (*f >= '0' && *f <= '9')
    sp->width = parse_num(&f);
  if (*f == '.') {
    f++;
    sp->prec = parse_num(&f);
  }
  skip_length(&f);
  sp->conv = *f;
  if (!is_conv(*f))
    return 0;
  *fmt = f + 1;
  return 1;
}

size_t rt_format_one(char *out, size_t cap, const rt_spec *sp,
                     const rt_arg *a) {
  obuf o = {out, cap, 0};
  fmt_conv(&o, sp, a);
  if (cap)
    out[o.len] = 0;
  return o.len;
}

size_t rt_format(char *out, size_t cap, const char *fmt, const rt_arg *args,
                 int nargs) {
  obuf o = {out, cap, 0};
  int next = 0;
  while (fmt && *fmt) {
    if (*fmt != '%') {
      put(&o, *fmt++);
      continue;
    }
    const char *start = fmt++;
    if (*fmt == '%') {
      put(&o, '%');
      fmt++;
      continue;
    }
    rt_spec sp;
    memset(&sp, 0, sizeof sp);
    sp.width = sp.prec = -1;
    parse_flags(&fmt, &sp);
    if (*fmt == '*') {
      fmt++;
      int64_t w = next < nargs ? (int64_t)args[next].i : 0;
      next++;
      if (w < 0) {
        sp.minus = 1;
        w = -w;
      }
      sp.width = w > 100000 ? 100000 : (int)w;
    } else if (*fmt >= '0' && *fmt <= '9') {
      sp.width = parse_num(&fmt);
    }
    if (*fmt == '.') {
      fmt++;
      if (*fmt == '*') {
        fmt++;
        int64_t p = next < nargs ? (int64_t)args[next].i : 0;
        next++;
        sp.prec = p < 0 ? -1 : p > 100000 ? 100000 : (int)p;
      } else {
        sp.prec = parse_num(&fmt);
      }
    }
    skip_length(&fmt);
    if (!is_conv(*fmt)) { /* unknown: print it as written */
      if (*fmt)
        fmt++;
      puts_n(&o, start, (size_t)(fmt - start));
      continue;
    }
    sp.conv = *fmt++;
    fmt_conv(&o, &sp, next < nargs ? &args[next] : NULL);
    next++;
  }
  if (cap)
    out[o.len] = 0;
  return o.len;
}
