/*
 * cli.c - sources, generated programs, site policy and engine calls for
 * vprobe's command line (cli.h).
 */
#include "cli/cli.h"

#include <ctype.h>
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void cli_buf_add(cli_buf *b, const char *text) {
  size_t n = strlen(text);
  if (b->len + n + 2 > b->cap) {
    size_t cap = (b->len + n + 2) * 2;
    char *p = realloc(b->data, cap);
    if (!p) abort(); /* out of memory in the command line: nothing to save */
    b->data = p;
    b->cap = cap;
  }
  memcpy(b->data + b->len, text, n);
  b->len += n;
  if (n && text[n - 1] != '\n') b->data[b->len++] = '\n';
  b->data[b->len] = 0;
}

char *cli_read_stream(FILE *f) {
  cli_buf b = {0};
  char chunk[65536];
  size_t n;
  cli_buf_add(&b, "");
  while ((n = fread(chunk, 1, sizeof chunk - 1, f)) > 0) {
    chunk[n] = 0;
    if (strlen(chunk) != n) { /* a NUL byte: not text */
      free(b.data);
      return NULL;
    }
    cli_buf_add(&b, chunk);
    if (b.len && chunk[n - 1] != '\n') b.data[--b.len] = 0; /* undo newline */
  }
  if (ferror(f)) {
    free(b.data);
    return NULL;
  }
  return b.data;
}

char *cli_read_file(const char *path, char *err, size_t errcap) {
  FILE *f = fopen(path, "r");
  if (!f) {
    snprintf(err, errcap, "%s: %s", path, strerror(errno));
    return NULL;
  }
  char *text = cli_read_stream(f);
  fclose(f);
  if (!text) snprintf(err, errcap, "%s: cannot read (not a text file?)", path);
  return text;
}

char *cli_trace_vp(const char *spec, char *err, size_t errcap) {
  char fun[256];
  int nargs = 0;
  const char *colon = strrchr(spec, ':');
  size_t n = colon ? (size_t)(colon - spec) : strlen(spec);
  if (colon) {
    char *end;
    long v = strtol(colon + 1, &end, 10);
    if (*end || end == colon + 1 || v < 0 || v > 6) {
      snprintf(err, errcap, "-t %s: NARGS must be 0..6", spec);
      return NULL;
    }
    nargs = (int)v;
  }
  if (n == 0 || n >= sizeof fun - 1) {
    snprintf(err, errcap, "-t %s: expected [MOD.]FUN[:NARGS]", spec);
    return NULL;
  }
  for (size_t i = 0; i < n; i++) {
    if (isspace((unsigned char)spec[i]) || strchr("()\";", spec[i])) {
      snprintf(err, errcap, "-t %s: bad function name", spec);
      return NULL;
    }
  }
  memcpy(fun, spec, n);
  fun[n] = 0;
  cli_buf b = {0};
  char line[512];
  snprintf(line, sizeof line, "(vprobe VMX:ENTER:%s\n  (printf \"%%s(", fun);
  cli_buf_add(&b, line);
  b.data[--b.len] = 0;
  for (int i = 0; i < nargs; i++) {
    cli_buf_add(&b, i ? ", %#x" : "%#x");
    b.data[--b.len] = 0;
  }
  cli_buf_add(&b, ")\\n\" PROBENAME");
  b.data[--b.len] = 0;
  for (int i = 0; i < nargs; i++) {
    snprintf(line, sizeof line, " ARG%d", i);
    cli_buf_add(&b, line);
    b.data[--b.len] = 0;
  }
  cli_buf_add(&b, "))\n");
  return b.data;
}

/* The name after each "(defaggr" in VP text, in order. */
static const char *next_defaggr(const char *p, char *name, size_t cap) {
  while ((p = strstr(p, "(defaggr"))) {
    p += 8;
    if (!isspace((unsigned char)*p)) continue;
    while (isspace((unsigned char)*p)) p++;
    size_t n = 0;
    while (p[n] && !isspace((unsigned char)p[n]) && p[n] != ')' && p[n] != '(')
      n++;
    if (n == 0 || n >= cap) continue;
    memcpy(name, p, n);
    name[n] = 0;
    return p + n;
  }
  return NULL;
}

/* True if VP text adds values (not only counts) to aggregate name. */
static int aggr_has_values(const char *vp, const char *name) {
  size_t n = strlen(name);
  for (const char *p = vp; (p = strstr(p, "(aggr")); p += 5) {
    const char *q = p + 5;
    if (!isspace((unsigned char)*q)) continue;
    while (isspace((unsigned char)*q)) q++;
    if (!strncmp(q, name, n) && (isspace((unsigned char)q[n]) || q[n] == '('))
      return 1;
  }
  return 0;
}

char *cli_aggr_reporting(const char *vptext, const char *tick) {
  cli_buf b = {0};
  char name[128], line[512];
  cli_buf_add(&b, vptext);
  const char *p = vptext;
  int any = 0;
  while ((p = next_defaggr(p, name, sizeof name))) {
    if (!any) {
      snprintf(line, sizeof line, "(vprobe %s", tick);
      cli_buf_add(&b, line);
      any = 1;
    }
    snprintf(line, sizeof line, "  (logaggr %s%s) (clearaggr %s)", name,
             aggr_has_values(vptext, name) ? "" : " 1", name);
    cli_buf_add(&b, line);
  }
  if (any) cli_buf_add(&b, ")");
  return b.data;
}

