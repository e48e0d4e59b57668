/* SPDX-License-Identifier: MIT */
#include <assert.h>
#include <errno.h>
#include <stdio.h>

#include "cvopt/errors.h"
#include "data/dataset-internal.h"
#include "data/random.h"
#include "macro.h"

#define FASHION_MNIST_DEFAULT_DIR "/usr/share/datasets/fashion-mnist"

/* The class order of the Fashion-MNIST labels (Xiao et al., 2017). */
static const char *const fashion_mnist_classes[] = {
        "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
        "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot",
};

static const char valid_specs[] = "fashion-mnist:train, fashion-mnist:test, idx:IMAGES,LABELS, dir:PATH";

CvoptDataset *cvopt_dataset_free(CvoptDataset *ds) {
        if (!ds)
                return NULL;
        if (ds->class_names)
                for (uint32_t i = 0; i < ds->n_classes; i++)
                        free(ds->class_names[i]);
        free(ds->class_names);
        if (ds->paths)
                for (size_t i = 0; i < ds->count; i++)
                        free(ds->paths[i]);
        free(ds->paths);
        free(ds->labels);
        free(ds->idx_buffer);
        free(ds->spec);
        free(ds);
        return NULL;
}

DEFINE_TRIVIAL_CLEANUP_FUNC(CvoptDataset *, cvopt_dataset_free);

/* dir/NAME, or dir/NAME.gz when only that exists. Debian ships the .gz
 * files; a user's unpacked copy works too. */
static int fashion_mnist_path(const char *dir, const char *name, char **ret_path) {
        char *p;

        if (asprintf(&p, "%s/%s.gz", dir, name) < 0)
                return -ENOMEM;
        if (access(p, F_OK) < 0) {
                free(p);
                if (asprintf(&p, "%s/%s", dir, name) < 0)
                        return -ENOMEM;
                if (access(p, F_OK) < 0) {
                        int r = cvopt_error_set(-ENOENT,
                                                "%s/%s(.gz): Fashion-MNIST file missing (install "
                                                "dataset-fashion-mnist or set CVOPT_FASHION_MNIST_DIR)",
                                                dir, name);
                        free(p);
                        return r;
                }
        }
        *ret_path = p;
        return 0;
}

static int open_fashion_mnist(CvoptDataset *ds, const char *split) {
        _cleanup_free_ char *images = NULL, *labels = NULL;
        const char *dir = getenv("CVOPT_FASHION_MNIST_DIR"), *prefix;
        char name[64];
        int r;

        if (!dir || !*dir)
                dir = FASHION_MNIST_DEFAULT_DIR;
        if (streq(split, "train"))
                prefix = "train";
        else if (streq(split, "test"))
                prefix = "t10k";
        else
                return cvopt_error_set(-EINVAL, "fashion-mnist:%s: unknown split, expected train or test", split);

        snprintf(name, sizeof(name), "%s-images-idx3-ubyte", prefix);
        r = fashion_mnist_path(dir, name, &images);
        if (r < 0)
                return r;
        snprintf(name, sizeof(name), "%s-labels-idx1-ubyte", prefix);
        r = fashion_mnist_path(dir, name, &labels);
        if (r < 0)
                return r;
        return dataset_open_idx(ds, images, labels, fashion_mnist_classes, ELEMENTSOF(fashion_mnist_classes));
}

static int open_idx_pair(CvoptDataset *ds, const char *paths) {
        _cleanup_free_ char *images = NULL;
        const char *comma = strchr(paths, ',');

        if (!comma || comma == paths || !comma[1])
                return cvopt_error_set(-EINVAL, "idx:%s: expected idx:IMAGES,LABELS (two paths, one comma)", paths);
        images = strndup(paths, (size_t) (comma - paths));
        if (!images)
                return -ENOMEM;
        return dataset_open_idx(ds, images, comma + 1, NULL, 0);
}

int cvopt_dataset_open(const char *spec, CvoptDataset **ret_dataset) {
        _cleanup_(cvopt_dataset_freep) CvoptDataset *ds = NULL;
        int r;

        if (!spec || !*spec)
                return cvopt_error_set(-EINVAL, "no dataset given; valid forms: %s", valid_specs);
        ds = calloc(1, sizeof(*ds));
        if (!ds)
                return -ENOMEM;
        ds->spec = strdup(spec);
        if (!ds->spec)
                return -ENOMEM;

        if (startswith(spec, "fashion-mnist:"))
                r = open_fashion_mnist(ds, spec + strlen("fashion-mnist:"));
        else if (startswith(spec, "idx:"))
                r = open_idx_pair(ds, spec + strlen("idx:"));
        else if (startswith(spec, "dir:")) {
                if (!spec[4])
                        return cvopt_error_set(-EINVAL, "dir: needs a folder, as dir:PATH");
                r = dataset_open_dir(ds, spec + strlen("dir:"));
        } else
                return cvopt_error_set(-EINVAL, "%s: unknown dataset; valid forms: %s", spec, valid_specs);
        if (r < 0)
                return r;

        *ret_dataset = TAKE_PTR(ds);
        return 0;
}

const char *cvopt_dataset_spec(const CvoptDataset *ds) {
        return ds->spec;
}

size_t cvopt_dataset_count(const CvoptDataset *ds) {
        return ds->count;
}

uint32_t cvopt_dataset_n_classes(const CvoptDataset *ds) {
        return ds->n_classes;
}

const char *cvopt_dataset_class_name(const CvoptDataset *ds, uint32_t i) {
        if (!ds->class_names || i >= ds->n_classes)
                return NULL;
        return ds->class_names[i];
}

