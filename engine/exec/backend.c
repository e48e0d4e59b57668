/* SPDX-License-Identifier: MIT */
/* The table of backends the executor can choose from by name. */
#include <stdio.h>

#include "exec/backend.h"
#include "macro.h"

static const Backend *const backends[] = {
        &backend_cpu_simd,
        &backend_cpu_ref,
};

const Backend *backend_find(const char *name) {
        /* "cpu" names the best CPU backend: the SIMD one, which hands every
         * op it cannot run (all of them without AVX2) to the reference. */
        if (!name || streq(name, "cpu"))
                return &backend_cpu_simd;
        for (size_t i = 0; i < ELEMENTSOF(backends); i++)
                if (streq(backends[i]->name, name))
                        return backends[i];
        return NULL;
}

char *backend_names(char *buf, size_t size) {
        size_t used;

        if (size == 0)
                return buf;
        used = (size_t) snprintf(buf, size, "cpu");
        for (size_t i = 0; i < ELEMENTSOF(backends) && used < size; i++)
                used += (size_t) snprintf(buf + used, size - used, ", %s", backends[i]->name);
        return buf;
}
