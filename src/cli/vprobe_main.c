/*
 * vprobe - compile scripts, load them into a target, print what they say.
 *
 *   vprobe [options] [SCRIPT.emt | SCRIPT.vp ...] [-- CMD ARGS...]
 *
 * The pipeline, top to bottom: gather the sources (files, -c, -i, -t),
 * compile Emmett to VP, append the -a reporting probes, verify VP into a
 * program image, pick the engine from the target options, run it.
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "ctl/ctl.h"
#include "emmett/emmett.h"
#include "vp/probename.h"
#include "vp/vp.h"

#define MAXOPT 64

typedef struct opts {
  const char *defs[MAXOPT], *incs[MAXOPT], *files[MAXOPT];
  int ndefs, nincs, nfiles;
  const char *syms[CTL_MAX_VMS]; /* -s, bound to the VMs once all are read */
  int nsyms;
  const char *code;      /* -c */
  int stdin_vp;          /* -i */
  const char *trace;     /* -t [MOD.]FUN[:NARGS] */
  int aggr_each_sec;     /* -a */
  int globals;           /* -g */
  int reset;             /* -r */
  int kernel;            /* -k */
  int max_probes;
  long max_code;
  const char *out, *err, *bin;
  ctl_session s;
} opts;

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig) {
  (void)sig;
  stop_requested = 1;
}

static int usage(void) {
  fputs(
      "usage: vprobe [options] [SCRIPT.emt | SCRIPT.vp ...] [-- CMD ARGS...]\n"
      "  -c CODE        inline Emmett           -i   VP from standard input\n"
      "  -x PID         probe a running process  -- CMD ARGS  launch and probe CMD\n"
      "  -m [NAME:]VM   a QEMU VM: its pid, or gdb=ADDR[,qmp=PATH]; repeat with\n"
      "                 NAMEs for several (probes NAME:GUEST:... pick one)\n"
      "  -k             the host kernel          -s [NAME:]FILE  guest symbols\n"
      "  -d SECONDS     run this long, then unload\n"
      "  -a             log and clear aggregates each second\n"
      "  -p [GLOB]      list probe points        -g   list globals\n"
      "  -r             remove every probe from the target (with -x)\n"
      "  -t [MOD.]FUN[:NARGS]  trace calls of FUN\n"
      "  -o FILE  -e FILE  -b FILE   output, error and binary streams\n"
      "  -D NAME[=VAL]  -I DIR       as for emmett\n"
      "  --destructive  allow fault-injection built-ins   --version\n"
      "  --max-probes=N  --max-code=BYTES   verifier limits (32, 65536)\n"
      "  --cpu-limit PCT  a probe using more of one CPU is disabled (5; 0: no limit)\n",
      stderr);
  return 2;
}

static int bad(const char *what, const char *why) {
  fprintf(stderr, "vprobe: %s: %s\n", what, why);
  return 1;
}

static int bad_line(const char *line) {
  fprintf(stderr, "vprobe: %s\n", line);
  return 1;
}

/* The argument of option argv[*i]: glued ("-d5") or the next word. */
static const char *optval(int argc, char **argv, int *i) {
  if (argv[*i][2]) return argv[*i] + 2;
  if (*i + 1 >= argc) return NULL;
  return argv[++*i];
}

static int parse_number(const char *s, double *out) {
  char *end;
  errno = 0;
  *out = strtod(s, &end);
  return !errno && end != s && !*end && *out >= 0;
}