int cvopt_dataset_image_size(const CvoptDataset *ds, uint32_t *ret_width, uint32_t *ret_height,
                             uint32_t *ret_channels) {
        if (ds->kind != DATASET_KIND_IDX)
                return -ENODATA;
        if (ret_width)
                *ret_width = ds->width;
        if (ret_height)
                *ret_height = ds->height;
        if (ret_channels)
                *ret_channels = ds->channels;
        return 0;
}

int cvopt_dataset_label(const CvoptDataset *ds, size_t index) {
        if (index >= ds->count)
                return cvopt_error_set(-ERANGE, "%s: item %zu out of range (%zu items)", ds->spec, index, ds->count);
        return ds->labels[index];
}

const char *cvopt_dataset_item_path(const CvoptDataset *ds, size_t index) {
        if (ds->kind != DATASET_KIND_DIR || index >= ds->count)
                return NULL;
        return ds->paths[index];
}

int cvopt_dataset_get(const CvoptDataset *ds, size_t index, CvoptImage **ret_image, int *ret_label) {
        CvoptImage *img = NULL;
        int r;

        if (index >= ds->count)
                return cvopt_error_set(-ERANGE, "%s: item %zu out of range (%zu items)", ds->spec, index, ds->count);

        if (ret_image) {
                if (ds->kind == DATASET_KIND_IDX) {
                        size_t bytes = (size_t) ds->width * ds->height * ds->channels;
                        r = cvopt_image_new(ds->width, ds->height, ds->channels, &img);
                        if (r < 0)
                                return r;
                        memcpy(img->pixels, ds->idx_pixels + index * bytes, bytes);
                } else {
                        r = cvopt_image_load(ds->paths[index], &img);
                        if (r < 0)
                                return cvopt_error_prefix(r, "%s: item %zu", ds->spec, index);
                }
                *ret_image = img;
        }
        if (ret_label)
                *ret_label = ds->labels[index];
        return 0;
}

/* Class order for the leftover items: largest remainder first, then the
 * lower class index. */
typedef struct ClassShare {
        uint32_t class_index;
        uint64_t remainder;
} ClassShare;

static int compare_shares(const void *a, const void *b) {
        const ClassShare *x = a, *y = b;
        if (x->remainder != y->remainder)
                return x->remainder > y->remainder ? -1 : 1;
        return x->class_index < y->class_index ? -1 : x->class_index > y->class_index;
}

int cvopt_dataset_sample(const CvoptDataset *ds, size_t n, uint64_t seed, size_t *ret_indices) {
        _cleanup_free_ size_t *class_count = NULL, *class_start = NULL, *class_fill = NULL, *quota = NULL,
                              *by_class = NULL;
        _cleanup_free_ ClassShare *shares = NULL;
        uint32_t n_classes = ds->n_classes;
        size_t assigned = 0, out = 0;
        Random rng;

        if (n > ds->count)
                return cvopt_error_set(-EINVAL, "%s: cannot sample %zu of %zu items", ds->spec, n, ds->count);
        if (n == 0)
                return 0;

        class_count = calloc(n_classes, sizeof(size_t));
        class_start = calloc(n_classes, sizeof(size_t));
        class_fill = calloc(n_classes, sizeof(size_t));
        quota = calloc(n_classes, sizeof(size_t));
        shares = calloc(n_classes, sizeof(ClassShare));
        by_class = calloc(ds->count, sizeof(size_t));
        if (!class_count || !class_start || !class_fill || !quota || !shares || !by_class)
                return -ENOMEM;

        /* Items grouped by class, each group in index order. */
        for (size_t i = 0; i < ds->count; i++)
                class_count[ds->labels[i]]++;
        for (uint32_t c = 1; c < n_classes; c++)
                class_start[c] = class_start[c - 1] + class_count[c - 1];
        for (size_t i = 0; i < ds->count; i++) {
                uint32_t c = (uint32_t) ds->labels[i];
                by_class[class_start[c] + class_fill[c]++] = i;
        }

        /* Proportional quotas, computed exactly in 128 bits (n * count
         * may exceed 64 bits in principle), leftovers by largest remainder. */
        for (uint32_t c = 0; c < n_classes; c++) {
                unsigned __int128 product = (unsigned __int128) n * class_count[c];
                quota[c] = (size_t) (product / ds->count);
                shares[c] = (ClassShare) { .class_index = c, .remainder = (uint64_t) (product % ds->count) };
                assigned += quota[c];
        }
        qsort(shares, n_classes, sizeof(ClassShare), compare_shares);
        for (uint32_t k = 0; assigned < n && k < n_classes; k++) {
                uint32_t c = shares[k].class_index;
                if (quota[c] < class_count[c]) {
                        quota[c]++;
                        assigned++;
                }
        }
        assert(assigned == n);

        /* Per class, a partial Fisher–Yates shuffle picks quota[c] items;
         * then the whole pick is shuffled so classes are interleaved. */
        random_init(&rng, seed);
        for (uint32_t c = 0; c < n_classes; c++) {
                size_t *group = by_class + class_start[c];
                for (size_t i = 0; i < quota[c]; i++) {
                        size_t j = i + (size_t) random_below(&rng, class_count[c] - i), t = group[i];
                        group[i] = group[j];
                        group[j] = t;
                        ret_indices[out++] = group[i];
                }
        }
        for (size_t i = n - 1; i > 0; i--) {
                size_t j = (size_t) random_below(&rng, i + 1), t = ret_indices[i];
                ret_indices[i] = ret_indices[j];
                ret_indices[j] = t;
        }
        return 0;
}
