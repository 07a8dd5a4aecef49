/*
 * test_epp.c - the Emmett preprocessor: directives, expressions, includes,
 * comment lines, #line markers and every error with its position.
 * Fixture files are in tests/emmett/epp/ (run from the top of the tree, or
 * with VPROBE_TOP set).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "emmett/epp.h"

#define DIR "tests/emmett/epp"

static char err[512];

/* Preprocess text named t.emt with optional -D definitions. */
static char *ppd(const char *text, const char *const *defs, int ndefs) {
  static const char *const incdirs[] = {DIR "/inc"};
  em_opts o = {defs, ndefs, incdirs, 1, NULL, 0, NULL};
  err[0] = 0;
  return epp_run(text, "t.emt", &o, err, sizeof err);
}

static char *pp(const char *text) { return ppd(text, NULL, 0); }

/* text must preprocess to want. */
static void expect(const char *text, const char *want) {
  char *out = pp(text);
  if (!out)
    fail_msg("unexpected error for %s: %s", text, err);
  assert_string_equal(out, want);
  free(out);
}

/* text must fail with exactly the error line want. */
static void expect_err(const char *text, const char *want) {
  char *out = pp(text);
  if (out)
    fail_msg("no error for %s; output %s", text, out);
  assert_string_equal(err, want);
}

static void test_plain(void **state) {
  (void)state;
  expect("", "");
  expect("int x;\n\ty =  2;\n", "int x;\n\ty =  2;\n");
  expect("no newline", "no newline\n");
  expect("a\n\n\nb\n", "a\n\n\nb\n");
  /* NULL options and name are allowed */
  char *out = epp_run("x __FILE__\n", NULL, NULL, err, sizeof err);
  assert_non_null(out);
  assert_string_equal(out, "x \"<input>\"\n");
  free(out);
}

static void test_define(void **state) {
  (void)state;
  expect("#define N 10\nx = N;\n#undef N\ny = N;\n", "\nx = 10;\n\ny = N;\n");
  expect("#define E\n[E]\n", "\n[]\n");
  expect("#  define  S  \"str\"  \ns = S;\n", "\ns = \"str\";\n");
  expect("#define N 1\n#define N 2\nN\n", "\n\n2\n");
  expect("#undef NEVER_DEFINED\nok\n", "\nok\n");
  /* a body may hold a comment, and continue over lines */
  expect("#define M 1 + \\\n  2 /* two */\nM\n", "\n\n1 +   2\n");
  expect("#define C /* a\n b */ 3\nC\n", "\n\n3\n");
  expect("#define X 1 // one\nX\n", "\n1\n");
  /* object-like: a space before the parenthesis makes it a body */
  expect("#define P (1)\nP\n", "\n(1)\n");
}

static void test_rescan(void **state) {
  (void)state;
  /* bodies are rescanned; a macro is not expanded inside itself */
  expect("#define A 1+B\n#define B A*2\nA B\n", "\n\n1+A*2 1+B*2\n");
  expect("#define X X+1\nX\n", "\nX+1\n");
  expect("#define ONE 1\n#define TWO ONE+ONE\n#define FOUR TWO*TWO\nFOUR\n",
         "\n\n\n1+1*1+1\n");
  /* expansions never paste onto their neighbours */
  expect("#define M -\n-M-\n", "\n- - -\n");
  expect("#define I x\nI+I\n", "\nx+x\n");
  /* a line a macro makes start with '#' is shifted off column 1 */
  expect("#define H #x\nH\n", "\n #x\n");
}

static void test_no_expansion(void **state) {
  (void)state;
  expect("#define N 1\n\"N\" 'N' N\n", "\n\"N\" 'N' 1\n");
  expect("#define N 1\n\"a\\\"N\" N\n", "\n\"a\\\"N\" 1\n");
  /* comments become spaces: columns stay */
  expect("#define N 1\na /* N */ b // N\n", "\na         b \n");
  expect("#define N 1\n/* N\n#define N 2\nN */ N\n", "\n    \n           \n     1\n");
  /* numbers are not identifiers */
  expect("#define xff 1\n#define e5 2\n0xff 1e5 .5e5 xff\n", "\n\n0xff 1e5 .5e5 1\n");
  /* $names are Emmett's, never macros */
  expect("#define vmlinux 1\n$vmlinux vmlinux\n", "\n$vmlinux 1\n");
}

