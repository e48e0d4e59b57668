/* SPDX-License-Identifier: MIT */
/* libcvopt-client against a scripted peer on a real Unix socket: each
 * test's server thread plays the daemon's part byte by byte (split lines,
 * events before responses, oversized lines, closing mid-request, silence),
 * and the test checks what an application would see. */

#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "client-internal.h"
#include "cvopt/client.h"

typedef struct Peer {
        char dir[64];
        char path[128];
        int listen_fd;
        pthread_t thread;
        void (*script)(int fd, struct Peer *p);
        /* What the script saw, for the test to check afterwards. */
        json_t *request;
} Peer;

static void sleep_msec(int msec) {
        nanosleep(&(struct timespec) { .tv_sec = msec / 1000, .tv_nsec = (long) (msec % 1000) * 1000000L }, NULL);
}

static void put(int fd, const char *s) {
        size_t n = strlen(s);
        while (n > 0) {
                ssize_t k = write(fd, s, n);
                if (k <= 0)
                        return;
                s += k;
                n -= (size_t) k;
        }
}

/* One request line, parsed. */
static json_t *get_request(int fd) {
        char buf[1 << 16];
        size_t n = 0;
        while (n < sizeof buf - 1) {
                ssize_t k = read(fd, buf + n, 1);
                if (k <= 0)
                        return NULL;
                if (buf[n] == '\n')
                        break;
                n++;
        }
        buf[n] = 0;
        return json_loads(buf, 0, NULL);
}

static void *serve(void *userdata) {
        Peer *p = userdata;
        int fd = accept(p->listen_fd, NULL, NULL);
        if (fd >= 0) {
                p->script(fd, p);
                close(fd);
        }
        return NULL;
}

static void peer_start(Peer *p, void (*script)(int fd, Peer *p)) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        snprintf(p->dir, sizeof p->dir, "/tmp/test-client-XXXXXX");
        assert_non_null(mkdtemp(p->dir));
        snprintf(p->path, sizeof p->path, "%s/sock", p->dir);
        snprintf(sa.sun_path, sizeof sa.sun_path, "%s", p->path);
        p->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        assert_true(p->listen_fd >= 0);
        assert_int_equal(bind(p->listen_fd, (struct sockaddr *) &sa, sizeof sa), 0);
        assert_int_equal(listen(p->listen_fd, 4), 0);
        p->script = script;
        p->request = NULL;
        assert_int_equal(pthread_create(&p->thread, NULL, serve, p), 0);
}

static void peer_stop(Peer *p) {
        pthread_join(p->thread, NULL);
        close(p->listen_fd);
        unlink(p->path);
        rmdir(p->dir);
        json_decref(p->request);
}

/* An event first, then the response in three pieces, cut inside the
 * JSON, with pauses so the client must reassemble across reads. */
static void script_split(int fd, Peer *p) {
        p->request = get_request(fd);
        put(fd, "{\"event\":\"result\",\"seq\":1,\"label\":\"Bag\"}\n{\"v\":1,\"id\":");
        sleep_msec(30);
        put(fd, "1,\"ok\":tr");
        sleep_msec(30);
        put(fd, "ue,\"result\":{\"fps\":29.5}}\n");
        get_request(fd); /* wait until the client is done */
}

static void test_request_split_response_and_queued_event(void **state) {
        (void) state;
        Peer p;
        CvoptClient *c = NULL;
        char *result = NULL, *event = NULL;
        peer_start(&p, script_split);
        assert_int_equal(cvopt_client_connect(p.path, 5000000, &c), 0);
        assert_int_equal(cvopt_client_request(c, "status", "{\"x\":2}", &result), 0);
        json_t *r = json_loads(result, 0, NULL);
        assert_non_null(r);
        assert_true(json_number_value(json_object_get(r, "fps")) == 29.5);
        json_decref(r);
        /* The event that came before the response was kept, not lost. */
        assert_int_equal(cvopt_client_next_event(c, 1000000, &event), 0);
        assert_non_null(strstr(event, "\"Bag\""));
        free(result);
        free(event);
        cvopt_client_close(c);
        peer_stop(&p);
}

static void script_check_request(int fd, Peer *p) {
        p->request = get_request(fd);
        put(fd, "{\"v\":1,\"id\":1,\"ok\":true,\"result\":null}\n");
}

