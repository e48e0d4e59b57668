/* SPDX-License-Identifier: MIT */
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <unistd.h>

#include "macro.h"
#include "model-open.h"
#include "onnx/onnx-import.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(CvoptModel *, cvopt_model_free);

static int parse_floats(const char *arg, float *ret, unsigned *ret_count, const char *what) {
        unsigned n = 0;
        const char *p = arg;

        while (*p) {
                char *end;
                float v = strtof(p, &end);

                if (end == p || n >= 3 || !(v == v))
                        return cvopt_error_set(-EINVAL, "--%s '%s': expected 1 or 3 comma-separated numbers", what, arg);
                ret[n++] = v;
                p = end;
                if (*p == ',')
                        p++;
                else if (*p)
                        return cvopt_error_set(-EINVAL, "--%s '%s': expected 1 or 3 comma-separated numbers", what, arg);
        }
        if (n != 1 && n != 3)
                return cvopt_error_set(-EINVAL, "--%s '%s': expected 1 or 3 numbers", what, arg);
        *ret_count = n;
        return 0;
}

int input_spec_flags_parse(InputSpecFlags *f, int opt, const char *arg) {
        int r;

        switch (opt) {
        case INPUT_SPEC_OPT_COLOR:
                r = cvopt_color_from_name(arg);
                if (r < 0)
                        return cvopt_error_set(-EINVAL, "--color '%s': expected gray, rgb or bgr", arg);
                f->color = r;
                f->has_color = true;
                break;
        case INPUT_SPEC_OPT_RESIZE:
                r = cvopt_resize_from_name(arg);
                if (r < 0)
                        return cvopt_error_set(-EINVAL, "--resize '%s': expected stretch, center-crop or letterbox", arg);
                f->resize = r;
                f->has_resize = true;
                break;
        case INPUT_SPEC_OPT_MEAN:
                if ((r = parse_floats(arg, f->mean, &f->n_mean, "mean")) < 0)
                        return r;
                break;
        case INPUT_SPEC_OPT_STD:
                if ((r = parse_floats(arg, f->std, &f->n_std, "std")) < 0)
                        return r;
                for (unsigned i = 0; i < f->n_std; i++)
                        if (!(f->std[i] > 0))
                                return cvopt_error_set(-EINVAL, "--std '%s': must be positive", arg);
                break;
        default:
                return 0;
        }
        f->any = true;
        return 1;
}

bool model_path_is_cvm(const char *path) {
        char magic[8];
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);

        return fd >= 0 && read(fd, magic, sizeof(magic)) == (ssize_t) sizeof(magic) && memcmp(magic, "CVOPTMDL", 8) == 0;
}

static int spec_from_flags(CvoptModel *m, const InputSpecFlags *f, const char *path) {
        const CvoptGraph *g = m->graph;
        const CvoptTensor *in;
        CvoptInputSpec s = m->input;

        if (g->n_inputs != 1)
                return cvopt_error_set(-CVOPT_E_UNSUPPORTED, "%s: %u inputs; an image classifier has one", path, g->n_inputs);
        in = &g->tensors[g->inputs[0]];
        if (in->ndim != 4 || in->dims[0] != 1 || (in->dims[1] != 1 && in->dims[1] != 3) || in->dims[2] < 1 ||
            in->dims[3] < 1 || in->dims[2] > 16384 || in->dims[3] > 16384)
                return cvopt_error_set(-CVOPT_E_UNSUPPORTED,
                                       "%s: input '%s' is not an image tensor of shape 1x{1,3}xHxW", path, in->name);
        s.height = (uint32_t) in->dims[2];
        s.width = (uint32_t) in->dims[3];
        s.color = f->has_color ? f->color : in->dims[1] == 1 ? CVOPT_COLOR_GRAY : CVOPT_COLOR_RGB;
        if (cvopt_color_channels(s.color) != (uint32_t) in->dims[1])
                return cvopt_error_set(-EINVAL, "%s: --color %s does not match the input's %lld channel(s)", path,
                                       cvopt_color_name(s.color), (long long) in->dims[1]);
        s.resize = f->has_resize ? f->resize : CVOPT_RESIZE_STRETCH;
        for (unsigned c = 0; c < 3; c++) {
                s.mean[c] = f->n_mean ? f->mean[f->n_mean == 1 ? 0 : c] : 0.0f;
                s.std[c] = f->n_std ? f->std[f->n_std == 1 ? 0 : c] : 1.0f;
        }
        m->input = s;
        return 0;
}

int model_open_any(const char *path, const InputSpecFlags *flags, CvoptModel **ret_model) {
        static const InputSpecFlags none = {};
        _cleanup_(cvopt_model_freep) CvoptModel *m = NULL;
        int r;

        if (!flags)
                flags = &none;
        if (model_path_is_cvm(path)) {
                if (flags->any)
                        return cvopt_error_set(-EINVAL, "%s carries its own input spec: --color/--mean/--std/--resize "
                                                        "apply to .onnx models only", path);
                return cvopt_model_load(path, ret_model);
        }
        r = onnx_import_file(path, &m);
        if (r < 0)
                return r;
        r = cvopt_graph_optimize(m->graph);
        if (r < 0)
                return cvopt_error_prefix(r, "%s", path);
        r = spec_from_flags(m, flags, path);
        if (r < 0)
                return r;
        *ret_model = TAKE_PTR(m);
        return 0;
}