static void test_predefined(void **state) {
  (void)state;
  expect("__version__ __vprobe__ __linux__ __FILE__\n__LINE__\n",
         "2026 1 1 \"t.emt\"\n2\n");
  expect("#define L __LINE__\n\nL\n", "\n\n3\n");
  expect("#if __version__ >= 2013 && __vprobe__ && __linux__ && __LINE__ == 1\n"
         "y\n#endif\n",
         "\ny\n\n");
  expect("#define __version__ 2013\n__version__\n", "\n2013\n");
  expect_err("#define __FILE__ x\n",
             "t.emt:1:9: error: '__FILE__' cannot be defined or undefined");
  expect_err("#undef __LINE__\n",
             "t.emt:1:8: error: '__LINE__' cannot be defined or undefined");
  expect_err("#define defined 1\n",
             "t.emt:1:9: error: 'defined' cannot be defined or undefined");
}

/* The EPP example of seed 000 (2014 update), with its names joined. */
static void test_seed_example(void **state) {
  (void)state;
  expect("#if ( VERSION < 2013)\n"
         "int ddvCurModID()\n"
         "#define CUR_MOD_ID ddvCurModID()\n"
         "#else\n"
         "#define CUR_MOD_ID LASTMODID\n"
         "#endif /* ( VERSION < 2013) */\n"
         "x = CUR_MOD_ID;\n",
         "\nint ddvCurModID()\n\n\n#line 7 \"t.emt\"\nx = ddvCurModID();\n");
  static const char *const d[] = {"VERSION=2014"};
  char *out = ppd("#if ( VERSION < 2013)\n#define M old\n#else\n#define M new\n#endif\nM\n", d, 1);
  assert_non_null(out);
  assert_string_equal(out, "\n#line 4 \"t.emt\"\n\n\nnew\n");
  free(out);
  /* CR LF line ends */
  expect("#define N 1\r\n#if N\r\nx N\r\n#endif \r\n# prose\r\n", "\n\nx 1\r\n\n\n");
}

static void test_command_line(void **state) {
  (void)state;
  static const char *const d[] = {"FOO", "BAR=7", "EMPTY=", "SP= a b ",
                                  "__version__=2013"};
  char *out = ppd("FOO BAR [EMPTY] [SP] __version__\n", d, 5);
  assert_non_null(out);
  assert_string_equal(out, "1 7 [] [a b] 2013\n");
  free(out);
  static const char *const bad[] = {"1X"};
  assert_null(ppd("x\n", bad, 1));
  assert_string_equal(err, "<command line>:1:1: error: invalid macro name in -D '1X'");
  static const char *const bad2[] = {"F(x)=x"};
  assert_null(ppd("x\n", bad2, 1));
  assert_string_equal(err, "<command line>:1:1: error: invalid macro name in -D 'F(x)'");
}

static void test_conditionals(void **state) {
  (void)state;
  /* a skipped block is dropped; a marker says where output resumes */
  expect("#if 0\na\nb\n#endif\nc\n", "\n#line 5 \"t.emt\"\nc\n");
  expect("#if 1\na\n#else\nb\n#endif\nc\n", "\na\n\n#line 6 \"t.emt\"\nc\n");
  expect("#if 0\na\n#elif 2\nb\n#elif 3\nc\n#else\nd\n#endif\n",
         "\n#line 4 \"t.emt\"\nb\n\n");
  expect("#if 0\n#elif 0\n#else\ne\n#endif\n", "\n#line 4 \"t.emt\"\ne\n\n");
  expect("#ifdef __linux__\nl\n#endif\n#ifndef __linux__\nn\n#endif\n",
         "\nl\n\n\n");
  expect("#define D\n#ifdef D\nd\n#endif\n#undef D\n#ifdef D\nx\n#endif\n",
         "\n\nd\n\n\n\n");
  /* nesting, and skipped nested groups with anything in them */
  expect("#if 1\n#if 0\nx\n#else\ny\n#endif\n#endif\n",
         "\n\n#line 5 \"t.emt\"\ny\n\n\n");
  expect("#if 0\n#if 1/0\n#error no\n#foo\n#else junk\nx\n#endif junk\n#endif\nz\n",
         "\n#line 9 \"t.emt\"\nz\n");
  /* #elif after a taken branch is not evaluated */
  expect("#if 1\na\n#elif 1/0\nb\n#endif\n", "\na\n\n");
  /* directives in skipped blocks still follow comments */
  expect("#if 0\n/*\n#endif\n*/\n#endif\nk\n", "\n#line 6 \"t.emt\"\nk\n");
  /* ... and defines there do not happen */
  expect("#if 0\n#define Q 1\n#endif\nQ\n", "\n#line 4 \"t.emt\"\nQ\n");
}