int cli_check_allowed(void) {
  if (getuid() == 0) return -1;
  FILE *f = fopen("/etc/vprobe.conf", "r");
  if (!f) return -1;
  char line[256];
  int allowed = 1;
  while (fgets(line, sizeof line, f)) {
    char key[64], val[64];
    if (sscanf(line, " %63[^= \t] = %63s", key, val) == 2 &&
        !strcmp(key, "vprobe.allow"))
      allowed = !strcasecmp(val, "TRUE") || !strcmp(val, "1");
  }
  fclose(f);
  if (allowed) return -1;
  fprintf(stderr, "vprobe: /etc/vprobe.conf: vprobe.allow is FALSE: only root "
                  "may use vprobe on this machine\n");
  return 1;
}

/* NAME of NAME:REST as a probe prefix takes it (vp_vm_name_len), and not
 * the start of a VM address (unix:/path, tcp:host:port).  Its length, or 0. */
static size_t vm_name_len(const char *arg) {
  size_t n = vp_vm_name_len(arg);
  static const char *const addr[] = {"unix", "tcp", "gdb"};
  for (size_t i = 0; i < sizeof addr / sizeof *addr; i++)
    if (strlen(addr[i]) == n && !strncmp(arg, addr[i], n)) return 0;
  return n;
}

int cli_add_vm(ctl_session *s, const char *arg, char *err, size_t cap) {
  if (s->nvms == CTL_MAX_VMS)
    return snprintf(err, cap, "-m %s: at most %d VMs", arg, CTL_MAX_VMS), -1;
  ctl_vm *vm = &s->vms[s->nvms];
  size_t n = vm_name_len(arg);
  *vm = (ctl_vm){.spec = arg + (n ? n + 1 : 0)};
  if (n) {
    char *name = strndup(arg, n);
    if (!name) return snprintf(err, cap, "out of memory"), -1;
    for (int i = 0; i < s->nvms; i++)
      if (s->vms[i].name && !strcmp(s->vms[i].name, name)) {
        snprintf(err, cap, "-m %s: a VM named %s is given twice", arg, name);
        free(name);
        return -1;
      }
    vm->name = name;
  }
  if (!*vm->spec) return snprintf(err, cap, "-m %s: no VM after the name", arg), -1;
  s->nvms++;
  for (int i = 0; s->nvms > 1 && i < s->nvms; i++)
    if (!s->vms[i].name)
      return snprintf(err, cap, "-m %s: with several VMs each needs a name (-m NAME:VM)",
                      s->vms[i].spec), -1;
  return 0;
}

int cli_bind_syms(ctl_session *s, const char *const *syms, int nsyms, char *err,
                  size_t cap) {
  const char *all = NULL;
  for (int k = 0; k < nsyms; k++) {
    size_t n = vm_name_len(syms[k]);
    int bound = 0;
    for (int i = 0; n && i < s->nvms; i++)
      if (s->vms[i].name && strlen(s->vms[i].name) == n && !strncmp(s->vms[i].name, syms[k], n)) {
        if (s->vms[i].syms)
          return snprintf(err, cap, "-s %s: VM %s has symbols already", syms[k], s->vms[i].name), -1;
        s->vms[i].syms = syms[k] + n + 1;
        bound = 1;
      }
    if (bound) continue;
    if (all) return snprintf(err, cap, "-s %s: one -s FILE for every VM is given already", syms[k]), -1;
    all = syms[k];
  }
  for (int i = 0; all && i < s->nvms; i++)
    if (!s->vms[i].syms) s->vms[i].syms = all;
  return 0;
}

/* Where lib/ (the preloads) lives: $VPROBE_LIB, else beside the binary's
 * tree (build/bin/vprobe -> lib/), else the installed location. */
static const char *lib_dir(char *buf, size_t cap) {
  const char *env = getenv("VPROBE_LIB");
  if (env && *env) return env;
  char exe[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n > 0) {
    exe[n] = 0;
    char *dir = dirname(exe); /* .../build/bin */
    snprintf(buf, cap, "%s/../../lib", dir);
    if (access(buf, R_OK) == 0) return buf;
  }
  return "/usr/share/vprobe/lib";
}

int cli_guest_preload(const char *vm, const char *syms, char *path,
                      size_t cap) {
  if (!vm || !syms) return 0;
  FILE *f = fopen(syms, "r");
  if (!f) return 0;
  char line[512];
  int linux_syms = 0;
  while (!linux_syms && fgets(line, sizeof line, f))
    linux_syms = strstr(line, " start_kernel") != NULL;
  fclose(f);
  if (!linux_syms) return 0;
  char dir[PATH_MAX];
  snprintf(path, cap, "%s/linux-guest.emt", lib_dir(dir, sizeof dir));
  return access(path, R_OK) == 0;
}
