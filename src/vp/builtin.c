/*
 * builtin.c - the constant tables of VP: built-in variables and functions,
 * and exception names (probe names are probename.c's).  Shared by the
 * VP verifier and Emmett's checker (vp.h).
 */
#include <stdlib.h>
#include <string.h>

#include "vp/vp.h"

#define DOM_REGS (VP_DOM_VMX | VP_DOM_GUEST | VP_DOM_VMM | VP_DOM_VMK)
#define DOM_HV (VP_DOM_GUEST | VP_DOM_VMM)

static const vp_var vars[] = {
  {"RAX", 'i', VP_REG_RAX, DOM_REGS}, {"RBX", 'i', VP_REG_RBX, DOM_REGS},
  {"RCX", 'i', VP_REG_RCX, DOM_REGS}, {"RDX", 'i', VP_REG_RDX, DOM_REGS},
  {"RSI", 'i', VP_REG_RSI, DOM_REGS}, {"RDI", 'i', VP_REG_RDI, DOM_REGS},
  {"RSP", 'i', VP_REG_RSP, DOM_REGS}, {"RBP", 'i', VP_REG_RBP, DOM_REGS},
  {"R8", 'i', VP_REG_R8, DOM_REGS},   {"R9", 'i', VP_REG_R9, DOM_REGS},
  {"R10", 'i', VP_REG_R10, DOM_REGS}, {"R11", 'i', VP_REG_R11, DOM_REGS},
  {"R12", 'i', VP_REG_R12, DOM_REGS}, {"R13", 'i', VP_REG_R13, DOM_REGS},
  {"R14", 'i', VP_REG_R14, DOM_REGS}, {"R15", 'i', VP_REG_R15, DOM_REGS},
  {"RIP", 'i', VP_REG_RIP, DOM_REGS}, {"RFLAGS", 'i', VP_REG_RFLAGS, DOM_REGS},
  {"CS", 'i', VP_REG_CS, DOM_REGS},   {"SS", 'i', VP_REG_SS, DOM_REGS},
  {"DS", 'i', VP_REG_DS, DOM_REGS},   {"ES", 'i', VP_REG_ES, DOM_REGS},
  {"FS", 'i', VP_REG_FS, DOM_REGS},   {"GS", 'i', VP_REG_GS, DOM_REGS},
  {"CR0", 'i', VP_REG_CR0, DOM_HV},   {"CR2", 'i', VP_REG_CR2, DOM_HV},
  {"CR3", 'i', VP_REG_CR3, DOM_HV},   {"CR4", 'i', VP_REG_CR4, DOM_HV},
  {"CR8", 'i', VP_REG_CR8, DOM_HV},   {"DR6", 'i', VP_REG_DR6, DOM_HV},
  {"DR7", 'i', VP_REG_DR7, DOM_HV},   {"EFER", 'i', VP_REG_EFER, DOM_HV},
  {"KERNELGSBASE", 'i', VP_REG_KERNELGSBASE, DOM_HV},
  {"FSBASE", 'i', VP_REG_FSBASE, DOM_REGS},
  {"GSBASE", 'i', VP_REG_GSBASE, DOM_REGS},
  {"APIC_BASEPA", 'i', VP_REG_APIC_BASEPA, DOM_HV},
  {"TSC", 'i', VP_REG_TSC, VP_DOM_ALL},
  {"TSC_HZ", 'i', VP_REG_TSC_HZ, VP_DOM_ALL},
  {"PTSC", 'i', VP_REG_PTSC, VP_DOM_ALL},
  {"VCPUID", 'i', VP_REG_VCPUID, DOM_HV},
  {"PCPUID", 'i', VP_REG_PCPUID, VP_DOM_ALL},
  {"THREADID", 'i', VP_REG_THREADID, VP_DOM_ALL},
  {"NUMVCPUS", 'i', VP_REG_NUMVCPUS, DOM_HV},
  {"PROBENAME", 's', -1, VP_DOM_ALL},
  {"ARG0", 'i', -1, DOM_REGS}, {"ARG1", 'i', -1, DOM_REGS},
  {"ARG2", 'i', -1, DOM_REGS}, {"ARG3", 'i', -1, DOM_REGS},
  {"ARG4", 'i', -1, DOM_REGS}, {"ARG5", 'i', -1, DOM_REGS},
  {"ARG6", 'i', -1, DOM_REGS}, {"ARG7", 'i', -1, DOM_REGS},
  {"ARG8", 'i', -1, DOM_REGS}, {"ARG9", 'i', -1, DOM_REGS},
};