/* The value of an #if expression: 1, 0, or -1 for an error. */
static int truth(const char *expr) {
  char text[512];
  snprintf(text, sizeof text, "#define TEN 10\n#define ZERO 0\n#if %s\ny\n#else\nn\n#endif\n", expr);
  char *out = pp(text);
  if (!out)
    return -1;
  int v = strstr(out, "y\n") != NULL;
  free(out);
  return v;
}

static void test_expressions(void **state) {
  (void)state;
  static const struct { const char *e; int v; } t[] = {
      {"1", 1}, {"0", 0}, {"TEN == 10", 1}, {"UNKNOWN == 0", 1},
      {"defined TEN", 1}, {"defined(TEN)", 1}, {"defined ( ZERO )", 1},
      {"defined UNKNOWN", 0}, {"!defined(UNKNOWN)", 1},
      {"defined __FILE__ && defined __LINE__", 1},
      {"1 + 2 * 3 == 7", 1}, {"(1 + 2) * 3 == 9", 1}, {"10 / 3 == 3", 1},
      {"10 % 3 == 1", 1}, {"-7 / 2 == -3", 1}, {"-7 % 2 == -1", 1},
      {"7 - 2 - 1 == 4", 1}, {"1 << 4 == 16", 1}, {"256 >> 4 == 16", 1},
      {"-8 >> 1 == -4", 1}, {"(1 << 63) < 0", 1}, {"(6 & 3) == 2", 1},
      {"(6 | 3) == 7", 1}, {"(6 ^ 3) == 5", 1}, {"~0 == -1", 1},
      {"!0 == 1 && !5 == 0", 1}, {"-(-3) == +3", 1},
      {"1 < 2 && 2 <= 2 && 3 > 2 && 3 >= 3 && 1 != 2", 1},
      {"2 < 1 || 0", 0}, {"1 ? 2 : 3", 1}, {"0 ? 1 : 0", 0},
      {"(0 ? 1 : 2) == 2", 1}, {"1 ? 0 ? 5 : 6 : 7", 1},
      {"0x10 == 16 && 0X1f == 31 && 010 == 8 && 0b101 == 5", 1},
      {"0XFF == 255 && 0xAbC == 2748", 1},
      {"10u == 10 && 10UL == 10 && 10ll == 10", 1},
      {"'a' == 97 && '\\n' == 10 && '\\0' == 0 && '\\x41' == 65", 1},
      {"'\\'' == 39 && '\\\\' == 92 && '\\101' == 65", 1},
      {"9223372036854775807 + 1 < 0", 1},
      {"-9223372036854775807 - 1 == (1 << 63)", 1},
      {"(-9223372036854775807 - 1) / -1 < 0", 1},
      {"0xffffffffffffffff == -1", 1},
      {"0 && 1 / 0", 0}, {"1 || 1 / 0", 1}, {"0 ? 1 / 0 : 1", 1},
      {"1 ? 1 : 1 % 0", 1}, {"ZERO && 10 / ZERO", 0},
      {"TEN / 2 == 5", 1}, {"__version__ > 2014", 1},
  };
  for (size_t i = 0; i < sizeof t / sizeof *t; i++) {
    int v = truth(t[i].e);
    if (v != t[i].v)
      fail_msg("#if %s: got %d (%s), want %d", t[i].e, v, err, t[i].v);
  }
}

