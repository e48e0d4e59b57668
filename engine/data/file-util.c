/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cvopt/errors.h"
#include "data/file-util.h"
#include "macro.h"

int file_read_all(const char *path, size_t max_bytes, uint8_t **ret_data, size_t *ret_size) {
        _cleanup_close_ int fd = -EBADF;
        _cleanup_free_ uint8_t *data = NULL;
        struct stat st;
        size_t size, done = 0;

        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return cvopt_error_set(-errno, "%s: cannot open: %s", path, strerror(errno));
        if (fstat(fd, &st) < 0)
                return cvopt_error_set(-errno, "%s: cannot stat: %s", path, strerror(errno));
        if (S_ISDIR(st.st_mode))
                return cvopt_error_set(-EISDIR, "%s: is a directory", path);
        if (!S_ISREG(st.st_mode))
                return cvopt_error_set(-EINVAL, "%s: not a regular file", path);
        if (st.st_size < 0 || (uint64_t) st.st_size > max_bytes)
                return cvopt_error_set(-EFBIG, "%s: file of %lld bytes is larger than the limit of %zu",
                                       path, (long long) st.st_size, max_bytes);
        size = (size_t) st.st_size;
        data = malloc(size + 1);
        if (!data)
                return -ENOMEM;
        while (done < size) {
                ssize_t n = read(fd, data + done, size - done);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return cvopt_error_set(-errno, "%s: read failed: %s", path, strerror(errno));
                }
                if (n == 0)
                        break; /* the file shrank while we read it: use what is there */
                done += (size_t) n;
        }
        data[done] = 0;
        *ret_data = TAKE_PTR(data);
        *ret_size = done;
        return 0;
}

int file_write_atomic(const char *path, const void *data, size_t size) {
        _cleanup_free_ char *tmp = NULL;
        _cleanup_close_ int fd = -EBADF;
        const uint8_t *p = data;
        size_t done = 0;
        int r;

        if (asprintf(&tmp, "%s.XXXXXX", path) < 0) {
                tmp = NULL;
                return -ENOMEM;
        }
        fd = mkostemp(tmp, O_CLOEXEC);
        if (fd < 0)
                return cvopt_error_set(-errno, "%s: cannot create temporary file: %s", path, strerror(errno));
        /* mkostemp creates 0600; written images are ordinary data files. */
        (void) fchmod(fd, 0644);
        while (done < size) {
                ssize_t n = write(fd, p + done, size - done);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        r = cvopt_error_set(-errno, "%s: write failed: %s", path, strerror(errno));
                        goto fail;
                }
                done += (size_t) n;
        }
        if (close(TAKE_FD(fd)) < 0) {
                r = cvopt_error_set(-errno, "%s: write failed: %s", path, strerror(errno));
                goto fail;
        }
        if (rename(tmp, path) < 0) {
                r = cvopt_error_set(-errno, "%s: cannot rename into place: %s", path, strerror(errno));
                goto fail;
        }
        return 0;
fail:
        (void) unlink(tmp);
        return r;
}
