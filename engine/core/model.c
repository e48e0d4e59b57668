/* SPDX-License-Identifier: MIT */
#include "cvopt/errors.h"
#include "cvopt/model.h"
#include "macro.h"

static const char *const color_names[] = {
        [CVOPT_COLOR_GRAY] = "gray",
        [CVOPT_COLOR_RGB] = "rgb",
        [CVOPT_COLOR_BGR] = "bgr",
};

static const char *const resize_names[] = {
        [CVOPT_RESIZE_STRETCH] = "stretch",
        [CVOPT_RESIZE_CENTER_CROP] = "center-crop",
        [CVOPT_RESIZE_LETTERBOX] = "letterbox",
};

const char *cvopt_color_name(CvoptColor c) {
        if ((unsigned) c >= ELEMENTSOF(color_names) || !color_names[c])
                return "invalid";
        return color_names[c];
}

int cvopt_color_from_name(const char *name) {
        for (size_t i = 1; i < ELEMENTSOF(color_names); i++)
                if (streq(color_names[i], name))
                        return (int) i;
        return -EINVAL;
}

uint32_t cvopt_color_channels(CvoptColor c) {
        return c == CVOPT_COLOR_GRAY ? 1 : 3;
}

const char *cvopt_resize_name(CvoptResize r) {
        if ((unsigned) r >= ELEMENTSOF(resize_names) || !resize_names[r])
                return "invalid";
        return resize_names[r];
}

int cvopt_resize_from_name(const char *name) {
        for (size_t i = 1; i < ELEMENTSOF(resize_names); i++)
                if (streq(resize_names[i], name))
                        return (int) i;
        return -EINVAL;
}

int cvopt_model_new(CvoptModel **ret_model) {
        CvoptModel *m = calloc(1, sizeof(*m));
        int r;

        if (!m)
                return -ENOMEM;
        r = cvopt_graph_new(&m->graph);
        if (r < 0) {
                free(m);
                return r;
        }
        m->input.color = CVOPT_COLOR_RGB;
        m->input.resize = CVOPT_RESIZE_STRETCH;
        for (int c = 0; c < 3; c++)
                m->input.std[c] = 1.0f;
        *ret_model = m;
        return 0;
}

CvoptModel *cvopt_model_free(CvoptModel *m) {
        if (!m)
                return NULL;
        cvopt_graph_free(m->graph);
        for (uint32_t i = 0; i < m->n_labels; i++)
                free(m->labels[i]);
        free(m->labels);
        free(m->provenance_json);
        free(m);
        return NULL;
}
