/* SPDX-License-Identifier: MIT */
/* sd_notify: READY=1 once serving (or waiting for an absent camera),
 * STATUS= with fps and backend, RELOADING=1/READY=1 around reloads,
 * STOPPING=1, and WATCHDOG=1 only while the worker is alive. Every call
 * is a no-op when $NOTIFY_SOCKET is unset. */

#include <stdio.h>
#include <systemd/sd-daemon.h>

#include "daemon.h"
#include "log.h"

static void status_text(Daemon *d, char *buf, size_t size) {
        if (d->camera_state == CAMERA_STATE_LOST || (d->camera_state == CAMERA_STATE_OPENING && d->camera_reason))
                snprintf(buf, size, "waiting for camera %s: %s", d->conf.camera_device, strempty(d->camera_reason));
        else if (atomic_load(&d->pipeline->paused))
                snprintf(buf, size, "paused; model %s on %s", d->model_id, d->backend);
        else if (d->camera_state == CAMERA_STATE_ENDED)
                snprintf(buf, size, "replay finished; model %s on %s", d->model_id, d->backend);
        else
                snprintf(buf, size, "%.1f fps, model %s on %s, %u clients", d->fps, d->model_id, d->backend,
                         d->server->n_clients);
}

void notify_ready(Daemon *d, const char *status) {
        char buf[512];
        if (!status) {
                status_text(d, buf, sizeof buf);
                status = buf;
        }
        sd_notifyf(0, "READY=1\nSTATUS=%s", status);
        d->ready_sent = true;
}

void notify_status(Daemon *d) {
        char buf[512];
        status_text(d, buf, sizeof buf);
        sd_notifyf(0, "STATUS=%s", buf);
}

void notify_reloading(Daemon *d) {
        (void) d;
        /* MONOTONIC_USEC lets systemd >= 253 tie RELOADING=1 to the reload
         * it asked for (Type=notify-reload); older ones ignore it. */
        sd_notifyf(0, "RELOADING=1\nSTATUS=reloading model\nMONOTONIC_USEC=%llu",
                   (unsigned long long) now_usec(CLOCK_MONOTONIC));
}

void notify_stopping(Daemon *d) {
        (void) d;
        sd_notify(0, "STOPPING=1\nSTATUS=stopping");
}

void notify_watchdog(Daemon *d) {
        uint64_t heartbeat = atomic_load(&d->pipeline->heartbeat_usec);
        uint64_t now = now_usec(CLOCK_MONOTONIC);
        /* The worker beats at least every 0.5 s (pipeline.c) plus one
         * frame's work; a worker stuck for half the watchdog interval (in a
         * hung driver call or kernel) is not fed, and systemd restarts us. */
        if (d->watchdog_usec && now - heartbeat < d->watchdog_usec / 2)
                sd_notify(0, "WATCHDOG=1");
        else if (d->watchdog_usec)
                log_warning("worker has not run for %llu ms; not feeding the watchdog",
                            (unsigned long long) ((now - heartbeat) / 1000));
}