static void test_request_on_the_wire(void **state) {
        (void) state;
        Peer p;
        CvoptClient *c = NULL;
        char *result = NULL;
        peer_start(&p, script_check_request);
        assert_int_equal(cvopt_client_connect(p.path, 5000000, &c), 0);
        assert_int_equal(cvopt_client_request(c, "reload", "{\"path\":\"/m.cvm\"}", &result), 0);
        assert_string_equal(result, "null");
        free(result);
        cvopt_client_close(c);
        pthread_join(p.thread, NULL);
        assert_non_null(p.request);
        assert_string_equal(json_string_value(json_object_get(p.request, "cmd")), "reload");
        assert_string_equal(json_string_value(json_object_get(p.request, "path")), "/m.cvm");
        assert_int_equal(json_integer_value(json_object_get(p.request, "id")), 1);
        assert_int_equal(json_integer_value(json_object_get(p.request, "v")), 1);
        close(p.listen_fd);
        unlink(p.path);
        rmdir(p.dir);
        json_decref(p.request);
}

static void script_error(int fd, Peer *p) {
        p->request = get_request(fd);
        /* A stale answer to a pipelined request nobody waits for, then ours. */
        put(fd, "{\"v\":1,\"id\":99,\"ok\":true,\"result\":{}}\n"
                "{\"v\":1,\"id\":1,\"ok\":false,\"error\":{\"code\":\"permission-denied\",\"message\":\"reload needs admin\"}}\n");
        get_request(fd);
}

static void test_error_response(void **state) {
        (void) state;
        Peer p;
        CvoptClient *c = NULL;
        char *result = NULL;
        peer_start(&p, script_error);
        assert_int_equal(cvopt_client_connect(p.path, 5000000, &c), 0);
        assert_int_equal(cvopt_client_request(c, "reload", NULL, &result), -CVOPT_CLIENT_E_DAEMON);
        assert_null(result);
        assert_string_equal(cvopt_client_error_code(), "permission-denied");
        assert_string_equal(cvopt_client_error_detail(), "reload needs admin");
        cvopt_client_close(c);
        peer_stop(&p);
}

static void script_oversized(int fd, Peer *p) {
        char big[300];
        p->request = get_request(fd);
        memset(big, 'x', sizeof big - 1);
        big[sizeof big - 1] = 0;
        put(fd, "{\"v\":1,\"id\":1,\"ok\":true,\"result\":\"");
        put(fd, big);
        put(fd, "\"}\n");
        get_request(fd);
}

static void test_oversized_line(void **state) {
        (void) state;
        Peer p;
        CvoptClient *c = NULL;
        peer_start(&p, script_oversized);
        assert_int_equal(cvopt_client_connect(p.path, 5000000, &c), 0);
        assert_int_equal(cvopt_client_set_max_line(c, 100), 0);
        assert_int_equal(cvopt_client_request(c, "status", NULL, NULL), -EMSGSIZE);
        /* The stream is at an unknown point now: later calls refuse. */
        assert_int_equal(cvopt_client_request(c, "status", NULL, NULL), -EMSGSIZE);
        cvopt_client_close(c);
        peer_stop(&p);
}

static void script_oversized_whole(int fd, Peer *p) {
        char line[400];
        p->request = get_request(fd);
        put(fd, "{\"v\":1,\"id\":1,\"ok\":true,\"result\":null}\n");
        json_decref(get_request(fd));
        int n = snprintf(line, sizeof line, "{\"v\":1,\"id\":2,\"ok\":true,\"result\":\"%0300d\"}\n", 0);
        assert_true(n > 300);
        put(fd, line); /* in one piece: it lands in the buffer with its newline */
        get_request(fd);
}

static void test_oversized_line_in_one_piece(void **state) {
        (void) state;
        Peer p;
        CvoptClient *c = NULL;
        peer_start(&p, script_oversized_whole);
        assert_int_equal(cvopt_client_connect(p.path, 5000000, &c), 0);
        /* The first answer grows the buffer well beyond the limit set next. */
        assert_int_equal(cvopt_client_request(c, "status", NULL, NULL), 0);
        assert_int_equal(cvopt_client_set_max_line(c, 100), 0);
        assert_int_equal(cvopt_client_request(c, "status", NULL, NULL), -EMSGSIZE);
        cvopt_client_close(c);
        peer_stop(&p);
}

static void script_hang_up(int fd, Peer *p) {
        p->request = get_request(fd);
        put(fd, "{\"v\":1,\"id\":1,\"ok\"");
}