static void test_expression_errors(void **state) {
  (void)state;
  expect_err("#if 1/0\n#endif\n", "t.emt:1:6: error: division by zero at '/' in #if");
  expect_err("#if 1 %  0\n#endif\n", "t.emt:1:7: error: division by zero at '%' in #if");
  expect_err("#define Z 0\n#if 4 / Z\n#endif\n",
             "t.emt:2:7: error: division by zero at '/' in #if");
  expect_err("#if 1 << 64\n#endif\n", "t.emt:1:7: error: shift count out of range at '<<' in #if");
  expect_err("#if (1\n#endif\n", "t.emt:1:7: error: expected ')' before end of line in #if");
  expect_err("#if 1 ? 2\n#endif\n", "t.emt:1:10: error: expected ':' before end of line in #if");
  expect_err("#if 1 2\n#endif\n", "t.emt:1:7: error: missing operator before '2' in #if");
  expect_err("#if\n#endif\n", "t.emt:1:4: error: #if with no expression");
  expect_err("#if 0\n#elif\n#endif\n", "t.emt:2:6: error: #elif with no expression");
  expect_err("#if 1 +\n#endif\n", "t.emt:1:8: error: expected a value before end of line in #if");
  expect_err("#if * 2\n#endif\n", "t.emt:1:5: error: expected a value before '*' in #if");
  expect_err("#if \"s\"\n#endif\n", "t.emt:1:5: error: string '\"s\"' in #if");
  expect_err("#if __FILE__\n#endif\n", "t.emt:1:5: error: string '__FILE__' in #if");
  expect_err("#if '\\q'\n#endif\n", "t.emt:1:5: error: invalid character constant ''\\q'' in #if");
  expect_err("#if ''\n#endif\n", "t.emt:1:5: error: invalid character constant '''' in #if");
  expect_err("#if 0x\n#endif\n", "t.emt:1:5: error: invalid number '0x' in #if");
  expect_err("#if 1.5\n#endif\n", "t.emt:1:5: error: invalid number '1.5' in #if");
  expect_err("#if 08\n#endif\n", "t.emt:1:5: error: invalid number '08' in #if");
  expect_err("#if 'ab'\n#endif\n", "t.emt:1:5: error: invalid character constant ''ab'' in #if");
  expect_err("#if defined\n#endif\n",
             "t.emt:1:12: error: 'defined' expects a macro name, not end of line in #if");
  expect_err("#if defined(X\n#endif\n", "t.emt:1:14: error: expected ')' before end of line in #if");
  expect_err("#if 0\n#elif 1 1\n#endif\n", "t.emt:2:9: error: missing operator before '1' in #elif");
  /* an error in a macro's body is reported where the macro was used */
  expect_err("#define BAD * 2\n#if 2 + BAD\n#endif\n",
             "t.emt:2:9: error: expected a value before '*' in #if");
  /* the parser has a depth limit instead of a stack overflow */
  char deep[1200];
  memset(deep, '(', 1000);
  strcpy(deep + 1000, "\n#endif\n");
  memcpy(deep, "#if ", 4);
  assert_null(pp(deep));
  assert_non_null(strstr(err, "nested too deeply"));
}

