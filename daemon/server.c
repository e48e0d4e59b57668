/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "log.h"
#include "server.h"

/* At most this many queued messages go out in one writev(). */
#define WRITE_BATCH 64

Message *message_new(const char *text, size_t len) {
        size_t size;
        if (size_add_overflow(len, 1, &size) || size_add_overflow(size, sizeof(Message), &size))
                return NULL;
        Message *m = malloc(size);
        if (!m)
                return NULL;
        m->refs = 1;
        m->size = len + 1;
        memcpy(m->data, text, len);
        m->data[len] = '\n';
        return m;
}

Message *message_ref(Message *m) {
        if (m)
                m->refs++;
        return m;
}

Message *message_unref(Message *m) {
        if (m && --m->refs == 0)
                free(m);
        return NULL;
}

static void client_free(Client *c) {
        Server *s = c->server;
        if (c->prev)
                c->prev->next = c->next;
        else
                s->clients = c->next;
        if (c->next)
                c->next->prev = c->prev;
        s->n_clients--;
        sd_event_source_disable_unref(c->io);
        safe_close(c->fd);
        for (uint32_t i = 0; i < c->queue_len; i++)
                message_unref(c->queue[(c->queue_head + i) % c->queue_cap]);
        free(c->queue);
        free(c->read_buf);
        free(c);
}

Client *server_find_client(Server *s, uint64_t id) {
        for (Client *c = s->clients; c; c = c->next)
                if (c->id == id)
                        return c;
        return NULL;
}

/* Writes as much of the queue as the socket takes now. Returns < 0 if the
 * client is gone (the caller frees it). */
static int client_flush(Client *c) {
        while (c->queue_len > 0) {
                struct iovec iov[WRITE_BATCH];
                uint32_t n = MIN(c->queue_len, WRITE_BATCH);
                for (uint32_t i = 0; i < n; i++) {
                        Message *m = c->queue[(c->queue_head + i) % c->queue_cap];
                        size_t off = i == 0 ? c->head_offset : 0;
                        iov[i] = (struct iovec) { .iov_base = m->data + off, .iov_len = m->size - off };
                }
                ssize_t w = writev(c->fd, iov, (int) n);
                if (w < 0) {
                        if (errno == EAGAIN || errno == EINTR)
                                break;
                        return -errno;
                }
                size_t left = (size_t) w;
                while (left > 0 && c->queue_len > 0) {
                        Message *m = c->queue[c->queue_head];
                        size_t rest = m->size - c->head_offset;
                        if (left < rest) {
                                c->head_offset += left;
                                break;
                        }
                        left -= rest;
                        message_unref(m);
                        c->queue_head = (c->queue_head + 1) % c->queue_cap;
                        c->queue_len--;
                        c->head_offset = 0;
                        c->sent++;
                }
        }
        if (c->queue_len == 0 && c->closing)
                return -ECONNRESET;
        uint32_t events = c->closing ? 0 : EPOLLIN;
        if (c->queue_len > 0)
                events |= EPOLLOUT;
        sd_event_source_set_io_events(c->io, events);
        return 0;
}

static void client_push(Client *c, Message *m) {
        c->queue[(c->queue_head + c->queue_len) % c->queue_cap] = message_ref(m);
        c->queue_len++;
}

/* Queues m and writes right away when the queue was empty, so a reading
 * client gets results without an extra loop iteration. */
static void client_enqueue(Client *c, Message *m) {
        bool was_empty = c->queue_len == 0;
        client_push(c, m);
        if (was_empty && client_flush(c) < 0) {
                /* Broken pipe: drop the client at its next I/O event, where
                 * freeing it is safe. */
                c->closing = true;
                sd_event_source_set_io_events(c->io, EPOLLOUT);
        }
}

void client_send_response(Client *c, Message *m) {
        if (!m)
                return;
        if (c->queue_len + 1 >= c->queue_cap) {
                if (!c->closing)
                        log_warning("client %llu (pid %d, uid %u) sends requests without reading the responses; disconnecting",
                                    (unsigned long long) c->id, (int) c->cred.pid, (unsigned) c->cred.uid);
                c->closing = true;
                /* Stop reading; the io handler frees it when writable or hung up. */
                sd_event_source_set_io_events(c->io, EPOLLOUT);
                return;
        }
        client_enqueue(c, m);
}

