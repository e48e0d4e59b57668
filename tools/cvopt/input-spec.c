/* SPDX-License-Identifier: MIT */
/* Input spec flags and opening a model of either format (model_open_any).
 *
 * An ONNX model carries no input spec of its own in the graph, so the spec
 * is built in layers, each overriding the one before, field by field:
 *   1. what the NCHW input shape implies: width W, height H, colour gray
 *      for C = 1 and rgb for C = 3, mean 0, std 1, resize stretch;
 *   2. the model's metadata_props entry "preprocessing", a JSON object
 *      {"color", "mean", "std", "width", "height", "resize"} (any subset),
 *      as tools/train writes it;
 *   3. the command-line flags.
 * The result must agree with the input shape (size and channel count):
 * a model cannot be fed a tensor of another shape. */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <string.h>

#include "cli.h"
#include "onnx/onnx-import.h"

/* The .cvm magic (docs/model-format.md); anything else is tried as ONNX. */
#define CVM_MAGIC "CVOPTMDL"

static int parse_floats(const char *arg, float values[3], uint32_t *ret_n) {
        const char *p = arg;
        uint32_t n = 0;

        for (;;) {
                char *end;
                float v;

                if (n == 3)
                        return -EINVAL;
                errno = 0;
                v = strtof(p, &end);
                if (errno != 0 || end == p || !isfinite(v))
                        return -EINVAL;
                values[n++] = v;
                if (*end == 0)
                        break;
                if (*end != ',')
                        return -EINVAL;
                p = end + 1;
        }
        if (n == 2)
                return -EINVAL; /* one value for all channels, or one per channel */
        *ret_n = n;
        return 0;
}

int input_spec_flags_parse(InputSpecFlags *f, int opt, const char *arg) {
        int r;

        switch (opt) {
        case ARG_COLOR:
                r = cvopt_color_from_name(arg);
                if (r < 0) {
                        fprintf(stderr, "cvopt: --color: '%s' is not gray, rgb or bgr\n", arg);
                        return -EINVAL;
                }
                f->color = r;
                return 1;
        case ARG_RESIZE:
                r = cvopt_resize_from_name(arg);
                if (r < 0) {
                        fprintf(stderr, "cvopt: --resize: '%s' is not stretch, center-crop or letterbox\n", arg);
                        return -EINVAL;
                }
                f->resize = r;
                return 1;
        case ARG_MEAN:
                if (parse_floats(arg, f->mean, &f->n_mean) < 0) {
                        fprintf(stderr, "cvopt: --mean: '%s' is not 1 or 3 comma-separated numbers\n", arg);
                        return -EINVAL;
                }
                return 1;
        case ARG_STD:
                if (parse_floats(arg, f->std, &f->n_std) < 0) {
                        fprintf(stderr, "cvopt: --std: '%s' is not 1 or 3 comma-separated numbers\n", arg);
                        return -EINVAL;
                }
                for (uint32_t i = 0; i < f->n_std; i++)
                        if (!(f->std[i] > 0)) {
                                fprintf(stderr, "cvopt: --std: values must be greater than 0\n");
                                return -EINVAL;
                        }
                return 1;
        default:
                return 0;
        }
}

bool input_spec_flags_any(const InputSpecFlags *f) {
        return f && (f->color || f->resize || f->n_mean || f->n_std);
}

static void spec_set_channels(float dst[3], const float *src, uint32_t n) {
        for (uint32_t c = 0; c < 3; c++)
                dst[c] = src[n == 1 ? 0 : c];
}

static void spec_apply_flags(CvoptInputSpec *spec, const InputSpecFlags *f) {
        if (!f)
                return;
        if (f->color)
                spec->color = (CvoptColor) f->color;
        if (f->resize)
                spec->resize = (CvoptResize) f->resize;
        if (f->n_mean)
                spec_set_channels(spec->mean, f->mean, f->n_mean);
        if (f->n_std)
                spec_set_channels(spec->std, f->std, f->n_std);
}