static void test_daemon_goes_away(void **state) {
        (void) state;
        Peer p;
        CvoptClient *c = NULL;
        peer_start(&p, script_hang_up);
        assert_int_equal(cvopt_client_connect(p.path, 5000000, &c), 0);
        assert_int_equal(cvopt_client_request(c, "status", NULL, NULL), -ECONNRESET);
        assert_non_null(strstr(cvopt_client_error_detail(), "closed the connection"));
        pthread_join(p.thread, NULL);
        /* Writing to a closed peer is an error, not a SIGPIPE. */
        assert_int_equal(cvopt_client_send(c, "status", NULL, NULL), -ECONNRESET);
        cvopt_client_close(c);
        close(p.listen_fd);
        unlink(p.path);
        rmdir(p.dir);
        json_decref(p.request);
}

static void script_too_large(int fd, Peer *p) {
        char buf[4096];
        (void) p;
        /* Read a little of the huge request, answer, hang up: the daemon's
         * handling of a line over max_request_bytes. */
        if (read(fd, buf, sizeof buf) <= 0)
                return;
        put(fd, "{\"v\":1,\"id\":null,\"ok\":false,\"error\":{\"code\":\"too-large\",\"message\":\"request too long\"}}\n");
        shutdown(fd, SHUT_RDWR);
}

static void test_answer_then_close_while_writing(void **state) {
        (void) state;
        Peer p;
        CvoptClient *c = NULL;
        size_t n = 8u << 20;
        char *big = malloc(n + 32);
        assert_non_null(big);
        strcpy(big, "{\"image\":\"");
        memset(big + 10, 'A', n);
        strcpy(big + 10 + n, "\"}");
        peer_start(&p, script_too_large);
        assert_int_equal(cvopt_client_connect(p.path, 5000000, &c), 0);
        /* The write fails half-way; the answer sent before the close is
         * what the caller gets, not a bare "connection reset". */
        assert_int_equal(cvopt_client_request(c, "classify", big, NULL), -CVOPT_CLIENT_E_DAEMON);
        assert_string_equal(cvopt_client_error_code(), "too-large");
        assert_int_equal(cvopt_client_request(c, "status", NULL, NULL), -ECONNRESET);
        free(big);
        cvopt_client_close(c);
        peer_stop(&p);
}

static void script_silent(int fd, Peer *p) {
        p->request = get_request(fd);
        get_request(fd); /* returns when the client closes */
}

static void test_timeout(void **state) {
        (void) state;
        Peer p;
        CvoptClient *c = NULL;
        peer_start(&p, script_silent);
        assert_int_equal(cvopt_client_connect(p.path, 200000, &c), 0);
        uint64_t t0 = client_now_usec();
        assert_int_equal(cvopt_client_request(c, "status", NULL, NULL), -ETIMEDOUT);
        uint64_t waited = client_now_usec() - t0;
        assert_true(waited >= 190000 && waited < 2000000);
        cvopt_client_close(c);
        peer_stop(&p);
}

static void script_events(int fd, Peer *p) {
        p->request = get_request(fd);
        put(fd, "{\"v\":1,\"id\":1,\"ok\":true,\"result\":{\"subscribed\":true}}\n");
        for (int i = 1; i <= 5; i++) {
                char line[128];
                snprintf(line, sizeof line, "{\"event\":\"result\",\"seq\":%d}\n", i);
                put(fd, line);
                if (i == 2)
                        /* An unrelated response in the event stream is skipped. */
                        put(fd, "{\"v\":1,\"id\":7,\"ok\":true,\"result\":null}\n");
        }
        get_request(fd);
}

static int collect(const char *line, void *userdata) {
        int *seqs = userdata;
        json_t *e = json_loads(line, 0, NULL);
        seqs[++seqs[0]] = (int) json_integer_value(json_object_get(e, "seq"));
        json_decref(e);
        return seqs[seqs[0]] == 4 ? 42 : 0;
}

static void test_subscribe_and_read_events(void **state) {
        (void) state;
        Peer p;
        CvoptClient *c = NULL;
        int seqs[8] = { 0 };
        char *line = NULL;
        peer_start(&p, script_events);
        assert_int_equal(cvopt_client_connect(p.path, 5000000, &c), 0);
        assert_int_equal(cvopt_client_subscribe(c), 0);
        /* max_events stops after 2; the handler's non-zero stops at seq 4. */
        assert_int_equal(cvopt_client_read_events(c, collect, seqs, 2), 0);
        assert_int_equal(seqs[0], 2);
        assert_int_equal(cvopt_client_read_events(c, collect, seqs, 0), 42);
        assert_int_equal(seqs[0], 4);
        assert_int_equal(seqs[1], 1);
        assert_int_equal(seqs[2], 2);
        assert_int_equal(seqs[3], 3);
        assert_int_equal(seqs[4], 4);
        assert_int_equal(cvopt_client_next_event(c, 1000000, &line), 0);
        assert_non_null(strstr(line, "\"seq\":5"));
        free(line);
        cvopt_client_close(c);
        peer_stop(&p);
}