/* Returns -1 on success, else the exit status to leave with. */
static int parse_args(int argc, char **argv, opts *o) {
  int i;
  char err[512];
  for (i = 1; i < argc; i++) {
    char *a = argv[i];
    if (!strcmp(a, "--")) {
      if (i + 1 >= argc) return usage();
      o->s.cmd = argv + i + 1;
      break;
    }
    if (!strcmp(a, "--version")) {
      printf("vprobe %d.%d\n", VP_VERSION_MAJOR, VP_VERSION_MINOR);
      return 0;
    }
    if (!strcmp(a, "--destructive")) { o->s.destructive = 1; continue; }
    if (!strncmp(a, "--max-probes=", 13)) {
      o->max_probes = atoi(a + 13);
      continue;
    }
    if (!strcmp(a, "--cpu-limit") || !strncmp(a, "--cpu-limit=", 12)) {
      const char *v = a[11] ? a + 12 : (i + 1 < argc ? argv[++i] : NULL);
      double pct;
      if (!v || !parse_number(v, &pct) || pct < 0 || pct > 100)
        return bad(v ? v : a, "--cpu-limit takes a percentage of one CPU (0 for no limit)");
      o->s.cpu_limit_ppm = (uint32_t)(pct * 10000 + 0.5);
      continue;
    }
    if (!strncmp(a, "--max-code=", 11)) {
      o->max_code = atol(a + 11);
      continue;
    }
    if (a[0] != '-' || !a[1]) {
      if (o->nfiles == MAXOPT) return bad(a, "too many scripts");
      o->files[o->nfiles++] = a;
      continue;
    }
    if (a[2] && strchr("iakgr", a[1])) return usage();
    switch (a[1]) {
    case 'i': o->stdin_vp = 1; continue;
    case 'a': o->aggr_each_sec = 1; continue;
    case 'k': o->kernel = 1; continue;
    case 'g': o->globals = 1; continue;
    case 'r': o->reset = 1; continue;
    case 'p':
      o->s.listing = 1;
      if (a[2]) o->s.list_glob = a + 2;
      else if (i + 1 < argc && argv[i + 1][0] != '-') o->s.list_glob = argv[++i];
      continue;
    }
    const char *v = optval(argc, argv, &i);
    if (!v) return usage();
    double num;
    switch (a[1]) {
    case 'c': o->code = v; break;
    case 'D': if (o->ndefs < MAXOPT) o->defs[o->ndefs++] = v; break;
    case 'I': if (o->nincs < MAXOPT) o->incs[o->nincs++] = v; break;
    case 't': o->trace = v; break;
    case 's':
      if (o->nsyms == CTL_MAX_VMS) return bad(v, "too many -s");
      o->syms[o->nsyms++] = v;
      break;
    case 'm':
      if (cli_add_vm(&o->s, v, err, sizeof err) < 0) return bad_line(err);
      break;
    case 'o': o->out = v; break;
    case 'e': o->err = v; break;
    case 'b': o->bin = v; break;
    case 'x':
      if (!parse_number(v, &num) || num < 1 || num != (int)num)
        return bad(v, "not a process id");
      o->s.pid = (int)num;
      break;
    case 'd':
      if (!parse_number(v, &num)) return bad(v, "not a number of seconds");
      o->s.duration = num;
      break;
    default: return usage();
    }
  }
  if (cli_bind_syms(&o->s, o->syms, o->nsyms, err, sizeof err) < 0) return bad_line(err);
  return -1;
}

/* New stream files are private (0600): probes print what they read from
 * the target's memory, often as root. */
static int open_streams(opts *o) {
  char err[PATH_MAX + 128];
  o->s.out = stdout;
  o->s.err = stderr;
  if (o->out && !(o->s.out = cli_open_out(o->out, 0600, err, sizeof err)))
    return bad_line(err);
  if (o->err && !(o->s.err = cli_open_out(o->err, 0600, err, sizeof err)))
    return bad_line(err);
  if (o->bin && !(o->s.bin = cli_open_out(o->bin, 0600, err, sizeof err)))
    return bad_line(err);
  return -1;
}

static int has_suffix(const char *s, const char *suf) {
  size_t n = strlen(s), m = strlen(suf);
  return n >= m && !strcmp(s + n - m, suf);
}

/* Compile every source to VP and join the results into one program. */
static char *gather_vp(opts *o) {
  em_opts eo = {.defines = o->defs, .ndefines = o->ndefs, .incdirs = o->incs,
                .nincdirs = o->nincs, .warn = stderr};
  char path[4096];
  const char *preload[1] = {path};
  if (o->s.nvms && cli_guest_preload(o->s.vms[0].spec, o->s.vms[0].syms, path, sizeof path)) {
    eo.preloads = preload;
    eo.npreloads = 1;
  }
  cli_buf vp = {0};
  char err[1024];
  for (int i = 0; i < o->nfiles; i++) {
    char *text;
    if (access(o->files[i], R_OK) != 0) {
      snprintf(err, sizeof err, "%s: %s", o->files[i], strerror(errno));
      goto fail;
    }
    if (has_suffix(o->files[i], ".vp")) {
      text = cli_read_file(o->files[i], err, sizeof err);
    } else {
      text = em_compile_file(o->files[i], &eo, err, sizeof err);
    }
    if (!text) goto fail;
    cli_buf_add(&vp, text);
    free(text);
  }
  if (o->code) {
    char *text = em_compile_text(o->code, "-c", &eo, err, sizeof err);
    if (!text) goto fail;
    cli_buf_add(&vp, text);
    free(text);
  }
  if (o->stdin_vp) {
    char *text = cli_read_stream(stdin);
    if (!text) { snprintf(err, sizeof err, "<stdin>: cannot read"); goto fail; }
    cli_buf_add(&vp, text);
    free(text);
  }
  if (o->trace) {
    char *text = cli_trace_vp(o->trace, err, sizeof err);
    if (!text) goto fail;
    cli_buf_add(&vp, text);
    free(text);
  }
  if (!vp.len) {
    free(vp.data);
    fprintf(stderr, "vprobe: no script given (a file, -c, -i or -t)\n");
    return NULL;
  }
  return vp.data;
fail:
  free(vp.data);
  fprintf(stderr, "vprobe: %s\n", err);
  return NULL;
}

/* The name VP errors carry: the script itself when the program is one
 * hand-written VP file (or standard input), else the generated program. */
