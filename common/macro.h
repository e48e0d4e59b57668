/* SPDX-License-Identifier: MIT */
#pragma once

/* Small helpers shared by every layer of cvopt (engine, tools, daemon).
 * They follow systemd's conventions: locals that own a resource are marked
 * with a cleanup attribute, and ownership is handed on with TAKE_PTR/TAKE_FD,
 * so every early return releases what it must and nothing more. */

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define _cleanup_(f) __attribute__((cleanup(f)))
#define _unused_ __attribute__((unused))
#define _printf_(a, b) __attribute__((format(printf, a, b)))
#define _pure_ __attribute__((pure))
#define _likely_(x) __builtin_expect(!!(x), 1)
#define _unlikely_(x) __builtin_expect(!!(x), 0)

#define ELEMENTSOF(x) (sizeof(x) / sizeof((x)[0]))

#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))
#define CLAMP(x, lo, hi) ((x) < (lo) ? (lo) : (x) > (hi) ? (hi) : (x))
#define DIV_ROUND_UP(x, y) (((x) + (y) - 1) / (y))
#define ALIGN_TO(x, a) (((x) + (a) - 1) & ~((size_t) (a) - 1))

/* Return the value of a pointer and reset the variable, handing ownership on. */
#define TAKE_PTR(p)                           \
        ({                                    \
                __typeof__(p) _taken_ = (p);  \
                (p) = NULL;                   \
                _taken_;                      \
        })

#define TAKE_FD(fd)                       \
        ({                                \
                int _taken_fd_ = (fd);    \
                (fd) = -EBADF;            \
                _taken_fd_;               \
        })

/* Defines name##p(type **p) calling func(*p) when *p is non-NULL, for use
 * with _cleanup_. func follows the "accepts NULL, returns NULL" rule. */
#define DEFINE_TRIVIAL_CLEANUP_FUNC(type, func)              \
        static inline _unused_ void func##p(type *p) {      \
                if (*p)                                      \
                        *p = func(*p);                       \
        }

static inline void freep(void *p) {
        free(*(void **) p);
        *(void **) p = NULL;
}
#define _cleanup_free_ _cleanup_(freep)

static inline int safe_close(int fd) {
        if (fd >= 0) {
                int saved = errno;
                close(fd);
                errno = saved;
        }
        return -EBADF;
}

static inline void closep(int *fd) {
        *fd = safe_close(*fd);
}
#define _cleanup_close_ _cleanup_(closep)

static inline bool streq(const char *a, const char *b) {
        return strcmp(a, b) == 0;
}

static inline bool startswith(const char *s, const char *prefix) {
        return strncmp(s, prefix, strlen(prefix)) == 0;
}

static inline const char *strempty(const char *s) {
        return s ? s : "";
}

/* Overflow-checked size arithmetic: every length that comes from a file,
 * a socket or a camera goes through these before it is used. */
static inline bool size_mul_overflow(size_t a, size_t b, size_t *ret) {
        return __builtin_mul_overflow(a, b, ret);
}

static inline bool size_add_overflow(size_t a, size_t b, size_t *ret) {
        return __builtin_add_overflow(a, b, ret);
}
