/* SPDX-License-Identifier: MIT */
#pragma once

/* The socket server: accepts clients on a Unix SOCK_STREAM socket, splits
 * what they send into lines, and writes messages from per-client send
 * queues without ever blocking. What a line means is protocol.c's job. */

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <systemd/sd-event.h>

#include "conf.h"
#include "macro.h"

/* A serialized line, shared by every client it is queued for. */
typedef struct Message {
        unsigned refs;
        size_t size;
        char data[]; /* size bytes, ending in '\n' */
} Message;

Message *message_new(const char *text, size_t len); /* appends the '\n' */
Message *message_ref(Message *m);
Message *message_unref(Message *m);

typedef struct Server Server;

typedef struct Client {
        Server *server;
        uint64_t id;
        int fd;
        sd_event_source *io;
        struct ucred cred;
        bool admin;
        bool subscribed;
        bool closing; /* close once the queue is written */

        char *read_buf;
        size_t read_len, read_cap;

        /* Ring of queued messages; the head is written from head_offset. */
        Message **queue;
        uint32_t queue_cap, queue_head, queue_len;
        size_t head_offset;

        uint64_t sent, dropped, dropped_unreported;
        struct Client *prev, *next;
} Client;

/* Called for each complete line (without the '\n'). */
typedef void (*ServerLineFunc)(void *userdata, Client *c, const char *line, size_t len);
/* Called when a line exceeds max_request_bytes, before the client is closed. */
typedef void (*ServerOversizeFunc)(void *userdata, Client *c);

struct Server {
        const Conf *conf;
        sd_event *event;
        int listen_fd;
        bool listen_fd_owned; /* we created (and unlink) the socket path */
        sd_event_source *listen_io;
        Client *clients;
        uint32_t n_clients;
        uint64_t next_client_id;
        uint64_t refused;
        ServerLineFunc on_line;
        ServerOversizeFunc on_oversize;
        void *userdata;
};

/* Uses a socket passed by systemd (sd_listen_fds) if there is one, else
 * creates conf->server_socket with the configured mode and group. */
int server_new(const Conf *conf, sd_event *event, ServerLineFunc on_line, ServerOversizeFunc on_oversize,
               void *userdata, Server **ret);
Server *server_free(Server *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(Server *, server_free);

/* Queues a response: never dropped. A client with more than twice its
 * queue size unread is disconnected (it sends without reading). */
void client_send_response(Client *c, Message *m);
/* Queues an event for a subscriber: dropped and counted if its queue is
 * full. Returns true if queued. */
bool client_send_event(Client *c, Message *m);
void client_close_after_flush(Client *c);
Client *server_find_client(Server *s, uint64_t id);