bool client_send_event(Client *c, Message *m) {
        const Conf *conf = c->server->conf;
        if (c->closing)
                return false;
        /* Room for the event, plus the drop notice if one is owed. */
        uint32_t need = c->dropped_unreported ? 2 : 1;
        if (c->queue_len + need > conf->send_queue_messages) {
                c->dropped++;
                c->dropped_unreported++;
                return false;
        }
        if (c->dropped_unreported) {
                char buf[128];
                int n = snprintf(buf, sizeof buf, "{\"event\":\"dropped\",\"count\":%llu,\"total\":%llu}",
                                 (unsigned long long) c->dropped_unreported, (unsigned long long) c->dropped);
                Message *notice = message_new(buf, (size_t) n);
                if (notice) {
                        client_push(c, notice);
                        message_unref(notice);
                        c->dropped_unreported = 0;
                }
        }
        client_enqueue(c, m);
        return true;
}

void client_close_after_flush(Client *c) {
        c->closing = true;
        sd_event_source_set_io_events(c->io, EPOLLOUT);
}

static int client_read(Client *c) {
        Server *s = c->server;
        size_t max = s->conf->max_request_bytes;

        if (!c->read_buf) {
                /* Start small: most requests are a few dozen bytes; grow
                 * up to max_request_bytes only for classify. */
                c->read_cap = MIN((size_t) 4096, max);
                c->read_buf = malloc(c->read_cap);
                if (!c->read_buf)
                        return -ENOMEM;
        }
        if (c->read_len == c->read_cap && c->read_cap < max) {
                size_t cap = MIN(c->read_cap * 2, max);
                char *n = realloc(c->read_buf, cap);
                if (!n)
                        return -ENOMEM;
                c->read_buf = n;
                c->read_cap = cap;
        }
        ssize_t r = read(c->fd, c->read_buf + c->read_len, c->read_cap - c->read_len);
        if (r < 0)
                return errno == EAGAIN || errno == EINTR ? 0 : -errno;
        if (r == 0)
                return -ECONNRESET;
        size_t scan_from = c->read_len;
        c->read_len += (size_t) r;

        size_t start = 0;
        for (;;) {
                char *nl = memchr(c->read_buf + MAX(start, scan_from), '\n', c->read_len - MAX(start, scan_from));
                if (!nl)
                        break;
                size_t len = (size_t) (nl - (c->read_buf + start));
                if (len > 0 && c->read_buf[start + len - 1] == '\r')
                        len--; /* tolerate CRLF from socat/telnet users */
                if (len > 0 && !c->closing)
                        s->on_line(s->userdata, c, c->read_buf + start, len);
                start = (size_t) (nl - c->read_buf) + 1;
                if (c->closing)
                        break;
        }
        if (start > 0) {
                memmove(c->read_buf, c->read_buf + start, c->read_len - start);
                c->read_len -= start;
        }
        if (!c->closing && c->read_len >= max) {
                /* A line longer than the limit: answer and cut it off,
                 * without reading (or buffering) the rest. */
                s->on_oversize(s->userdata, c);
                client_close_after_flush(c);
        }
        return 0;
}

static int client_io(sd_event_source *es, int fd, uint32_t revents, void *userdata) {
        Client *c = userdata;
        int r = 0;
        (void) es;
        (void) fd;

        if ((revents & EPOLLIN) && !c->closing)
                r = client_read(c);
        if (r >= 0 && (revents & (EPOLLOUT | EPOLLHUP | EPOLLERR | EPOLLIN)))
                r = client_flush(c);
        if (r >= 0 && (revents & (EPOLLHUP | EPOLLERR)) && !(revents & EPOLLIN))
                r = -ECONNRESET;
        if (r < 0)
                client_free(c);
        return 0;
}

static bool peer_is_admin(const Conf *conf, int fd, const struct ucred *cred) {
        gid_t groups[256];
        socklen_t len = sizeof groups;
        uint32_t n_groups = 0;

        if (cred->uid == 0)
                return true;
        for (uint32_t i = 0; i < conf->n_admin_uids; i++)
                if (conf->admin_uids[i] == cred->uid)
                        return true;
        if (conf->n_admin_groups == 0)
                return false;
        /* Supplementary groups of the peer, as of connect(). */
        if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len) == 0)
                n_groups = len / sizeof(gid_t);
        for (uint32_t i = 0; i < conf->n_admin_groups; i++) {
                if (conf->admin_groups[i] == cred->gid)
                        return true;
                for (uint32_t j = 0; j < n_groups; j++)
                        if (conf->admin_groups[i] == groups[j])
                                return true;
        }
        return false;
}