/* A JSON number or array of 1 or 3 numbers into dst. */
static int json_channels(json_t *v, float dst[3]) {
        float values[3];
        size_t n;

        if (json_is_number(v)) {
                values[0] = (float) json_number_value(v);
                n = 1;
        } else if (json_is_array(v) && (json_array_size(v) == 1 || json_array_size(v) == 3)) {
                n = json_array_size(v);
                for (size_t i = 0; i < n; i++) {
                        json_t *x = json_array_get(v, i);

                        if (!json_is_number(x))
                                return -EINVAL;
                        values[i] = (float) json_number_value(x);
                }
        } else
                return -EINVAL;
        for (size_t i = 0; i < n; i++)
                if (!isfinite(values[i]))
                        return -EINVAL;
        spec_set_channels(dst, values, (uint32_t) n);
        return 0;
}

static int json_dimension(json_t *v, uint32_t *dst) {
        json_int_t i;

        if (!json_is_integer(v))
                return -EINVAL;
        i = json_integer_value(v);
        if (i < 1 || i > (json_int_t) CVOPT_IMAGE_MAX_DIMENSION)
                return -EINVAL;
        *dst = (uint32_t) i;
        return 0;
}

/* Applies the "preprocessing" metadata JSON object; unknown keys are
 * ignored (newer training scripts may record more). */
static int spec_apply_metadata(CvoptInputSpec *spec, const char *text, const char *path) {
        json_t *root;
        json_error_t err;
        const char *key;
        json_t *v;
        int r = 0;

        root = json_loads(text, JSON_REJECT_DUPLICATES, &err);
        if (!root)
                return cvopt_error_set(-CVOPT_E_FORMAT, "%s: metadata 'preprocessing': invalid JSON: %s", path,
                                       err.text);
        if (!json_is_object(root)) {
                json_decref(root);
                return cvopt_error_set(-CVOPT_E_FORMAT, "%s: metadata 'preprocessing' is not a JSON object", path);
        }
        json_object_foreach(root, key, v) {
                if (streq(key, "color")) {
                        r = json_is_string(v) ? cvopt_color_from_name(json_string_value(v)) : -EINVAL;
                        if (r >= 0)
                                spec->color = (CvoptColor) r;
                } else if (streq(key, "resize")) {
                        r = json_is_string(v) ? cvopt_resize_from_name(json_string_value(v)) : -EINVAL;
                        if (r >= 0)
                                spec->resize = (CvoptResize) r;
                } else if (streq(key, "mean"))
                        r = json_channels(v, spec->mean);
                else if (streq(key, "std"))
                        r = json_channels(v, spec->std);
                else if (streq(key, "width"))
                        r = json_dimension(v, &spec->width);
                else if (streq(key, "height"))
                        r = json_dimension(v, &spec->height);
                if (r < 0) {
                        r = cvopt_error_set(-CVOPT_E_FORMAT, "%s: metadata 'preprocessing': bad value for '%s'",
                                            path, key);
                        break;
                }
                r = 0;
        }
        json_decref(root);
        return r;
}

/* The NCHW input tensor of a graph with one input, or an error. */
static int graph_image_input(const CvoptGraph *g, const char *path, const CvoptTensor **ret) {
        const CvoptTensor *t;

        if (g->n_inputs != 1)
                return cvopt_error_set(-CVOPT_E_UNSUPPORTED, "%s: the model has %u inputs; an image classifier has one",
                                       path, g->n_inputs);
        t = &g->tensors[g->inputs[0]];
        if (t->dtype != CVOPT_DTYPE_FLOAT32 || !t->has_shape || t->ndim != 4 || t->dims[0] != 1 ||
            (t->dims[1] != 1 && t->dims[1] != 3) || t->dims[2] < 1 || t->dims[3] < 1 ||
            t->dims[2] > CVOPT_IMAGE_MAX_DIMENSION || t->dims[3] > CVOPT_IMAGE_MAX_DIMENSION) {
                char shape[128];

                return cvopt_error_set(-CVOPT_E_UNSUPPORTED,
                                       "%s: input '%s' is %s %s; an image input is float32 1xCxHxW with C = 1 or 3",
                                       path, t->name, cvopt_dtype_name(t->dtype),
                                       t->has_shape ? cvopt_tensor_shape_str(t, shape, sizeof shape) : "(no shape)");
        }
        *ret = t;
        return 0;
}

