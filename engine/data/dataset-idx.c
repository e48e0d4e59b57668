/* SPDX-License-Identifier: MIT */
#include <errno.h>

#include "cvopt/errors.h"
#include "data/dataset-internal.h"
#include "data/idx.h"
#include "macro.h"

/* Reads an image file and a label file of the same items. class_names,
 * when given, fixes the number of classes (n_known_classes) and every
 * label is checked against it; otherwise there are max label + 1 classes. */
int dataset_open_idx(CvoptDataset *ds, const char *images_path, const char *labels_path,
                     const char *const *class_names, uint32_t n_known_classes) {
        _cleanup_(idx_file_done) IdxFile images = {}, labels = {};
        uint32_t width, height, channels = 1, max_label = 0;
        size_t count;
        int r;

        r = idx_file_read(images_path, &images);
        if (r < 0)
                return r;
        if (images.ndim != 3 && images.ndim != 4)
                return cvopt_error_set(-CVOPT_E_DATA,
                                       "%s: an image file has 3 dimensions (N x H x W) or 4 (N x H x W x C), not %u",
                                       images_path, images.ndim);
        count = images.dims[0];
        height = images.dims[1];
        width = images.dims[2];
        if (images.ndim == 4)
                channels = images.dims[3];
        if (width == 0 || height == 0 || width > CVOPT_IMAGE_MAX_DIMENSION || height > CVOPT_IMAGE_MAX_DIMENSION)
                return cvopt_error_set(-CVOPT_E_DATA, "%s: image size %ux%u out of range 1..%u", images_path, width,
                                       height, CVOPT_IMAGE_MAX_DIMENSION);
        if (channels != 1 && channels != 3)
                return cvopt_error_set(-CVOPT_E_DATA, "%s: images have %u channels, expected 1 or 3", images_path,
                                       channels);
        if (count == 0)
                return cvopt_error_set(-CVOPT_E_DATA, "%s: no images", images_path);

        r = idx_file_read(labels_path, &labels);
        if (r < 0)
                return r;
        if (labels.ndim != 1)
                return cvopt_error_set(-CVOPT_E_DATA, "%s: a label file has 1 dimension, not %u", labels_path,
                                       labels.ndim);
        if (labels.dims[0] != count)
                return cvopt_error_set(-CVOPT_E_DATA, "%s has %zu images but %s has %u labels", images_path, count,
                                       labels_path, labels.dims[0]);

        ds->labels = calloc(count, sizeof(int32_t));
        if (!ds->labels)
                return -ENOMEM;
        for (size_t i = 0; i < count; i++) {
                uint8_t label = labels.data[i];
                if (class_names && label >= n_known_classes)
                        return cvopt_error_set(-CVOPT_E_DATA, "%s: label %u of item %zu out of range 0..%u",
                                               labels_path, label, i, n_known_classes - 1);
                ds->labels[i] = label;
                max_label = MAX(max_label, (uint32_t) label);
        }

        if (class_names) {
                ds->n_classes = n_known_classes;
                ds->class_names = calloc(n_known_classes, sizeof(char *));
                if (!ds->class_names)
                        return -ENOMEM;
                for (uint32_t i = 0; i < n_known_classes; i++) {
                        ds->class_names[i] = strdup(class_names[i]);
                        if (!ds->class_names[i])
                                return -ENOMEM;
                }
        } else
                ds->n_classes = max_label + 1;

        ds->kind = DATASET_KIND_IDX;
        ds->count = count;
        ds->width = width;
        ds->height = height;
        ds->channels = channels;
        ds->idx_pixels = images.data;
        ds->idx_buffer = TAKE_PTR(images.buffer);
        return 0;
}
