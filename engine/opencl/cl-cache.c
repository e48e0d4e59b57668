/* SPDX-License-Identifier: MIT */
/* On-disk cache entries: a 32-byte header (magic, key, payload length,
 * payload checksum) and the payload. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cvopt/errors.h"
#include "macro.h"
#include "opencl/cl-cache.h"

#define CACHE_MAGIC "CVOPTCL1"
/* A program binary is a few MiB at most; anything larger is not ours. */
#define CACHE_MAX_PAYLOAD_BYTES (256u << 20)

typedef struct CacheHeader {
        char magic[8];
        uint64_t key;
        uint64_t size_bytes;
        uint64_t checksum;
} CacheHeader;

uint64_t cl_hash(uint64_t hash, const void *data, size_t size) {
        const uint8_t *p = data;

        if (hash == 0)
                hash = UINT64_C(0xcbf29ce484222325);
        for (size_t i = 0; i < size; i++) {
                hash ^= p[i];
                hash *= UINT64_C(0x100000001b3);
        }
        return hash;
}

void cl_cache_dir_resolve(const char *dir, char *buf, size_t size) {
        const char *env;

        if (dir) {
                snprintf(buf, size, "%s", dir);
                return;
        }
        env = getenv("CVOPT_CACHE_DIR");
        if (env) {
                snprintf(buf, size, "%s", env);
                return;
        }
        env = getenv("XDG_CACHE_HOME");
        if (env && env[0] == '/') {
                snprintf(buf, size, "%s/cvopt", env);
                return;
        }
        env = getenv("HOME");
        if (env && env[0] == '/') {
                snprintf(buf, size, "%s/.cache/cvopt", env);
                return;
        }
        buf[0] = '\0';
}

static void entry_path(const char *dir, const char *kind, uint64_t key, char *buf, size_t size) {
        snprintf(buf, size, "%s/%s-%016llx.bin", dir, kind, (unsigned long long) key);
}

static int read_all(int fd, void *buf, size_t size) {
        uint8_t *p = buf;

        while (size > 0) {
                ssize_t n = read(fd, p, size);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return -errno;
                if (n == 0)
                        return -CVOPT_E_CRC; /* truncated */
                p += n;
                size -= (size_t) n;
        }
        return 0;
}

int cl_cache_load(const char *dir, const char *kind, uint64_t key, void **ret_data, size_t *ret_size) {
        _cleanup_close_ int fd = -EBADF;
        _cleanup_free_ void *data = NULL;
        CacheHeader header;
        char path[4352];
        struct stat st;
        int r;

        if (!dir || !dir[0])
                return -ENOENT;
        entry_path(dir, kind, key, path, sizeof(path));
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        if (fstat(fd, &st) < 0)
                return -errno;
        r = read_all(fd, &header, sizeof(header));
        if (r == 0 && (memcmp(header.magic, CACHE_MAGIC, 8) != 0 || header.key != key ||
                       header.size_bytes > CACHE_MAX_PAYLOAD_BYTES ||
                       (uint64_t) st.st_size != sizeof(header) + header.size_bytes))
                r = -CVOPT_E_CRC;
        if (r == 0) {
                data = malloc(MAX(header.size_bytes, 1u));
                if (!data)
                        return -ENOMEM;
                r = read_all(fd, data, header.size_bytes);
        }
        if (r == 0 && cl_hash(0, data, header.size_bytes) != header.checksum)
                r = -CVOPT_E_CRC;
        if (r == -CVOPT_E_CRC) {
                (void) unlink(path);
                return r;
        }
        if (r < 0)
                return r;
        *ret_data = TAKE_PTR(data);
        *ret_size = header.size_bytes;
        return 0;
}

static int mkdir_parents(const char *dir) {
        char buf[4096];
        size_t length = strlen(dir);

        if (length == 0 || length >= sizeof(buf))
                return -EINVAL;
        memcpy(buf, dir, length + 1);
        for (size_t i = 1; i <= length; i++)
                if (buf[i] == '/' || buf[i] == '\0') {
                        char saved = buf[i];

                        buf[i] = '\0';
                        /* 0700: compiled programs are per-user (the daemon's
                         * directory comes from tmpfiles.d with its own mode). */
                        if (mkdir(buf, 0700) < 0 && errno != EEXIST)
                                return -errno;
                        buf[i] = saved;
                }
        return 0;
}

int cl_cache_store(const char *dir, const char *kind, uint64_t key, const void *data, size_t size) {
        CacheHeader header = { .key = key, .size_bytes = size, .checksum = cl_hash(0, data, size) };
        char path[4352], tmp[4400];
        _cleanup_close_ int fd = -EBADF;
        int r;

        if (!dir || !dir[0])
                return -ENOENT;
        if (size > CACHE_MAX_PAYLOAD_BYTES)
                return -EFBIG;
        r = mkdir_parents(dir);
        if (r < 0)
                return r;
        memcpy(header.magic, CACHE_MAGIC, 8);
        entry_path(dir, kind, key, path, sizeof(path));
        snprintf(tmp, sizeof(tmp), "%s.XXXXXX", path);
        fd = mkostemp(tmp, O_CLOEXEC);
        if (fd < 0)
                return -errno;
        if (write(fd, &header, sizeof(header)) != (ssize_t) sizeof(header) ||
            (size > 0 && write(fd, data, size) != (ssize_t) size) || fsync(fd) < 0) {
                r = errno ? -errno : -EIO;
                (void) unlink(tmp);
                return r;
        }
        if (rename(tmp, path) < 0) {
                r = -errno;
                (void) unlink(tmp);
                return r;
        }
        return 0;
}

void cl_cache_remove(const char *dir, const char *kind, uint64_t key) {
        char path[4352];

        if (!dir || !dir[0])
                return;
        entry_path(dir, kind, key, path, sizeof(path));
        (void) unlink(path);
}
