/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <poll.h>

#include "source.h"

int source_new(const Conf *conf, Source **ret_source) {
        if (startswith(conf->camera_device, "replay:"))
                return source_new_replay(conf, ret_source);
        return source_new_v4l2(conf, ret_source);
}

Source *source_free(Source *s) {
        if (s)
                s->ops->free(s);
        return NULL;
}

int wait_wake_fd(int wake_fd, uint64_t timeout_usec) {
        struct pollfd p = { .fd = wake_fd, .events = POLLIN };
        /* Round up so a sub-millisecond wait does not spin. */
        uint64_t msec = (timeout_usec + 999) / 1000;
        int r = poll(&p, 1, (int) MIN(msec, (uint64_t) INT32_MAX));
        if (r < 0)
                return errno == EINTR ? 0 : -errno;
        return r > 0;
}
