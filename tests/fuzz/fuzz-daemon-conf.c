/* SPDX-License-Identifier: MIT */
/* cvoptd's configuration parser: any bytes as a cvoptd.conf. */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "conf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        char path[64];
        Conf c;
        int fd = memfd_create("cvoptd.conf", MFD_CLOEXEC);
        if (fd < 0 || write(fd, data, size) != (ssize_t) size)
                abort();
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
        if (conf_init(&c) < 0)
                abort();
        (void) conf_parse_file(&c, path);
        conf_done(&c);
        close(fd);
        return 0;
}
