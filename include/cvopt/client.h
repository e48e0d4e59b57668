/* SPDX-License-Identifier: MIT */
#pragma once

/* libcvopt-client: talk to cvoptd over its Unix socket (protocol v1,
 * docs/protocol.md) from C. It needs only libc and jansson (internally;
 * this header exposes plain JSON text, so an application may parse it
 * with any JSON library).
 *
 * Errors follow cvopt's convention: functions return 0 (or a count) on
 * success and a negative errno value on failure, and leave a sentence of
 * detail for the caller, read with cvopt_client_error_detail(). The
 * library never prints. It does not link the engine, so it keeps its own
 * detail (per thread), in the same style as cvopt_error_detail().
 *
 * Errors worth telling apart:
 *   -ENOENT, -ECONNREFUSED, -EACCES (from connect)  the daemon cannot be reached
 *   -ETIMEDOUT      no complete answer within the connection's timeout
 *   -ECONNRESET     the daemon closed the connection (it stopped, or cut
 *                   off an oversized request)
 *   -EMSGSIZE       a line from the daemon exceeded the client's line limit
 *                   (the connection is then unusable)
 *   -EPROTO         the daemon sent something that is not protocol v1
 *   -CVOPT_CLIENT_E_DAEMON  the daemon answered with an error response;
 *                   cvopt_client_error_code() gives its code
 *                   ("permission-denied", "failed", ...), the detail its message.
 *
 * A CvoptClient is not thread-safe; use one per thread. */

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define CVOPT_CLIENT_SOCKET_DEFAULT "/run/cvoptd/cvoptd.sock"

/* Lines longer than this from the daemon are refused unless raised with
 * cvopt_client_set_max_line(). A `model` response carries every label and
 * the optimizer's provenance, and `stats` one entry per client, so a few
 * hundred KiB are legitimate; 16 MiB leaves room without letting a
 * broken peer exhaust memory. */
#define CVOPT_CLIENT_LINE_MAX_DEFAULT (16u * 1024u * 1024u)

/* Same code space as cvopt's errors.h (above errno's range). */
enum {
        CVOPT_CLIENT_E_DAEMON = 4200, /* the daemon answered with an error response */
};

typedef struct CvoptClient CvoptClient;

/* Called for each event line (one JSON object with an "event" member,
 * without the newline). Return 0 to go on, anything else to stop
 * cvopt_client_read_events(), which then returns that value. */
typedef int (*CvoptClientEventFn)(const char *event_json, void *userdata);

/* Connects to the daemon's socket (NULL: CVOPT_CLIENT_SOCKET_DEFAULT).
 * timeout_usec bounds connect and every later wait for an answer (0: wait
 * forever). */
int cvopt_client_connect(const char *socket_path, uint64_t timeout_usec, CvoptClient **ret_client);

/* Closes the connection and frees the client. Accepts NULL, returns NULL. */
CvoptClient *cvopt_client_close(CvoptClient *client);

int cvopt_client_fd(const CvoptClient *client);
void cvopt_client_set_timeout(CvoptClient *client, uint64_t timeout_usec);
int cvopt_client_set_max_line(CvoptClient *client, size_t max_line_bytes);

/* Sends one request: {"cmd": CMD, "id": N, "v": 1} plus the members of
 * args_json (a JSON object as text, or NULL). *ret_id (optional) receives
 * the id to wait for. Writes all of it (partial writes and EINTR are
 * handled); the daemon going away is -ECONNRESET. */
int cvopt_client_send(CvoptClient *client, const char *cmd, const char *args_json, uint64_t *ret_id);

/* Waits for the response to request id and returns its whole line
 * (malloc'd, caller frees). Events that arrive first are handed to the
 * event callback if one is set, else queued for cvopt_client_next_event().
 * An error response is returned as a line too (with "ok": false). */
int cvopt_client_read_response(CvoptClient *client, uint64_t id, char **ret_line);

/* send + read_response + unwrap: on success *ret_result_json (optional)
 * receives the "result" member as JSON text (malloc'd; "null" for a null
 * result). An error response returns -CVOPT_CLIENT_E_DAEMON with the
 * daemon's code and message available (see above). */
int cvopt_client_request(CvoptClient *client, const char *cmd, const char *args_json, char **ret_result_json);

/* Reads FILE, sends it as a `classify` request (base64) and returns the
 * result object's JSON text. */
int cvopt_client_classify_file(CvoptClient *client, const char *path, char **ret_result_json);

/* Sends `subscribe` and waits for its confirmation. */
int cvopt_client_subscribe(CvoptClient *client);

/* Where events go while the client waits for a response or in
 * cvopt_client_read_events(). NULL: queue them for next_event. */
void cvopt_client_set_event_handler(CvoptClient *client, CvoptClientEventFn fn, void *userdata);

/* The next event's line (malloc'd), waiting at most timeout_usec
 * (0: forever). Queued events come first. Responses that arrive meanwhile
 * (to pipelined requests nobody waits for) are dropped. */
int cvopt_client_next_event(CvoptClient *client, uint64_t timeout_usec, char **ret_line);

/* Calls fn for events until it returns non-zero (returned), max_events
 * were delivered (max_events > 0; returns 0), or an error. */
int cvopt_client_read_events(CvoptClient *client, CvoptClientEventFn fn, void *userdata, uint64_t max_events);

/* Events dropped because the queue for next_event was full (it holds
 * CVOPT_CLIENT_EVENT_QUEUE_MAX lines while nobody reads them). */
#define CVOPT_CLIENT_EVENT_QUEUE_MAX 1024u
uint64_t cvopt_client_events_dropped(const CvoptClient *client);

/* Detail of the last failure on this thread, or "". */
const char *cvopt_client_error_detail(void);

/* The protocol error code of the last -CVOPT_CLIENT_E_DAEMON on this
 * thread ("permission-denied", "failed", ...), or "". */
const char *cvopt_client_error_code(void);

/* Name of an error (errno's strerror, or the client's own). Never NULL. */
const char *cvopt_client_strerror(int err);

#ifdef __cplusplus
}
#endif
