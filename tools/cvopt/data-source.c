/* SPDX-License-Identifier: MIT */
#include "data-source.h"
#include "macro.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(CvoptImage *, cvopt_image_free);

int data_source_init(DataSource *s, const CvoptDataset *dataset, const CvoptModel *model, size_t limit) {
        const CvoptGraph *g = model->graph;
        uint32_t width, height, channels;
        int64_t outputs;

        if (g->n_outputs < 1)
                return cvopt_error_set(-EINVAL, "the model has no output");
        outputs = cvopt_tensor_count(&g->tensors[g->outputs[0]]);
        if (outputs != (int64_t) cvopt_dataset_n_classes(dataset))
                return cvopt_error_set(-CVOPT_E_DATA, "%s has %u classes but the model outputs %lld scores",
                                       cvopt_dataset_spec(dataset), cvopt_dataset_n_classes(dataset),
                                       (long long) outputs);
        *s = (DataSource) { .dataset = dataset, .spec = &model->input, .count = cvopt_dataset_count(dataset) };
        if (limit && limit < s->count)
                s->count = limit;
        if (s->count == 0)
                return cvopt_error_set(-CVOPT_E_DATA, "%s is empty", cvopt_dataset_spec(dataset));
        if (cvopt_dataset_image_size(dataset, &width, &height, &channels) >= 0) {
                if (width != model->input.width || height != model->input.height ||
                    channels != cvopt_color_channels(model->input.color))
                        return cvopt_error_set(-CVOPT_E_DATA,
                                               "%s: images are %ux%u with %u channel(s), the model takes %ux%u %s",
                                               cvopt_dataset_spec(dataset), width, height, channels, model->input.width,
                                               model->input.height, cvopt_color_name(model->input.color));
                s->exact_size = true;
        }
        return 0;
}

int data_source_fetch(void *userdata, size_t i, float *ret_input, size_t input_count, int *ret_label) {
        const DataSource *s = userdata;
        _cleanup_(cvopt_image_freep) CvoptImage *image = NULL;
        size_t index;
        int r;

        if (i >= s->count)
                return -ERANGE;
        index = s->indices ? s->indices[i] : i;
        if (input_count != (size_t) cvopt_color_channels(s->spec->color) * s->spec->width * s->spec->height)
                return cvopt_error_set(-CVOPT_E_SHAPE, "the model input has %zu values, its input spec says %ux%ux%u",
                                       input_count, cvopt_color_channels(s->spec->color), s->spec->height,
                                       s->spec->width);
        r = cvopt_dataset_get(s->dataset, index, &image, ret_label);
        if (r < 0)
                return r;
        r = cvopt_preprocess_image(s->spec, image, ret_input);
        if (r < 0)
                return cvopt_error_prefix(r, "%s: item %zu", cvopt_dataset_spec(s->dataset), index);
        return 0;
}

int data_source_feed(void *userdata, size_t i, CvoptTensor *input) {
        int label;

        if (input->dtype != CVOPT_DTYPE_FLOAT32)
                return cvopt_error_set(-CVOPT_E_UNSUPPORTED, "the model input is not float");
        return data_source_fetch(userdata, i, input->data, (size_t) cvopt_tensor_count(input), &label);
}
