/* SPDX-License-Identifier: MIT */
#pragma once

/* cvoptd configuration: /etc/cvoptd/cvoptd.conf plus the drop-ins in
 * conf.d/ next to it, INI format (inih). config/cvoptd.conf documents
 * every key; the defaults live in conf_init(). */

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#ifndef CONF_DEFAULT_PATH /* set by meson from --sysconfdir */
#define CONF_DEFAULT_PATH "/etc/cvoptd/cvoptd.conf"
#endif
#define CONF_MAX_ADMIN_IDS 64

typedef enum CameraFormat {
        CAMERA_FORMAT_AUTO,
        CAMERA_FORMAT_YUYV,
        CAMERA_FORMAT_MJPEG,
        CAMERA_FORMAT_NV12,
        CAMERA_FORMAT_GREY,
        CAMERA_FORMAT_RGB24,
        _CAMERA_FORMAT_MAX,
} CameraFormat;

const char *camera_format_name(CameraFormat f);
int camera_format_from_name(const char *name);

typedef struct Conf {
        /* [camera] */
        char *camera_device;
        uint32_t camera_width, camera_height, camera_fps;
        CameraFormat camera_format;
        uint32_t camera_buffers;
        uint64_t camera_timeout_usec;
        uint64_t camera_retry_max_usec;

        /* [model] */
        char *model_path;

        /* [inference] */
        char *inference_backend; /* auto, opencl, cpu */
        char *opencl_device;
        uint32_t threads;
        uint32_t top_k;
        double min_score;

        /* [server] */
        char *server_socket;
        mode_t server_mode;
        bool server_group_set;
        gid_t server_group;
        uint32_t max_clients;
        uint32_t max_request_bytes;
        uint32_t send_queue_messages;
        uid_t admin_uids[CONF_MAX_ADMIN_IDS];
        uint32_t n_admin_uids;
        gid_t admin_groups[CONF_MAX_ADMIN_IDS];
        uint32_t n_admin_groups;

        /* [telemetry] */
        uint64_t status_interval_usec;
        uint64_t log_interval_usec; /* 0: never */
} Conf;

/* Sets every key to its default. */
int conf_init(Conf *c);
void conf_done(Conf *c);

/* Parses path, then the *.conf files in conf.d/ next to it in name order,
 * each overriding what came before. A missing main file is an error only
 * if must_exist. Errors name file:line (detail). */
int conf_load(Conf *c, const char *path, bool must_exist);

/* Parses one file into c (for tests and drop-ins). */
int conf_parse_file(Conf *c, const char *path);

/* Writes the effective configuration as INI (for --check-config). */
void conf_dump(const Conf *c, FILE *f);