static void test_structure_errors(void **state) {
  (void)state;
  expect_err("#define F(x) x\n", "t.emt:1:10: error: macros with arguments are not supported");
  expect_err("#define\n", "t.emt:1:8: error: #define expects a macro name");
  expect_err("#define 3 x\n", "t.emt:1:9: error: #define expects a macro name");
  expect_err("#undef X Y\n", "t.emt:1:10: error: extra tokens after #undef");
  expect_err("#ifdef\n#endif\n", "t.emt:1:7: error: #ifdef expects a macro name");
  expect_err("#ifndef A B\n#endif\n", "t.emt:1:11: error: extra tokens after #ifndef");
  expect_err("#else\n", "t.emt:1:1: error: #else without #if");
  expect_err("x\n  #elif 1\n", "t.emt:2:3: error: #elif without #if");
  expect_err("#endif\n", "t.emt:1:1: error: #endif without #if");
  expect_err("#if 1\n#else\n#else\n#endif\n", "t.emt:3:1: error: #else after #else");
  expect_err("#if 1\n#else\n#elif 1\n#endif\n", "t.emt:3:1: error: #elif after #else");
  expect_err("#if 1\n#endif X\n", "t.emt:2:8: error: extra tokens after #endif");
  expect_err("#if 1\n#else X\n#endif\n", "t.emt:2:7: error: extra tokens after #else");
  /* unterminated: at the innermost open group */
  expect_err("x\n  #if 1\ny\n", "t.emt:2:3: error: unterminated #if");
  expect_err("#ifdef A\n#endif\n#ifndef B\n#if 0\n#endif\n", "t.emt:3:1: error: unterminated #ifndef");
  expect_err("#if 1\n#if 0\n#endif\n", "t.emt:1:1: error: unterminated #if");
  expect_err("#error  stop  here \n", "t.emt:1:1: error: stop  here");
  expect_err("ok\n  # error don't /* c */ go\n", "t.emt:2:3: error: don't   go");
  expect_err("#error\n", "t.emt:1:1: error: error");
  expect_err("#line x\n", "t.emt:1:7: error: #line expects a line number (digits)");
  expect_err("#line\n", "t.emt:1:6: error: #line expects a line number (digits)");
  expect_err("#line 3000000000\n", "t.emt:1:7: error: #line number out of range");
  expect_err("#line 5 \"f\" x\n", "t.emt:1:13: error: extra tokens after #line");
  expect_err("#include\n", "t.emt:1:9: error: #include expects \"FILE\" or <FILE>");
  expect_err("#include \"a.emh\n", "t.emt:1:10: error: missing terminating \" in #include");
  expect_err("#include <a.emh\n", "t.emt:1:10: error: missing terminating > in #include");
  expect_err("#include \"\"\n", "t.emt:1:10: error: empty file name in #include");
  expect_err("#include \"a.emh\" x\n", "t.emt:1:18: error: extra tokens after #include");
  expect_err("#define NAME nothing\n#include NAME\n",
             "t.emt:2:10: error: #include expects \"FILE\" or <FILE>");
  /* comments */
  expect_err("a\nb /* c\nd\n", "t.emt:2:3: error: unterminated comment");
  expect_err("#define X /* c\n", "t.emt:1:11: error: unterminated comment");
  expect_err("#if 0\n  /*\n#endif\n", "t.emt:2:3: error: unterminated comment");
}

static void test_comment_lines(void **state) {
  (void)state;
  /* the 2008 samples: '#', blanks, prose */
  expect("string _procName;\n#\n# guestload --\n#  Checked wrappers, 0 for the null page.\nint x;\n",
         "string _procName;\n\n\n\nint x;\n");
  expect("  # indented prose 'with quotes /* and a comment opener\nx\n", "\nx\n");
  expect("#-----\n#!banner\nx\n", "\n\nx\n");
  /* '#', blanks, a directive name: a directive after all */
  expect("#  define N 4\n# if N == 4\nyes\n# endif\n", "\n\nyes\n\n");
  /* '#word' for an unknown word is a mistake, not a comment */
  expect_err("#foo bar\n", "t.emt:1:1: error: unknown directive #foo");
  expect_err("x\n   #pragma once\n", "t.emt:2:4: error: unknown directive #pragma");
  expect_err("#defined X\n", "t.emt:1:1: error: unknown directive #defined");
  /* ... except in a skipped block */
  expect("#if 0\n#foo\n#endif\nx\n", "\n#line 4 \"t.emt\"\nx\n");
}