static int spec_check_against_input(const CvoptInputSpec *spec, const CvoptTensor *t, const char *path) {
        if ((int64_t) cvopt_color_channels(spec->color) != t->dims[1])
                return cvopt_error_set(-CVOPT_E_SHAPE, "%s: colour %s has %u channel(s), the input has %lld", path,
                                       cvopt_color_name(spec->color), cvopt_color_channels(spec->color),
                                       (long long) t->dims[1]);
        if ((int64_t) spec->width != t->dims[3] || (int64_t) spec->height != t->dims[2])
                return cvopt_error_set(-CVOPT_E_SHAPE, "%s: input spec size %ux%u differs from the input's %lldx%lld",
                                       path, spec->width, spec->height, (long long) t->dims[3],
                                       (long long) t->dims[2]);
        return cvopt_input_spec_check(spec) < 0 ? cvopt_error_prefix(-EINVAL, "%s", path) : 0;
}

static int model_open_onnx(const char *path, const InputSpecFlags *flags, CvoptModel **ret_model) {
        _cleanup_(cvopt_model_freep) CvoptModel *m = NULL;
        _cleanup_free_ char *metadata = NULL;
        const CvoptTensor *input;
        CvoptInputSpec spec;
        int r;

        r = onnx_import_file_metadata(path, "preprocessing", &m, &metadata);
        if (r < 0)
                return r;
        r = cvopt_graph_optimize(m->graph);
        if (r < 0)
                return cvopt_error_prefix(r, "%s", path);
        r = graph_image_input(m->graph, path, &input);
        if (r < 0)
                return r;

        spec = (CvoptInputSpec) {
                .width = (uint32_t) input->dims[3],
                .height = (uint32_t) input->dims[2],
                .color = input->dims[1] == 1 ? CVOPT_COLOR_GRAY : CVOPT_COLOR_RGB,
                .mean = { 0, 0, 0 },
                .std = { 1, 1, 1 },
                .resize = CVOPT_RESIZE_STRETCH,
        };
        if (metadata) {
                r = spec_apply_metadata(&spec, metadata, path);
                if (r < 0)
                        return r;
        }
        spec_apply_flags(&spec, flags);
        r = spec_check_against_input(&spec, input, path);
        if (r < 0)
                return r;
        m->input = spec;

        *ret_model = TAKE_PTR(m);
        return 0;
}

static int model_open_cvm(const char *path, const InputSpecFlags *flags, CvoptModel **ret_model) {
        _cleanup_(cvopt_model_freep) CvoptModel *m = NULL;
        const CvoptTensor *input;
        int r;

        r = cvopt_model_load(path, &m);
        if (r < 0)
                return r;
        if (input_spec_flags_any(flags)) {
                spec_apply_flags(&m->input, flags);
                r = graph_image_input(m->graph, path, &input);
                if (r < 0)
                        return r;
                r = spec_check_against_input(&m->input, input, path);
                if (r < 0)
                        return r;
        }
        *ret_model = TAKE_PTR(m);
        return 0;
}

int model_open_any(const char *path, const InputSpecFlags *flags, CvoptModel **ret_model) {
        _cleanup_(fclosep) FILE *f = NULL;
        char magic[sizeof(CVM_MAGIC) - 1];
        size_t n;

        cvopt_error_clear();
        f = fopen(path, "re");
        if (!f)
                return cvopt_error_set(-errno, "%s: %s", path, strerror(errno));
        errno = 0;
        n = fread(magic, 1, sizeof magic, f);
        if (ferror(f)) {
                int e = errno > 0 ? errno : EIO; /* EISDIR for a folder */

                return cvopt_error_set(-e, "%s: %s", path, strerror(e));
        }
        if (n == sizeof magic && memcmp(magic, CVM_MAGIC, sizeof magic) == 0)
                return model_open_cvm(path, flags, ret_model);
        return model_open_onnx(path, flags, ret_model);
}
