/* SPDX-License-Identifier: MIT */
#include <stdio.h>
#include <string.h>

#include "cvopt/errors.h"
#include "macro.h"

/* One detail buffer per thread: the daemon's worker and main loop fail
 * independently and must not overwrite each other's message. 512 bytes
 * holds a path and a sentence; longer details are cut. */
static _Thread_local char error_detail[512];

static const char *const project_error_names[] = {
        [CVOPT_E_FORMAT - CVOPT_E_BASE] = "malformed data",
        [CVOPT_E_CRC - CVOPT_E_BASE] = "checksum mismatch",
        [CVOPT_E_VERSION - CVOPT_E_BASE] = "unsupported format version",
        [CVOPT_E_UNSUPPORTED - CVOPT_E_BASE] = "not supported",
        [CVOPT_E_SHAPE - CVOPT_E_BASE] = "shape mismatch",
        [CVOPT_E_DATA - CVOPT_E_BASE] = "bad dataset or image",
        [CVOPT_E_NO_SIGNAL - CVOPT_E_BASE] = "no signal from camera",
        [CVOPT_E_BACKEND - CVOPT_E_BASE] = "backend failure",
        [CVOPT_E_TARGET - CVOPT_E_BASE] = "target not met",
};

const char *cvopt_strerror(int err) {
        if (err < 0)
                err = -err;
        if (err > CVOPT_E_BASE && err < _CVOPT_E_MAX)
                return project_error_names[err - CVOPT_E_BASE];
        if (err == 0)
                return "success";
        return strerror(err);
}

const char *cvopt_error_detail(void) {
        return error_detail;
}

void cvopt_error_clear(void) {
        error_detail[0] = 0;
}

int cvopt_error_setv(int err, const char *format, va_list ap) {
        vsnprintf(error_detail, sizeof(error_detail), format, ap);
        return err;
}

int cvopt_error_set(int err, const char *format, ...) {
        va_list ap;

        va_start(ap, format);
        cvopt_error_setv(err, format, ap);
        va_end(ap);
        return err;
}

int cvopt_error_prefix(int err, const char *format, ...) {
        char prefix[256], old[sizeof(error_detail)];
        va_list ap;

        va_start(ap, format);
        vsnprintf(prefix, sizeof(prefix), format, ap);
        va_end(ap);
        memcpy(old, error_detail, sizeof(old));
        if (old[0])
                snprintf(error_detail, sizeof(error_detail), "%s: %s", prefix, old);
        else
                snprintf(error_detail, sizeof(error_detail), "%s: %s", prefix, cvopt_strerror(err));
        return err;
}