static void test_line(void **state) {
  (void)state;
  expect("#line 100 \"z.emt\"\n__LINE__ __FILE__\nnext __LINE__\n",
         "#line 100 \"z.emt\"\n100 \"z.emt\"\nnext 101\n");
  expect("a\n#line 10\n__LINE__\n", "a\n#line 10 \"t.emt\"\n10\n");
  /* marker file names are escaped, and markers read back as #line */
  expect("#line 7 \"a\\\"b\"\n__FILE__\n", "#line 7 \"a\\\"b\"\n\"a\\\"b\"\n");
  char *once = pp("#if 0\nx\n#endif\ny\n#line 40 \"q.emt\"\nz\n");
  assert_non_null(once);
  char *twice = pp(once);
  assert_non_null(twice);
  assert_string_equal(once, twice);
  free(once);
  free(twice);
  /* errors after #line use its numbering */
  expect_err("#line 50 \"m.emt\"\n\n#else\n", "m.emt:51:1: error: #else without #if");
  expect("x\n#line __LINE__\n__LINE__\n", "x\n2\n"); /* no marker needed */
  /* a very long name is shortened in messages, never the message */
  char text[400], want[300];
  snprintf(text, sizeof text, "#line 7 \"%0300d\"\n#else\n", 0);
  snprintf(want, sizeof want, "%0200d:7:1: error: #else without #if", 0);
  expect_err(text, want);
  /* a directive continued over lines keeps later lines in step */
  expect("#define M 1 \\\n + 2\nM __LINE__\n", "\n\n1  + 2 3\n");
}

/* Read a fixture through the file name the test would use. */
static char *pp_file(const char *path, const char *const *incdirs, int n) {
  FILE *f = fopen(path, "r");
  if (!f)
    fail_msg("cannot open fixture %s", path);
  static char text[8192];
  size_t len = fread(text, 1, sizeof text - 1, f);
  fclose(f);
  text[len] = 0;
  em_opts o = {NULL, 0, incdirs, n, NULL, 0, NULL};
  err[0] = 0;
  return epp_run(text, path, &o, err, sizeof err);
}

static void test_include(void **state) {
  (void)state;
  static const char *const inc[] = {"/nonexistent", DIR "/inc"};
  char *out = pp_file(DIR "/main.emt", inc, 2);
  if (!out)
    fail_msg("%s", err);
  assert_string_equal(out,
      "\n"
      "\n"
      "#line 1 \"" DIR "/a.emh\" 1\n"
      "\n"
      "int a = 11;\n"
      "#line 3 \"" DIR "/main.emt\"\n"
      "x = 11;\n"
      "\n"
      "#line 1 \"" DIR "/inc/b.emh\" 1\n"
      "int b;\n"
      "#line 5 \"" DIR "/main.emt\"\n"
      "\n"
      "#line 1 \"" DIR "/same.emh\" 1\n"   /* beside the includer wins */
      "beside\n"
      "#line 6 \"" DIR "/main.emt\"\n"
      "\n"
      "#line 1 \"" DIR "/inc/only.emh\" 1\n"
      "only in incdir\n"
      "#line 7 \"" DIR "/main.emt\"\n"
      "\n"
      "#line 1 \"" DIR "/inc/nested.emh\" 1\n"
      "\n"
      "#line 1 \"" DIR "/inc/b.emh\" 1\n"  /* beside nested.emh, in inc/ */
      "int b;\n"
      "#line 2 \"" DIR "/inc/nested.emh\" 1\n"
      "nested\n"
      "#line 8 \"" DIR "/main.emt\"\n"
      "end\n");
  free(out);

  /* without -I the incdir-only file is not found */
  out = pp_file(DIR "/main.emt", NULL, 0);
  assert_null(out);
  assert_string_equal(err, DIR "/main.emt:4:10: error: cannot find include file 'b.emh'");

  /* the -I directories are searched in order */
  static const char *const both[] = {DIR, DIR "/inc"};
  em_opts o = {NULL, 0, both, 2, NULL, 0, NULL};
  out = epp_run("#include \"same.emh\"\n", "nowhere/t.emt", &o, err, sizeof err);
  assert_non_null(out);
  assert_string_equal(out, "\n#line 1 \"" DIR "/same.emh\" 1\nbeside\n");
  free(out);

  /* a macro may name the file */
  out = ppd("#define F <only.emh>\n#include F\n", NULL, 0);
  assert_non_null(out);
  assert_string_equal(out, "\n\n#line 1 \"" DIR "/inc/only.emh\" 1\nonly in incdir\n");
  free(out);

  expect_err("\n #include \"nope.emt\"\n", "t.emt:2:11: error: cannot find include file 'nope.emt'");
  expect_err("#include <nope.emt>\n", "t.emt:1:10: error: cannot find include file 'nope.emt'");
}