static int server_accept(sd_event_source *es, int fd, uint32_t revents, void *userdata) {
        Server *s = userdata;
        (void) es;
        (void) revents;

        for (;;) {
                _cleanup_close_ int cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                if (cfd < 0) {
                        if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
                                log_warning("accept: %s", strerror(errno));
                        return 0;
                }
                if (s->n_clients >= s->conf->max_clients) {
                        static const char msg[] =
                                "{\"v\":1,\"id\":null,\"ok\":false,\"error\":{\"code\":\"unavailable\",\"message\":\"too many clients\"}}\n";
                        (void) !write(cfd, msg, sizeof msg - 1);
                        s->refused++;
                        continue;
                }
                Client *c = calloc(1, sizeof *c);
                if (!c)
                        return 0;
                /* Responses may exceed the event limit (see client_send_response). */
                c->queue_cap = s->conf->send_queue_messages * 2 + 2;
                c->queue = calloc(c->queue_cap, sizeof(Message *));
                socklen_t len = sizeof c->cred;
                if (!c->queue || getsockopt(cfd, SOL_SOCKET, SO_PEERCRED, &c->cred, &len) < 0 ||
                    sd_event_add_io(s->event, &c->io, cfd, EPOLLIN, client_io, c) < 0) {
                        free(c->queue);
                        free(c);
                        continue;
                }
                c->server = s;
                c->id = ++s->next_client_id;
                c->admin = peer_is_admin(s->conf, cfd, &c->cred);
                c->fd = TAKE_FD(cfd);
                c->next = s->clients;
                if (s->clients)
                        s->clients->prev = c;
                s->clients = c;
                s->n_clients++;
        }
}

static int server_listen(Server *s) {
        const Conf *conf = s->conf;
        int n = sd_listen_fds(1);

        if (n > 1)
                return log_error("expected one socket from systemd, got %d", n), -EINVAL;
        if (n == 1) {
                int fd = SD_LISTEN_FDS_START;
                if (sd_is_socket_unix(fd, SOCK_STREAM, 1, NULL, 0) <= 0)
                        return log_error("the socket passed by systemd is not a listening Unix stream socket"), -EINVAL;
                /* accept() is called until EAGAIN: the passed socket may
                 * be blocking. */
                int flags = fcntl(fd, F_GETFL);
                if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0)
                        return -errno;
                s->listen_fd = fd;
                return sd_event_add_io(s->event, &s->listen_io, fd, EPOLLIN, server_accept, s);
        }

        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        size_t len = strlen(conf->server_socket);
        if (len >= sizeof sa.sun_path)
                return -ENAMETOOLONG;
        memcpy(sa.sun_path, conf->server_socket, len);

        _cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return -errno;
        /* A stale socket from a crashed run would make bind fail; remove it,
         * but never a file that is not a socket. */
        struct stat st;
        if (lstat(conf->server_socket, &st) == 0 && S_ISSOCK(st.st_mode))
                unlink(conf->server_socket);
        mode_t old = umask(0777 & ~conf->server_mode);
        int r = bind(fd, (struct sockaddr *) &sa, (socklen_t) (offsetof(struct sockaddr_un, sun_path) + len + 1));
        umask(old);
        if (r < 0)
                return log_error("bind %s: %s", conf->server_socket, strerror(errno)), -errno;
        if (chmod(conf->server_socket, conf->server_mode) < 0)
                return log_error("chmod %s: %s", conf->server_socket, strerror(errno)), -errno;
        if (conf->server_group_set && chown(conf->server_socket, (uid_t) -1, conf->server_group) < 0)
                return log_error("chown %s to group %u: %s", conf->server_socket, (unsigned) conf->server_group,
                                 strerror(errno)), -errno;
        /* The backlog only absorbs bursts of connects; accept is immediate. */
        if (listen(fd, 128) < 0)
                return -errno;
        s->listen_fd = TAKE_FD(fd);
        s->listen_fd_owned = true;
        return sd_event_add_io(s->event, &s->listen_io, s->listen_fd, EPOLLIN, server_accept, s);
}

int server_new(const Conf *conf, sd_event *event, ServerLineFunc on_line, ServerOversizeFunc on_oversize,
               void *userdata, Server **ret) {
        _cleanup_(server_freep) Server *s = calloc(1, sizeof *s);
        if (!s)
                return -ENOMEM;
        s->conf = conf;
        s->event = sd_event_ref(event);
        s->listen_fd = -EBADF;
        s->on_line = on_line;
        s->on_oversize = on_oversize;
        s->userdata = userdata;
        int r = server_listen(s);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(s);
        return 0;
}

Server *server_free(Server *s) {
        if (!s)
                return NULL;
        while (s->clients)
                client_free(s->clients);
        sd_event_source_disable_unref(s->listen_io);
        if (s->listen_fd_owned) {
                safe_close(s->listen_fd);
                unlink(s->conf->server_socket);
        }
        sd_event_unref(s->event);
        free(s);
        return NULL;
}
