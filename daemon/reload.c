/* SPDX-License-Identifier: MIT */
/* Reload: the new model is loaded and verified beside the serving one on
 * the main loop, then handed to the worker, which swaps it in between two
 * frames (pipeline.c). A model that fails never reaches the worker. */

#include <errno.h>
#include <stdlib.h>

#include "cvopt/errors.h"
#include "daemon.h"
#include "log.h"

int daemon_reload(Daemon *d, const char *path, uint64_t client_id, json_t *request_id) {
        Inference *inf = NULL;
        const char *p = path ? path : d->conf.model_path;

        notify_reloading(d);
        d->reloading = true;
        int r = inference_load(p, &d->conf, &inf);
        if (r < 0) {
                d->reload_failures++;
                d->reloading = false;
                log_error("reload failed, model %s keeps serving: %s", d->model_id, cvopt_error_detail());
                notify_ready(d, NULL);
                return r;
        }
        Job *job = calloc(1, sizeof *job);
        if (!job) {
                inference_free(inf);
                d->reloading = false;
                notify_ready(d, NULL);
                return cvopt_error_set(-ENOMEM, "out of memory");
        }
        json_decref(d->pending_model_info);
        d->pending_model_info = model_info_json(inf);
        job->kind = JOB_SWAP_MODEL;
        job->inference = inf;
        job->client_id = client_id;
        job->request_id = json_incref(request_id);
        pipeline_submit(d->pipeline, job);
        return 0;
}
