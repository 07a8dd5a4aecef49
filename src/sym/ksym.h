/*
 * ksym.h - guest kernel symbols from a kallsyms file (`ADDR TYPE NAME
 * [module]` lines, as /proc/kallsyms prints them).  This header is the whole
 * interface of src/sym/ksym.c.
 *
 * Lookups by name (exact, or a glob) and by address (the symbol at or below
 * it).  Absolute and per-CPU symbols (type A/a, or addresses below the
 * kernel half) are kept for name lookups but never answer an address lookup.
 */
#ifndef KSYM_H
#define KSYM_H

#include <stddef.h>
#include <stdint.h>

typedef struct ksym {
  uint64_t addr;
  char type;          /* T t D d B b R r W A ... */
  const char *name;
  const char *module; /* NULL for the kernel image */
} ksym;

typedef struct ksym_table ksym_table;

/* Load a file; NULL with err set ("FILE:LINE: bad kallsyms line"). */
ksym_table *ksym_load(const char *path, char *err, size_t errcap);
/* Parse text (not NUL-terminated; need not outlive the table). */
ksym_table *ksym_parse(const char *text, size_t len, const char *file,
                       char *err, size_t errcap);
void ksym_free(ksym_table *t);

size_t ksym_count(const ksym_table *t);
const ksym *ksym_at(const ksym_table *t, size_t i); /* in address order */

/* By name: the first symbol with that name (kernel image before modules),
 * "name" or "module:name" ... NULL if none. */
const ksym *ksym_by_name(const ksym_table *t, const char *name);
/* By address: the code/data symbol at or below addr, NULL if none or if
 * addr is past the end of the symbol's region.  *off gets addr - sym. */
const ksym *ksym_by_addr(const ksym_table *t, uint64_t addr, uint64_t *off);
/* "name+0xoff" (or "0xADDR" when unknown) into buf; returns buf. */
const char *ksym_format(const ksym_table *t, uint64_t addr, char *buf, size_t cap);
/* Resolve "sym", "sym+0x10", "0xffff..." or a decimal number.  0 ok. */
int ksym_resolve(const ksym_table *t, const char *expr, uint64_t *addr);

/* Every function (text) symbol whose name matches glob (`*`, `?`, `[..]`),
 * in address order, duplicates by address removed; calls fn for each until
 * it returns nonzero.  Returns the number of matches visited. */
size_t ksym_glob(const ksym_table *t, const char *glob, int text_only,
                 int (*fn)(void *ctx, const ksym *s), void *ctx);

/* True if the symbols look like a Linux kernel's. */
int ksym_is_linux(const ksym_table *t);

#endif