static const char *vp_source_name(const opts *o) {
  int sources = o->nfiles + !!o->code + o->stdin_vp + !!o->trace;
  if (sources != 1 || o->aggr_each_sec) return "<vp>";
  if (o->stdin_vp) return "<stdin>";
  if (o->nfiles == 1 && has_suffix(o->files[0], ".vp")) return o->files[0];
  return "<vp>";
}

static vp_image *build_image(opts *o, const char *vptext, vp_limits *lim) {
  vp_limits_default(lim);
  lim->destructive = o->s.destructive;
  if (o->max_probes > 0) lim->max_probes = o->max_probes;
  if (o->max_code > 0) lim->max_code = (size_t)o->max_code;
  vp_diag d = {{0}, {0}};
  vp_image *img = vp_compile(vptext, strlen(vptext), vp_source_name(o), lim, &d);
  if (d.warning[0]) fprintf(stderr, "vprobe: %s\n", d.warning);
  if (!img) fprintf(stderr, "vprobe: %s\n", d.error);
  return img;
}

static int list_globals(const vp_image *img, FILE *out) {
  char buf[512];
  for (int i = 0; i < vp_image_ndefs(img); i++)
    fprintf(out, "%s\n", vp_image_def(img, i, buf, sizeof buf));
  return 0;
}

/* Every probe of the script must have a target in this run: one that
 * would never fire is refused at load (one line, exit 1), not left idle.
 * Returns -1 when all are served. */
static int all_served(const ctl_session *s, int served, const char *why) {
  if (!s->img || s->listing) return -1;
  for (int i = 0; i < vp_image_nprobes(s->img); i++) {
    const char *name = vp_image_probe(s->img, i);
    if (!(vp_probe_domain(name) & served)) {
      fprintf(stderr, "vprobe: %s: no target for it in this run (%s)\n", name, why);
      return 1;
    }
  }
  return -1;
}

/* The engine follows the target options. */
static int run_engine(opts *o) {
  ctl_session *s = &o->s;
  int rc;
  if (o->kernel) return bad("-k", "the VMK domain is not available in this build");
  if (s->pid || s->cmd) {
    if (s->listing) return cli_vmx_list(s, s->list_glob);
    if ((rc = all_served(s, VP_DOM_VMX | VP_DOM_LOCAL,
                         "a process serves VMX and target-free probes; GUEST and VMM "
                         "probes need -m VM, in a run of their own")) >= 0)
      return rc;
    return cli_vmx_run(s);
  }
  if (s->nvms) {
    if (s->listing) return cli_guest_list(s, s->list_glob);
    if ((rc = all_served(s, VP_DOM_GUEST | VP_DOM_VMM,
                         "a VM serves GUEST and VMM probes; VMX probes need -x PID or "
                         "-- CMD, in a run of their own")) >= 0)
      return rc;
    return cli_guest_run(s);
  }
  if (s->listing) {
    for (const char *const *f = vpn_fixed(VP_DOM_LOCAL); *f; f++)
      if (vpn_glob_match(s->list_glob, *f)) fprintf(s->out, "%s\n", *f);
    return 0;
  }
  return ctl_local_run(s);
}

int main(int argc, char **argv) {
  static opts o;
  o.s.cpu_limit_ppm = 50000; /* 5% of one CPU, unless --cpu-limit says */
  int rc = parse_args(argc, argv, &o);
  if (rc >= 0) return rc;
  if ((rc = cli_check_allowed()) >= 0) return rc;
  if (o.reset) {
    if (!o.s.pid) return bad("-r", "needs -x PID");
    return cli_vmx_reset(o.s.pid, stderr);
  }
  if ((rc = open_streams(&o)) >= 0) return rc;
  vp_image *img = NULL;
  vp_limits lim;
  if (!(o.s.listing && o.nfiles == 0 && !o.code && !o.stdin_vp && !o.trace)) {
    char *vptext = gather_vp(&o);
    if (!vptext) return 1;
    if (o.aggr_each_sec) {
      /* once a second in all: with several VMs, the first one's tick */
      char tick[VP_NAME_MAX];
      snprintf(tick, sizeof tick, "%s%sVMM1Hz", o.s.nvms > 1 ? o.s.vms[0].name : "",
               o.s.nvms > 1 ? ":" : "");
      char *more = cli_aggr_reporting(vptext, o.s.nvms ? tick : "VMX1Hz");
      free(vptext);
      vptext = more;
    }
    img = build_image(&o, vptext, &lim);
    free(vptext);
    if (!img) return 1;
    o.s.img = img;
    o.s.lim = &lim;
  }
  if (o.globals) {
    rc = list_globals(img, o.s.out);
  } else {
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    o.s.stop = &stop_requested;
    rc = run_engine(&o);
  }
  ctl_flush_repeats(&o.s); /* however the run ended */
  fflush(o.s.out);
  fflush(o.s.err);
  vp_image_free(img);
  return rc;
}