static void test_include_errors(void **state) {
  (void)state;
  static const char *const inc[] = {DIR};
  em_opts o = {NULL, 0, inc, 1, NULL, 0, NULL};
  /* errors inside an included file name it */
  assert_null(epp_run("#include \"err.emh\"\n", "t.emt", &o, err, sizeof err));
  /* ... but never quote its text: #error text stays in the file */
  assert_string_equal(err, DIR "/err.emh:2:1: error: #error in an included file");
  assert_null(epp_run("#include \"badif.emh\"\n", "t.emt", &o, err, sizeof err));
  assert_string_equal(err, DIR "/badif.emh:2:1: error: unterminated #if");
  /* an #if must end in its own file */
  assert_null(epp_run("#if 1\n#include \"endif.emh\"\n", "t.emt", &o, err, sizeof err));
  assert_string_equal(err, DIR "/endif.emh:1:1: error: #endif without #if");
  /* depth limit: 32 nested includes */
  assert_null(epp_run("#include \"loop.emh\"\n", "t.emt", &o, err, sizeof err));
  assert_string_equal(err, DIR "/loop.emh:1:1: error: #include nested too deeply (limit 32)");
  /* a directory is not an include file */
  assert_null(epp_run("#include \"inc\"\n", "t.emt", &o, err, sizeof err));
  assert_string_equal(err, "t.emt:1:10: error: cannot find include file 'inc'");
}

static void test_warning(void **state) {
  (void)state;
  char *text = NULL;
  size_t len = 0;
  FILE *w = open_memstream(&text, &len);
  assert_non_null(w);
  em_opts o = {NULL, 0, NULL, 0, NULL, 0, w};
  char *out = epp_run("a\n  #warning  look out \nb\n#if 0\n#warning no\n#endif\n",
                      "w.emt", &o, err, sizeof err);
  assert_non_null(out);
  assert_string_equal(out, "a\n\nb\n\n");
  fclose(w);
  assert_string_equal(text, "w.emt:2:3: warning: look out\n");
  free(text);
  free(out);
}

static void test_limits(void **state) {
  (void)state;
  /* exponential expansion stops with an error, not exhaustion */
  char text[4096] = "";
  for (int i = 0; i < 40; i++) {
    char line[64];
    snprintf(line, sizeof line, "#define M%d M%d M%d\n", i, i + 1, i + 1);
    strcat(text, line);
  }
  strcat(text, "M0\n");
  assert_null(pp(text));
  assert_non_null(strstr(err, "t.emt:41:1: error: preprocessed output too large"));
  /* so do long chains */
  char *chain = malloc(400 * 32);
  chain[0] = 0;
  for (int i = 0; i < 300; i++)
    sprintf(chain + strlen(chain), "#define C%d C%d\n", i, i + 1);
  strcat(chain, "C0\n");
  assert_null(pp(chain));
  assert_string_equal(err, "t.emt:301:1: error: macro expansion nested too deeply (limit 256)");
  free(chain);
}

int main(void) {
  const char *top = getenv("VPROBE_TOP");
  if (top && chdir(top) != 0) {
    perror(top);
    return 1;
  }
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_plain),
      cmocka_unit_test(test_define),
      cmocka_unit_test(test_rescan),
      cmocka_unit_test(test_no_expansion),
      cmocka_unit_test(test_predefined),
      cmocka_unit_test(test_seed_example),
      cmocka_unit_test(test_command_line),
      cmocka_unit_test(test_conditionals),
      cmocka_unit_test(test_expressions),
      cmocka_unit_test(test_expression_errors),
      cmocka_unit_test(test_structure_errors),
      cmocka_unit_test(test_comment_lines),
      cmocka_unit_test(test_line),
      cmocka_unit_test(test_include),
      cmocka_unit_test(test_include_errors),
      cmocka_unit_test(test_warning),
      cmocka_unit_test(test_limits),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
