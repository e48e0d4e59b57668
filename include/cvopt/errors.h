/* SPDX-License-Identifier: MIT */
#pragma once

/* Errors in cvopt are negative errno values. Codes of our own start above
 * errno's range. Functions return 0 (or a count) on success and a negative
 * code on failure; cvopt_strerror() names any of them.
 *
 * Libraries do not log. A failing function may also leave a sentence of
 * detail for its caller ("model.cvm: section 3 (tensors): CRC mismatch"),
 * kept per thread and read with cvopt_error_detail(); the caller decides
 * whether and how to print it. */

#include <stdarg.h>

#ifdef __cplusplus
extern "C" {
#endif

enum {
        CVOPT_E_BASE = 4096,
        CVOPT_E_FORMAT,      /* malformed file or message */
        CVOPT_E_CRC,         /* checksum mismatch */
        CVOPT_E_VERSION,     /* unsupported format version */
        CVOPT_E_UNSUPPORTED, /* op, attribute or feature not supported */
        CVOPT_E_SHAPE,       /* shapes do not agree */
        CVOPT_E_DATA,        /* bad dataset or image */
        CVOPT_E_NO_SIGNAL,   /* camera gives no frames */
        CVOPT_E_BACKEND,     /* a compute backend failed */
        CVOPT_E_TARGET,      /* an optimization target could not be met */
        _CVOPT_E_MAX,
};

/* Name of an error code; accepts err and -err. Never NULL. */
const char *cvopt_strerror(int err);

/* Detail left by the last failing cvopt call on this thread, or "". */
const char *cvopt_error_detail(void);

/* Record detail for the caller and return err (negative), so that a
 * failure reads: return cvopt_error_set(-EINVAL, "%s: bad magic", path); */
int cvopt_error_set(int err, const char *format, ...) __attribute__((format(printf, 2, 3)));
int cvopt_error_setv(int err, const char *format, va_list ap) __attribute__((format(printf, 2, 0)));

/* Prefix the current detail with more context ("model.cvm: " + detail)
 * and return err. */
int cvopt_error_prefix(int err, const char *format, ...) __attribute__((format(printf, 2, 3)));

void cvopt_error_clear(void);

#ifdef __cplusplus
}
#endif
