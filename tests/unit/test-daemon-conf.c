/* SPDX-License-Identifier: MIT */
/* cvoptd configuration: defaults, drop-ins, and file:line errors. */

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "conf.h"
#include "cvopt/errors.h"

static char dir[64];

static void write_file(const char *name, const char *text) {
        char path[256];
        snprintf(path, sizeof path, "%s/%s", dir, name);
        FILE *f = fopen(path, "we");
        assert_non_null(f);
        fputs(text, f);
        fclose(f);
}

static int setup(void **state) {
        (void) state;
        snprintf(dir, sizeof dir, "/tmp/cvoptd-conf-XXXXXX");
        assert_non_null(mkdtemp(dir));
        return 0;
}

static int teardown(void **state) {
        char cmd[128];
        (void) state;
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        assert_int_equal(system(cmd), 0);
        return 0;
}

static int load(Conf *c, const char *text) {
        char path[256];
        write_file("cvoptd.conf", text);
        snprintf(path, sizeof path, "%s/cvoptd.conf", dir);
        assert_int_equal(conf_init(c), 0);
        return conf_load(c, path, true);
}

static void test_minimal_config_gets_defaults(void **state) {
        Conf c;
        (void) state;
        assert_int_equal(load(&c, "[camera]\ndevice = /dev/video3\n[model]\npath = /m.cvm\n"
                                  "[server]\nsocket = /tmp/x.sock\n"), 0);
        assert_string_equal(c.camera_device, "/dev/video3");
        assert_string_equal(c.model_path, "/m.cvm");
        assert_string_equal(c.server_socket, "/tmp/x.sock");
        assert_int_equal(c.camera_width, 640);
        assert_int_equal(c.camera_height, 480);
        assert_int_equal(c.camera_format, CAMERA_FORMAT_AUTO);
        assert_int_equal(c.top_k, 5);
        assert_int_equal(c.server_mode, 0660);
        assert_int_equal(c.max_request_bytes, 1 << 20);
        conf_done(&c);
}

static void test_every_key_parses(void **state) {
        Conf c;
        (void) state;
        assert_int_equal(load(&c, "[camera]\ndevice = replay:fashion-mnist:test,fps=5\nwidth = 320\nheight = 240\n"
                                  "fps = 15\nformat = MJPEG\nbuffers = 6\ntimeout_msec = 500\nretry_max_msec = 300\n"
                                  "[model]\npath = /a.cvm\n"
                                  "[inference]\nbackend = cpu\nopencl_device = Intel\nthreads = 2\ntop_k = 3\n"
                                  "min_score = 0.25 ; inline comment\n"
                                  "[server]\nsocket = /run/x.sock\nmode = 0600\ngroup = 0\nmax_clients = 9\n"
                                  "max_request_bytes = 4096\nsend_queue_messages = 8\nadmin_uids = root, 1000\n"
                                  "admin_groups = 0 27\n"
                                  "[telemetry]\nstatus_interval_msec = 250\nlog_interval_sec = 60\n"), 0);
        assert_int_equal(c.camera_format, CAMERA_FORMAT_MJPEG);
        assert_int_equal(c.camera_timeout_usec, 500000);
        assert_int_equal(c.threads, 2);
        assert_true(c.min_score > 0.249 && c.min_score < 0.251);
        assert_int_equal(c.server_mode, 0600);
        assert_true(c.server_group_set);
        assert_int_equal(c.n_admin_uids, 2);
        assert_int_equal(c.admin_uids[0], 0);
        assert_int_equal(c.admin_uids[1], 1000);
        assert_int_equal(c.n_admin_groups, 2);
        assert_int_equal(c.admin_groups[1], 27);
        assert_int_equal(c.status_interval_usec, 250000);
        assert_int_equal(c.log_interval_usec, 60000000);
        conf_done(&c);
}

