/* SPDX-License-Identifier: MIT */
#pragma once

/* A scratch directory for the whole test group: pass setup/teardown to
 * cmocka_run_group_tests(); tmp_path() names a file in it (free it).
 * Define TMPDIR_TEMPLATE ("/tmp/NAME-XXXXXX") first. Include after
 * <cmocka.h>. */

#include <stdio.h>
#include <stdlib.h>

static char tmpdir[] = TMPDIR_TEMPLATE;

static int setup(void **state) {
        (void) state;
        return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state) {
        char cmd[128];
        (void) state;
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
        return system(cmd) == 0 ? 0 : -1;
}

static inline char *tmp_path(const char *name) {
        char *p;
        assert_true(asprintf(&p, "%s/%s", tmpdir, name) > 0);
        return p;
}