static void script_classify(int fd, Peer *p) {
        p->request = get_request(fd);
        put(fd, "{\"v\":1,\"id\":1,\"ok\":true,\"result\":{\"label\":\"Bag\",\"seq\":0}}\n");
}

static void test_classify_file(void **state) {
        (void) state;
        Peer p;
        CvoptClient *c = NULL;
        char file[] = "/tmp/test-client-image-XXXXXX", *result = NULL;
        int fd = mkstemp(file);
        assert_true(fd >= 0);
        put(fd, "foobar");
        close(fd);
        peer_start(&p, script_classify);
        assert_int_equal(cvopt_client_connect(p.path, 5000000, &c), 0);
        assert_int_equal(cvopt_client_classify_file(c, file, &result), 0);
        assert_non_null(strstr(result, "\"Bag\""));
        free(result);
        cvopt_client_close(c);
        pthread_join(p.thread, NULL);
        assert_string_equal(json_string_value(json_object_get(p.request, "cmd")), "classify");
        assert_string_equal(json_string_value(json_object_get(p.request, "image")), "Zm9vYmFy");
        close(p.listen_fd);
        unlink(p.path);
        rmdir(p.dir);
        json_decref(p.request);
        unlink(file);
        assert_int_equal(cvopt_client_classify_file(NULL, file, &result), -ENOENT);
}

static void test_connect_failures(void **state) {
        (void) state;
        CvoptClient *c = NULL;
        char dir[] = "/tmp/test-client-XXXXXX", path[128];
        assert_non_null(mkdtemp(dir));
        snprintf(path, sizeof path, "%s/none", dir);
        assert_int_equal(cvopt_client_connect(path, 1000000, &c), -ENOENT);
        assert_null(c);
        assert_non_null(strstr(cvopt_client_error_detail(), path));

        /* A socket file nobody listens on (a daemon that died). */
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
        int fd = socket(AF_UNIX, SOCK_STREAM, 0);
        assert_int_equal(bind(fd, (struct sockaddr *) &sa, sizeof sa), 0);
        close(fd);
        assert_int_equal(cvopt_client_connect(path, 1000000, &c), -ECONNREFUSED);
        unlink(path);
        rmdir(dir);

        char longpath[200];
        memset(longpath, 'a', sizeof longpath - 1);
        longpath[0] = '/';
        longpath[sizeof longpath - 1] = 0;
        assert_int_equal(cvopt_client_connect(longpath, 1000000, &c), -EINVAL);
}

static void test_base64(void **state) {
        (void) state;
        /* RFC 4648, section 10. */
        static const char *const vectors[][2] = {
                { "", "" }, { "f", "Zg==" }, { "fo", "Zm8=" }, { "foo", "Zm9v" },
                { "foob", "Zm9vYg==" }, { "fooba", "Zm9vYmE=" }, { "foobar", "Zm9vYmFy" },
        };
        for (size_t i = 0; i < sizeof vectors / sizeof vectors[0]; i++) {
                char *s = client_base64_encode(vectors[i][0], strlen(vectors[i][0]));
                assert_string_equal(s, vectors[i][1]);
                free(s);
        }
        const unsigned char bin[] = { 0xff, 0xfe, 0x00, 0x3e, 0x3f };
        char *s = client_base64_encode(bin, sizeof bin);
        assert_string_equal(s, "//4APj8=");
        free(s);
}

int main(void) {
        /* The scripted peer may write after the client hung up on purpose;
         * that must fail its write, not kill the test. */
        signal(SIGPIPE, SIG_IGN);
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_request_split_response_and_queued_event),
                cmocka_unit_test(test_request_on_the_wire),
                cmocka_unit_test(test_error_response),
                cmocka_unit_test(test_oversized_line),
                cmocka_unit_test(test_oversized_line_in_one_piece),
                cmocka_unit_test(test_daemon_goes_away),
                cmocka_unit_test(test_timeout),
                cmocka_unit_test(test_answer_then_close_while_writing),
                cmocka_unit_test(test_subscribe_and_read_events),
                cmocka_unit_test(test_classify_file),
                cmocka_unit_test(test_connect_failures),
                cmocka_unit_test(test_base64),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
