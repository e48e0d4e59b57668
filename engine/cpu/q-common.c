/* SPDX-License-Identifier: MIT */
/* Parameter parsing shared by the int8 reference operators. Every value
 * comes from a model file, so each is range-checked here, once, in infer;
 * the run functions then trust them. */
#include "cvopt/errors.h"
#include "macro.h"
#include "q-ops.h"

static int ints_attr(const CvoptNode *n, const char *name, uint32_t count, const int64_t **ret) {
        const CvoptAttr *a = cvopt_node_attr(n, name);

        if (!a) {
                *ret = NULL;
                return 0;
        }
        if (a->type != CVOPT_ATTR_INTS || a->count != count)
                return cvopt_error_set(-CVOPT_E_FORMAT, "node '%s' (%s): attribute '%s' must be %u ints",
                                       n->name, cvopt_op_name(n->op), name, count);
        *ret = a->ints;
        return 0;
}

int q_window_init(const CvoptNode *n, int64_t in_h, int64_t in_w, int64_t kernel_h, int64_t kernel_w,
                  bool ceil_mode, QWindow *ret_window) {
        /* NULL-initialised only for gcc -O3 (release builds), whose
         * -Wmaybe-uninitialized cannot see that ints_attr() sets *ret on
         * every path that returns 0. */
        const int64_t *kernel = NULL, *pads = NULL, *strides = NULL, *dilations = NULL;
        QWindow w = {};
        int r;

        if ((r = ints_attr(n, "kernel_shape", 2, &kernel)) < 0 || (r = ints_attr(n, "pads", 4, &pads)) < 0 ||
            (r = ints_attr(n, "strides", 2, &strides)) < 0 || (r = ints_attr(n, "dilations", 2, &dilations)) < 0)
                return r;
        if (cvopt_node_attr(n, "auto_pad") && !streq(cvopt_node_get_string(n, "auto_pad", ""), "NOTSET"))
                return cvopt_error_set(-CVOPT_E_UNSUPPORTED, "node '%s' (%s): auto_pad must be resolved to pads",
                                       n->name, cvopt_op_name(n->op));
        w.kernel_h = kernel ? kernel[0] : kernel_h;
        w.kernel_w = kernel ? kernel[1] : kernel_w;
        w.pad_top = pads ? pads[0] : 0;
        w.pad_left = pads ? pads[1] : 0;
        w.pad_bottom = pads ? pads[2] : 0;
        w.pad_right = pads ? pads[3] : 0;
        w.stride_h = strides ? strides[0] : 1;
        w.stride_w = strides ? strides[1] : 1;
        w.dilation_h = dilations ? dilations[0] : 1;
        w.dilation_w = dilations ? dilations[1] : 1;

        /* 1 << 20 bounds every geometry value so the products below stay far
         * from overflow; no real image model comes near it. */
        int64_t values[] = { w.kernel_h, w.kernel_w, w.stride_h, w.stride_w, w.dilation_h, w.dilation_w };
        for (size_t i = 0; i < ELEMENTSOF(values); i++)
                if (values[i] < 1 || values[i] > (1 << 20))
                        return cvopt_error_set(-CVOPT_E_FORMAT, "node '%s' (%s): window parameter out of range",
                                               n->name, cvopt_op_name(n->op));
        int64_t pad_values[] = { w.pad_top, w.pad_left, w.pad_bottom, w.pad_right };
        for (size_t i = 0; i < ELEMENTSOF(pad_values); i++)
                if (pad_values[i] < 0 || pad_values[i] > (1 << 20))
                        return cvopt_error_set(-CVOPT_E_FORMAT, "node '%s' (%s): pads out of range", n->name,
                                               cvopt_op_name(n->op));

        int64_t span_h = w.dilation_h * (w.kernel_h - 1) + 1, span_w = w.dilation_w * (w.kernel_w - 1) + 1;
        int64_t room_h = in_h + w.pad_top + w.pad_bottom - span_h, room_w = in_w + w.pad_left + w.pad_right - span_w;
        if (room_h < 0 || room_w < 0)
                return cvopt_error_set(-CVOPT_E_SHAPE, "node '%s' (%s): window larger than padded input", n->name,
                                       cvopt_op_name(n->op));
        if (ceil_mode) {
                w.out_h = (room_h + w.stride_h - 1) / w.stride_h + 1;
                w.out_w = (room_w + w.stride_w - 1) / w.stride_w + 1;
                /* As ONNX and PyTorch: the last window must start inside the
                 * input or its leading padding. */
                if ((w.out_h - 1) * w.stride_h >= in_h + w.pad_top)
                        w.out_h--;
                if ((w.out_w - 1) * w.stride_w >= in_w + w.pad_left)
                        w.out_w--;
        } else {
                w.out_h = room_h / w.stride_h + 1;
                w.out_w = room_w / w.stride_w + 1;
        }
        *ret_window = w;
        return 0;
}