const vp_var *vp_var_find(const char *name) {
  for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
    if (!strcmp(vars[i].name, name))
      return &vars[i];
  return NULL;
}

/* Interpreter built-ins have fn -1; the verifier knows their forms. */
static const vp_builtin builtins[] = {
  {"printf", 'i', "f", VP_DOM_ALL, 0, -1},
  {"sprintf", 'i', "Sf", VP_DOM_ALL, 0, -1},
  {"logint", 'i', "i", VP_DOM_ALL, 0, -1},
  {"logstr", 'i', "s", VP_DOM_ALL, 0, -1},
  {"strcmp", 'i', "ss", VP_DOM_ALL, 0, -1},
  {"getsystemtime", 'i', "I", VP_DOM_ALL, 0, -1},
  {"cycles2ms", 'i', "i", VP_DOM_ALL, 0, -1},
  {"writeint", 'i', "ii", VP_DOM_ALL, 0, -1},
  {"fetchadd", 'i', "Ii", VP_DOM_ALL, 0, -1},
  {"cmpxchg", 'i', "Iii", VP_DOM_ALL, 0, -1},
  {"load", 'i', "ii", VP_DOM_ALL, 0, -1},
  {"loadstr", 'i', "Si", VP_DOM_ALL, 0, -1},
  {"getguest", 'i', "x", DOM_HV, 0, VP_FN_GETGUEST},
  {"getgueststr", 'i', "Sx|i", DOM_HV, 0, VP_FN_GETGUESTSTR},
  {"getguestphys", 'i', "i", DOM_HV, 0, VP_FN_GETGUESTPHYS},
  {"gueststack", 'i', "S|i", DOM_HV, 0, VP_FN_GUESTSTACK},
  {"getvmx", 'i', "x", VP_DOM_VMX, 0, VP_FN_GETVMX},
  {"getvmxstr", 'i', "Sx|i", VP_DOM_VMX, 0, VP_FN_GETVMXSTR},
  {"vmxstack", 'i', "S|i", VP_DOM_VMX, 0, VP_FN_VMXSTACK},
  {"sym2addr", 'i', "s", DOM_REGS, 0, VP_FN_SYM2ADDR},
  {"offatret", 'i', "s", VP_DOM_GUEST | VP_DOM_VMM, 0, VP_FN_OFFATRET},
  {"offatstrcpy", 'i', "s", VP_DOM_GUEST | VP_DOM_VMM, 0, VP_FN_OFFATSTRCPY},
  {"curprocname", 's', "", DOM_REGS, 0, VP_FN_CURPROCNAME},
  {"curpid", 'i', "", DOM_REGS, 0, VP_FN_CURPID},
  {"vmname", 's', "", DOM_HV, 0, VP_FN_VMNAME},
  {"setgpr", 'i', "ii", DOM_REGS, 1, VP_FN_SETGPR},
  {"setphysgpr", 'i', "ii", DOM_HV, 1, VP_FN_SETPHYSGPR},
  {"setvmw", 'i', "ii", VP_DOM_VMX, 1, VP_FN_SETVMW},
  {"setguest", 'i', "ii", DOM_HV, 1, VP_FN_SETGUEST},
  {"genmce", 'i', "|ii", DOM_HV, 1, VP_FN_GENMCE},
  {"skipfunction", 'i', "|i", DOM_REGS, 1, VP_FN_SKIPFUNCTION},
  {"setwatchpoint", 'i', "ii|i", DOM_HV | VP_DOM_VMX, 1, VP_FN_SETWATCHPOINT},
  {"removewatchpoint", 'i', "i", DOM_HV | VP_DOM_VMX, 1,
   VP_FN_REMOVEWATCHPOINT},
};

const vp_builtin *vp_builtin_find(const char *name) {
  for (size_t i = 0; i < sizeof builtins / sizeof builtins[0]; i++)
    if (!strcmp(builtins[i].name, name))
      return &builtins[i];
  return NULL;
}

const char *vp_exc_name(int exc) {
  static const char *const names[VP_EXC_COUNT] = {
    "none", "MemAccessError", "BagFullError", "BagEmptyError",
    "DivisionByZeroError", "BudgetExceededError", "StackDepthError"};
  return exc >= 0 && exc < VP_EXC_COUNT ? names[exc] : "UnknownError";
}

int vp_fn_returns_str(int fn) { return fn == VP_FN_CURPROCNAME || fn == VP_FN_VMNAME; }

void vp_limits_default(vp_limits *lim) {
  lim->max_probes = 32;
  lim->max_code = 65536;
  lim->max_depth = 64;
  lim->budget = 20000;
  lim->destructive = 0;
}
