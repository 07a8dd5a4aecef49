/*
 * proto.h - what vprobe (the controller) and the agent inside a probed
 * process share.  This is the whole contract between src/vmx/vmx*.c
 * (controller side) and src/vmx/agent*.c (in the process).
 *
 * The controller resolves probe points to addresses, lays out one shared
 * region (a memfd) holding the VP image, the rt_space, the probe points and
 * a symbol table, and hands the agent its file descriptor over a unix
 * socket.  The agent patches the points, runs probes in the process's own
 * threads, and restores every byte when told to unload or when the socket
 * closes (the controller died): the process goes on as if never probed.
 */
#ifndef VMX_PROTO_H
#define VMX_PROTO_H

#include <stdint.h>

#define VMX_MAGIC 0x31585056u /* "VPX1" */
#define VMX_AGENT_ENV "VPROBE_AGENT_SOCK" /* launch mode: socket path */
#define VMX_AGENT_LIB "libvpagent.so"      /* in <prefix>/lib beside bin/ */
#define VMX_AGENT_START "vpagent_start"    /* int vpagent_start(const char *sock) */

enum vmx_kind {        /* what a point is */
  VMX_PT_ENTER,        /* function entry: ARG0..5 are the SysV arguments */
  VMX_PT_EXIT,         /* function return: ARG0 is the return value (RAX) */
  VMX_PT_OFFSET,       /* an instruction inside a function */
  VMX_PT_ADDR,         /* VMX:0xADDRESS */
  VMX_PT_PROFILE,      /* VMX:PROFILE:Nmsec; addr holds N*1e6 ns */
  VMX_PT_TIMER,        /* VMXLoad/VMXUnload/VMX1Hz/VMX10Hz/USEC:N: addr holds
                          the period in ns, 0 for Load, UINT64_MAX for Unload */
};

enum vmx_how {         /* how the agent placed it (written by the agent) */
  VMX_HOW_NONE, VMX_HOW_JUMP, VMX_HOW_TRAP, VMX_HOW_FAILED
};

typedef struct vmx_point {
  uint64_t addr;       /* absolute address in the process */
  uint32_t probe;      /* index of the probe in the image */
  uint32_t kind;       /* vmx_kind */
  uint32_t name_off;   /* PROBENAME (expanded), offset into the string table */
  uint32_t how;        /* vmx_how, set by the agent */
  uint32_t room;       /* bytes from addr to the nearest address after it
                          that code may jump to (a branch or call target, a
                          symbol, another point of this load), at most 255;
                          a jump written here displaces no more.  0: unknown */
  uint32_t pad;
} vmx_point;

typedef struct vmx_sym { /* sorted by addr, for vmxstack symbolization */
  uint64_t addr, size;
  uint32_t name_off;   /* "module.function" */
  uint32_t pad;
} vmx_sym;

typedef struct vmx_shared {
  uint32_t magic, version;
  uint64_t size;                      /* of the whole region */
  uint64_t image_off, image_len;      /* VP image bytes */
  uint64_t space_off, space_len;      /* rt_space */
  uint64_t points_off; uint32_t npoints, pad0;
  uint64_t syms_off;   uint32_t nsyms, pad1;
  uint64_t str_off, str_len;          /* NUL-terminated strings */
  uint32_t agent_state;               /* vmx_state, written by the agent */
  uint32_t agent_pid;
  uint64_t fires, dropped;            /* counters the agent keeps */
  char agent_error[256];              /* why loading failed */
  uint64_t unwind_off; uint32_t nunwind, pad2; /* vmx_unwind[], sorted */
  uint32_t cpu_limit_ppm;             /* a probe may use this share of one CPU
                                         (millionths); 0: no limit */
  uint32_t pad3;
} vmx_shared;

/* How to step out of one address range of code (from the .eh_frame CFI,
 * built by the controller: the agent never parses DWARF).  Only the simple
 * forms nearly all x86-64 code uses: CFA = RSP or RBP + cfa_off, the
 * return address at CFA-8, the caller's RBP at CFA+rbp_off or unchanged.
 * Code not covered is walked by frame pointers. */
enum vmx_uw_reg { VMX_UW_RSP, VMX_UW_RBP };
typedef struct vmx_unwind {
  uint64_t start;      /* absolute address */
  uint32_t len;        /* bytes from start */
  int32_t cfa_off;
  int16_t rbp_off;     /* caller's RBP at CFA+rbp_off, if rbp_saved */
  uint8_t cfa_reg;     /* vmx_uw_reg */
  uint8_t rbp_saved;
  uint32_t pad;
} vmx_unwind;

enum vmx_state { VMX_ST_NONE, VMX_ST_LOADING, VMX_ST_RUNNING, VMX_ST_UNLOADED,
                 VMX_ST_FAILED };

/* Socket messages: one line of text each, the LOAD line carrying the memfd
 * (SCM_RIGHTS).
 *   controller -> agent: "LOAD\n" (+fd)   agent -> controller: "OK\n" | "ERR why\n"
 *   controller -> agent: "UNLOAD\n"       agent -> controller: "DONE\n"
 * EOF on the socket means the controller is gone: the agent unloads quietly
 * (no Unload probes, no output), restoring every patched byte. */

#endif