int q_requant_params(const CvoptNode *n, uint32_t channels, bool float_output, QRequantParams *ret) {
        QRequantParams p = { .out_min = 0, .out_max = 255 };
        const CvoptAttr *a;

        if (float_output) {
                a = cvopt_node_attr(n, "out_scale");
                if (!a || a->type != CVOPT_ATTR_FLOATS || (a->count != channels && a->count != 1))
                        return cvopt_error_set(-CVOPT_E_FORMAT,
                                               "node '%s' (%s): float output needs 'out_scale' with %u floats",
                                               n->name, cvopt_op_name(n->op), channels);
                p.out_scale = a->floats;
                p.out_scale_count = a->count;
                *ret = p;
                return 0;
        }

        const CvoptAttr *m = cvopt_node_attr(n, "multiplier"), *s = cvopt_node_attr(n, "shift");
        if (!m || !s || m->type != CVOPT_ATTR_INTS || s->type != CVOPT_ATTR_INTS || m->count != s->count ||
            (m->count != channels && m->count != 1))
                return cvopt_error_set(-CVOPT_E_FORMAT,
                                       "node '%s' (%s): needs 'multiplier' and 'shift' with 1 or %u ints each",
                                       n->name, cvopt_op_name(n->op), channels);
        for (uint32_t i = 0; i < m->count; i++)
                if (m->ints[i] < 0 || m->ints[i] > INT32_MAX || s->ints[i] < CVOPT_SHIFT_MIN || s->ints[i] > CVOPT_SHIFT_MAX)
                        return cvopt_error_set(-CVOPT_E_FORMAT, "node '%s' (%s): requantization %u out of range",
                                               n->name, cvopt_op_name(n->op), i);
        p.multiplier = m->ints;
        p.shift = s->ints;
        p.count = m->count;
        p.out_min = (int32_t) CLAMP(cvopt_node_get_int(n, "out_min", 0), -1, 256);
        p.out_max = (int32_t) CLAMP(cvopt_node_get_int(n, "out_max", 255), -1, 256);
        if (p.out_min < 0 || p.out_max > 255 || p.out_min > p.out_max)
                return cvopt_error_set(-CVOPT_E_FORMAT, "node '%s' (%s): bad out_min/out_max", n->name,
                                       cvopt_op_name(n->op));
        a = cvopt_node_attr(n, "lut");
        if (a) {
                if (a->type != CVOPT_ATTR_INTS || a->count != 256)
                        return cvopt_error_set(-CVOPT_E_FORMAT, "node '%s' (%s): 'lut' must be 256 ints", n->name,
                                               cvopt_op_name(n->op));
                for (uint32_t i = 0; i < 256; i++)
                        if (a->ints[i] < 0 || a->ints[i] > 255)
                                return cvopt_error_set(-CVOPT_E_FORMAT, "node '%s' (%s): 'lut' value out of range",
                                                       n->name, cvopt_op_name(n->op));
                p.lut = a->ints;
        }
        *ret = p;
        return 0;
}

int q_check_activation(const CvoptNode *n, const CvoptTensor *t, const char *what) {
        if (!t)
                return cvopt_error_set(-CVOPT_E_FORMAT, "node '%s' (%s): %s missing", n->name,
                                       cvopt_op_name(n->op), what);
        if (t->dtype != CVOPT_DTYPE_UINT8 || t->quant.count != 1 || !t->quant.scale || !t->quant.zero_point ||
            t->quant.zero_point[0] < 0 || t->quant.zero_point[0] > 255)
                return cvopt_error_set(-CVOPT_E_FORMAT,
                                       "node '%s' (%s): %s '%s' must be uint8 with one scale and zero point in 0..255",
                                       n->name, cvopt_op_name(n->op), what, t->name);
        return 0;
}

int32_t q_zero_point(const CvoptTensor *t) {
        return t->quant.count ? t->quant.zero_point[0] : 0;
}

int q_copy_dims(CvoptTensor *out, uint32_t ndim, const int64_t *dims) {
        if (ndim > CVOPT_MAX_DIMS)
                return -CVOPT_E_SHAPE;
        out->ndim = ndim;
        memcpy(out->dims, dims, ndim * sizeof(int64_t));
        out->has_shape = true;
        return 0;
}
