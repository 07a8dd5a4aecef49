/* qmp: a small client for QEMU's machine protocol (QMP) on a unix socket.
 *
 * QMP speaks JSON objects, one per line.  The client is synchronous: a
 * command is sent and the answer read, while asynchronous events that arrive
 * in between are queued for qmp_next_event.  The JSON handling is only what
 * QMP answers need (top-level keys, strings, integers) and copes with any
 * bytes: a malformed message is skipped, never trusted.
 *
 * Return conventions: 0 success, 1 QMP reported an error (its text is in the
 * reply buffer), -1 the connection failed or timed out (qmp_error says why).
 */
#ifndef VPROBE_GUEST_QMP_H
#define VPROBE_GUEST_QMP_H

#include <stddef.h>
#include <stdint.h>

typedef struct qmp qmp;

/* Connects to the unix socket PATH, reads the greeting and negotiates
 * capabilities.  NULL on failure, with the reason in err. */
qmp *qmp_open(const char *path, char *err, size_t cap);
void qmp_close(qmp *q);
int qmp_fd(qmp *q);

/* Sends the command object JSON (e.g. {"execute":"query-status"}) and copies
 * the raw JSON text of its "return" value (or of its "error" object) into
 * reply, truncated to cap.  reply may be NULL. */
int qmp_cmd(qmp *q, const char *json, char *reply, size_t cap);

/* Runs a human-monitor command line (e.g. "info registers") and copies its
 * decoded text output into out. */
int qmp_hmp(qmp *q, const char *cmdline, char *out, size_t cap);

/* Waits up to timeout_ms (0: just look, -1: forever) for an asynchronous
 * event and copies its name (RESET, SHUTDOWN, STOP...) into name.  1 when an
 * event was returned, 0 on timeout, -1 when the connection is gone.  The
 * event's whole JSON text stays available through qmp_event_json until the
 * next call. */
int qmp_next_event(qmp *q, char *name, size_t cap, int timeout_ms);
const char *qmp_event_json(qmp *q);

/* The last I/O or protocol error. */
const char *qmp_error(qmp *q);

/* JSON helpers on one object's text.  Keys are looked up at the object's top
 * level, or along a dotted path ("data.reason").  qmp_json_str decodes a
 * string value (escapes and \uXXXX) into out; qmp_json_int reads an integer
 * or boolean.  Both return 0 when found, -1 otherwise. */
int qmp_json_str(const char *json, const char *key, char *out, size_t cap);
int qmp_json_int(const char *json, const char *key, int64_t *val);

/* Appends S to out as a JSON string literal (quotes and escapes), keeping
 * out NUL-terminated; returns the length it would have (like snprintf). */
size_t qmp_json_quote(char *out, size_t cap, const char *s);

#endif