static void test_unknown_key_names_file_and_line(void **state) {
        Conf c;
        (void) state;
        assert_int_equal(load(&c, "# comment\n[camera]\nwidth = 320\nwdith = 240\n"), -EINVAL);
        assert_non_null(strstr(cvopt_error_detail(), "cvoptd.conf:4:"));
        assert_non_null(strstr(cvopt_error_detail(), "unknown key \"wdith\""));
        conf_done(&c);

        assert_int_equal(load(&c, "[cammera]\nwidth = 320\n"), -EINVAL);
        assert_non_null(strstr(cvopt_error_detail(), "cvoptd.conf:2:"));
        conf_done(&c);
}

static void test_bad_values_name_file_and_line(void **state) {
        (void) state;
        static const char *const bad[] = {
                "[camera]\nwidth = 0\n",          "[camera]\nwidth = 12x\n",
                "[camera]\nfps = -5\n",           "[camera]\nformat = h264\n",
                "[camera]\nbuffers = 99\n",       "[inference]\nbackend = tpu\n",
                "[inference]\nmin_score = 1.5\n", "[inference]\nmin_score = nan\n",
                "[server]\nmode = 0999\n",        "[server]\nsocket = relative.sock\n",
                "[server]\nadmin_uids = no-such-user-cvopt\n",
                "[server]\nmax_request_bytes = 10\n",
        };
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
                Conf c;
                assert_int_equal(load(&c, bad[i]), -EINVAL);
                assert_non_null(strstr(cvopt_error_detail(), "cvoptd.conf:2:"));
                conf_done(&c);
        }
}

static void test_syntax_error_and_long_line(void **state) {
        Conf c;
        char text[512];
        (void) state;
        assert_int_equal(load(&c, "[camera]\nwidth 320\n"), -EINVAL);
        assert_non_null(strstr(cvopt_error_detail(), "cvoptd.conf:2: syntax error"));
        conf_done(&c);

        snprintf(text, sizeof text, "[model]\npath = /%0300d\n", 0);
        assert_int_equal(load(&c, text), -EINVAL);
        assert_non_null(strstr(cvopt_error_detail(), "line too long"));
        conf_done(&c);
}

static void test_dropins_override_in_name_order(void **state) {
        char d[128];
        Conf c;
        (void) state;
        snprintf(d, sizeof d, "%s/conf.d", dir);
        mkdir(d, 0755);
        write_file("conf.d/20-b.conf", "[camera]\nwidth = 800\n");
        write_file("conf.d/10-a.conf", "[camera]\nwidth = 100\nheight = 100\n");
        write_file("conf.d/ignored.txt", "garbage\n");
        assert_int_equal(load(&c, "[camera]\nwidth = 320\nfps = 7\n"), 0);
        assert_int_equal(c.camera_width, 800);
        assert_int_equal(c.camera_height, 100);
        assert_int_equal(c.camera_fps, 7);
        conf_done(&c);

        write_file("conf.d/30-bad.conf", "[camera]\n\nheight = tall\n");
        assert_int_equal(load(&c, "[camera]\n"), -EINVAL);
        assert_non_null(strstr(cvopt_error_detail(), "conf.d/30-bad.conf:3:"));
        conf_done(&c);
}

static void test_missing_file(void **state) {
        Conf c;
        char path[256];
        (void) state;
        snprintf(path, sizeof path, "%s/nope.conf", dir);
        assert_int_equal(conf_init(&c), 0);
        assert_int_equal(conf_load(&c, path, true), -ENOENT);
        assert_int_equal(conf_load(&c, path, false), 0);
        conf_done(&c);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_minimal_config_gets_defaults, setup, teardown),
                cmocka_unit_test_setup_teardown(test_every_key_parses, setup, teardown),
                cmocka_unit_test_setup_teardown(test_unknown_key_names_file_and_line, setup, teardown),
                cmocka_unit_test_setup_teardown(test_bad_values_name_file_and_line, setup, teardown),
                cmocka_unit_test_setup_teardown(test_syntax_error_and_long_line, setup, teardown),
                cmocka_unit_test_setup_teardown(test_dropins_override_in_name_order, setup, teardown),
                cmocka_unit_test_setup_teardown(test_missing_file, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
