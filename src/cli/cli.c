/*
 * cli.c - sources, generated programs, site policy, VM names, symbol
 * bindings and the guest preload for vprobe's command line (cli.h; the
 * calls into the engines are engines.c).
 */
#include "cli/cli.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
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

/* ---- site policy ---- */

/* A vprobe.allow value, quoted or not: 1 allow, 0 deny, -1 unknown. */
static int policy_value(const char *v, size_t n) {
  static const char *const words[] = {"true", "yes", "1", "false", "no", "0"};
  if (n >= 2 && (v[0] == '"' || v[0] == '\'') && v[n - 1] == v[0]) v++, n -= 2;
  for (int i = 0; i < 6; i++)
    if (strlen(words[i]) == n && !strncasecmp(v, words[i], n)) return i < 3;
  return -1;
}

/* One line of a policy file: 1 or 0 for a vprobe.allow setting, 2 for a
 * line about something else (other keys, comments, blank), -1 for a
 * vprobe.allow whose value cannot be read. Keys are case-insensitive, as in
 * the host configuration files the option comes from. */
static int policy_line(const char *p) {
  p += strspn(p, " \t\r\n");
  size_t k = strcspn(p, "= \t\r\n");
  if (*p == '#' || k != 12 || strncasecmp(p, "vprobe.allow", 12)) return 2;
  p += k;
  p += strspn(p, " \t");
  if (*p++ != '=') return -1;
  p += strspn(p, " \t");
  size_t n = strcspn(p, " \t\r\n#");
  if (*p == '"' || *p == '\'') {
    const char *q = strchr(p + 1, *p);
    if (!q) return -1;
    n = (size_t)(q - p) + 1;
  }
  const char *rest = p + n + strspn(p + n, " \t\r\n");
  if (*rest && *rest != '#') return -1;
  return policy_value(p, n);
}

/* Apply one policy file: -1 to go on, else 1 after one line on stderr.  A
 * file that is not there sets no policy; one that is there but cannot be
 * read, or says something unclear, keeps the user out (fail closed). */
static int policy_file(const char *path) {
  FILE *f = fopen(path, "re");
  if (!f && (errno == ENOENT || errno == ENOTDIR)) return -1;
  char *line = NULL;
  size_t cap = 0;
  int allow = 1, v = 2, at = 0, lineno = 0;
  while (f && getline(&line, &cap, f) > 0) {
    lineno++;
    if ((v = policy_line(line)) < 0) break;
    if (v < 2) allow = v, at = lineno;
  }
  int err = !f || ferror(f) ? (errno ? errno : EIO) : 0;
  free(line);
  if (f) fclose(f);
  if (err)
    fprintf(stderr, "vprobe: %s: %s: cannot read the site policy, so only root "
                    "may use vprobe\n", path, strerror(err));
  else if (v < 0)
    fprintf(stderr, "vprobe: %s:%d: vprobe.allow must be TRUE or FALSE; until it "
                    "is, only root may use vprobe\n", path, lineno);
  else if (!allow)
    fprintf(stderr, "vprobe: %s:%d: vprobe.allow is FALSE: only root may use "
                    "vprobe on this machine\n", path, at);
  return err || v < 0 || !allow ? 1 : -1;
}

int cli_check_allowed(void) {
  if (getuid() == 0) return -1;
  int rc = policy_file(CLI_SITE_POLICY);
  if (rc >= 0) return rc;
  /* $VPROBE_CONF adds a policy that can only narrow the site's: whatever a
   * user points it at, the worst they get is keeping themselves out. */
  const char *extra = getenv("VPROBE_CONF");
  return extra && *extra ? policy_file(extra) : -1;
}

/* ---- output files ---- */

static void parent_dir(const char *path, char *dir, size_t cap) {
  const char *slash = strrchr(path, '/');
  if (!slash) snprintf(dir, cap, ".");
  else if (slash == path) snprintf(dir, cap, "/");
  else snprintf(dir, cap, "%.*s", (int)(slash - path), path);
}

/* A symbolic link only its directory's owner could have put there, and that
 * owner root or ourselves (/dev/stderr, /proc/self/fd/N): following it
 * gives no one a way to redirect our writes. */
static int trusted_link(const struct stat *link, const struct stat *dir) {
  return !(dir->st_mode & (S_IWGRP | S_IWOTH)) && link->st_uid == dir->st_uid &&
         (dir->st_uid == 0 || dir->st_uid == geteuid());
}

/* The kernel's protected_regular rule, checked whatever the sysctl says: in
 * a sticky directory others can write to, an existing file that is neither
 * ours nor the directory owner's, or that has other hard links, may be a
 * trap laid for us.  NULL if writing is fine, else why not. */
static const char *planted_file(const struct stat *f, const struct stat *dir) {
  if (!S_ISREG(f->st_mode) || !(dir->st_mode & S_ISVTX) ||
      !(dir->st_mode & (S_IWGRP | S_IWOTH)))
    return NULL;
  if (f->st_uid != geteuid() && f->st_uid != dir->st_uid)
    return "owned by another user in a shared sticky directory; not writing into it";
  if (f->st_nlink > 1)
    return "has other hard links in a shared sticky directory; not writing into it";
  return NULL;
}

FILE *cli_open_out(const char *path, mode_t mode, char *err, size_t cap) {
  static const char *const link_msg = "is a symbolic link; not following it";
  char dir[PATH_MAX];
  struct stat ls, ds, fs;
  int follow = 0;
  parent_dir(path, dir, sizeof dir);
  if (lstat(path, &ls) == 0 && S_ISLNK(ls.st_mode)) {
    if (stat(dir, &ds) != 0 || !trusted_link(&ls, &ds))
      return snprintf(err, cap, "%s: %s", path, link_msg), NULL;
    follow = 1;
  }
  int flags = O_WRONLY | O_NOCTTY | O_CLOEXEC | (follow ? 0 : O_NOFOLLOW);
  /* Create it new if it is not there: O_EXCL leaves no moment in which
   * someone else's file or link could be taken for ours. */
  int fd = open(path, flags | O_CREAT | O_EXCL, mode);
  int created = fd >= 0;
  if (fd < 0 && errno == EEXIST) /* a trusted link may name a new file */
    fd = open(path, flags | (follow ? O_CREAT : 0), mode);
  if (fd < 0)
    return snprintf(err, cap, "%s: %s", path, errno == ELOOP ? link_msg : strerror(errno)), NULL;
  const char *why = NULL;
  if (!created && !follow) {
    if (fstat(fd, &fs) != 0 || stat(dir, &ds) != 0) why = strerror(errno);
    else why = planted_file(&fs, &ds);
  }
  if (!why && !created && fstat(fd, &fs) == 0 && S_ISREG(fs.st_mode) && ftruncate(fd, 0) != 0)
    why = strerror(errno);
  FILE *f = why ? NULL : fdopen(fd, "w");
  if (!f) {
    snprintf(err, cap, "%s: %s", path, why ? why : strerror(errno));
    close(fd);
  }
  return f;
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
