/* SPDX-License-Identifier: MIT */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <pthread.h>
#include <sys/stat.h>
#include <zlib.h>
#include <cmocka.h>

#include "cvopt/cvopt.h"
#include "macro.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(CvoptImage *, cvopt_image_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(CvoptDataset *, cvopt_dataset_free);

#define TMPDIR_TEMPLATE "/tmp/cvopt-test-dataset-XXXXXX"
#include "tmpdir-fixture.h"

static void write_file(const char *path, const void *data, size_t size) {
        FILE *f = fopen(path, "we");
        assert_non_null(f);
        assert_int_equal(fwrite(data, 1, size, f), size);
        assert_int_equal(fclose(f), 0);
}

static void write_gz(const char *path, const void *data, size_t size) {
        gzFile f = gzopen(path, "wb");
        assert_non_null(f);
        assert_int_equal(gzwrite(f, data, (unsigned) size), (int) size);
        assert_int_equal(gzclose(f), Z_OK);
}

/* An IDX byte file: magic, dims (big-endian), data. */
static size_t make_idx(uint8_t *buf, uint32_t ndim, const uint32_t *dims, const uint8_t *data) {
        size_t n = 1, pos = 4;

        buf[0] = buf[1] = 0;
        buf[2] = 0x08;
        buf[3] = (uint8_t) ndim;
        for (uint32_t i = 0; i < ndim; i++) {
                buf[pos++] = (uint8_t) (dims[i] >> 24);
                buf[pos++] = (uint8_t) (dims[i] >> 16);
                buf[pos++] = (uint8_t) (dims[i] >> 8);
                buf[pos++] = (uint8_t) dims[i];
                n *= dims[i];
        }
        memcpy(buf + pos, data, n);
        return pos + n;
}

/* Three 3x2 images (W=3, H=2) and labels 2, 0, 1. */
static const uint8_t tiny_pixels[3 * 6] = { 1, 2, 3, 4, 5, 6, 10, 20, 30, 40, 50, 60, 255, 0, 255, 0, 255, 0 };
static const uint8_t tiny_labels[3] = { 2, 0, 1 };

static void write_tiny_idx(const char *images, const char *labels, bool gz, const uint8_t *label_values) {
        uint8_t buf[256];
        uint32_t image_dims[3] = { 3, 2, 3 }, label_dims[1] = { 3 };
        size_t n;

        n = make_idx(buf, 3, image_dims, tiny_pixels);
        (gz ? write_gz : write_file)(images, buf, n);
        n = make_idx(buf, 1, label_dims, label_values);
        (gz ? write_gz : write_file)(labels, buf, n);
}

static void check_tiny(const char *spec) {
        _cleanup_(cvopt_dataset_freep) CvoptDataset *ds = NULL;
        uint32_t w, h, c;

        assert_int_equal(cvopt_dataset_open(spec, &ds), 0);
        assert_int_equal(cvopt_dataset_count(ds), 3);
        assert_int_equal(cvopt_dataset_n_classes(ds), 3); /* max label + 1 */
        assert_null(cvopt_dataset_class_name(ds, 0));
        assert_int_equal(cvopt_dataset_image_size(ds, &w, &h, &c), 0);
        assert_int_equal(w, 3);
        assert_int_equal(h, 2);
        assert_int_equal(c, 1);
        for (size_t i = 0; i < 3; i++) {
                _cleanup_(cvopt_image_freep) CvoptImage *img = NULL;
                int label = -1;
                assert_int_equal(cvopt_dataset_get(ds, i, &img, &label), 0);
                assert_int_equal(label, tiny_labels[i]);
                assert_int_equal(cvopt_dataset_label(ds, i), tiny_labels[i]);
                assert_int_equal(img->width, 3);
                assert_int_equal(img->height, 2);
                assert_memory_equal(img->pixels, tiny_pixels + 6 * i, 6);
        }
        assert_int_equal(cvopt_dataset_get(ds, 3, NULL, NULL), -ERANGE);
        assert_null(cvopt_dataset_item_path(ds, 0));
}

static void test_fashion_mnist_test(void **state) {
        _cleanup_(cvopt_dataset_freep) CvoptDataset *ds = NULL;
        _cleanup_(cvopt_image_freep) CvoptImage *img = NULL, *img1 = NULL;
        uint64_t sum = 0;
        int label = -1;
        (void) state;

        unsetenv("CVOPT_FASHION_MNIST_DIR");
        assert_int_equal(cvopt_dataset_open("fashion-mnist:test", &ds), 0);
        assert_int_equal(cvopt_dataset_count(ds), 10000);
        assert_int_equal(cvopt_dataset_n_classes(ds), 10);
        assert_string_equal(cvopt_dataset_class_name(ds, 0), "T-shirt/top");
        assert_string_equal(cvopt_dataset_class_name(ds, 9), "Ankle boot");
        assert_null(cvopt_dataset_class_name(ds, 10));
        assert_string_equal(cvopt_dataset_spec(ds), "fashion-mnist:test");

        /* Values read from the Debian file with Python's gzip module. */
        assert_int_equal(cvopt_dataset_get(ds, 0, &img, &label), 0);
        assert_int_equal(label, 9);
        assert_int_equal(img->width, 28);
        assert_int_equal(img->height, 28);
        assert_int_equal(img->channels, 1);
        assert_int_equal(img->pixels[0], 0);
        assert_int_equal(img->pixels[215], 3);
        assert_int_equal(img->pixels[577], 255);
        assert_int_equal(img->pixels[14 * 28 + 14], 110);
        for (size_t i = 0; i < 28 * 28; i++)
                sum += img->pixels[i];
        assert_int_equal(sum, 33456);

        assert_int_equal(cvopt_dataset_get(ds, 1, &img1, &label), 0);
        assert_int_equal(label, 2);
        assert_int_equal(img1->pixels[14 * 28 + 14], 234);
        assert_int_equal(cvopt_dataset_label(ds, 9999), 5);
        assert_int_equal(cvopt_dataset_label(ds, 10000), -ERANGE);
        assert_int_equal(cvopt_dataset_get(ds, 10000, NULL, &label), -ERANGE);
}

static void test_fashion_mnist_train(void **state) {
        _cleanup_(cvopt_dataset_freep) CvoptDataset *ds = NULL;
        size_t per_class[10] = {};
        (void) state;

        unsetenv("CVOPT_FASHION_MNIST_DIR");
        assert_int_equal(cvopt_dataset_open("fashion-mnist:train", &ds), 0);
        assert_int_equal(cvopt_dataset_count(ds), 60000);
        for (size_t i = 0; i < 60000; i++)
                per_class[cvopt_dataset_label(ds, i)]++;
        for (size_t k = 0; k < 10; k++)
                assert_int_equal(per_class[k], 6000);
}

static void test_fashion_mnist_dir_override(void **state) {
        _cleanup_free_ char *dir = tmp_path("fmnist"), *images = NULL, *labels = NULL;
        _cleanup_(cvopt_dataset_freep) CvoptDataset *ds = NULL;
        static const uint8_t bad_labels[3] = { 2, 12, 1 };
        (void) state;

        assert_int_equal(mkdir(dir, 0755), 0);
        assert_true(asprintf(&images, "%s/t10k-images-idx3-ubyte", dir) > 0);
        assert_true(asprintf(&labels, "%s/t10k-labels-idx1-ubyte", dir) > 0);
        assert_int_equal(setenv("CVOPT_FASHION_MNIST_DIR", dir, 1), 0);

        /* No files yet: the detail says which and how to get them. */
        assert_int_equal(cvopt_dataset_open("fashion-mnist:test", &ds), -ENOENT);
        assert_non_null(strstr(cvopt_error_detail(), "t10k-images-idx3-ubyte"));

        write_tiny_idx(images, labels, false, tiny_labels);
        assert_int_equal(cvopt_dataset_open("fashion-mnist:test", &ds), 0);
        assert_int_equal(cvopt_dataset_count(ds), 3);
        assert_int_equal(cvopt_dataset_n_classes(ds), 10); /* known, not max + 1 */
        assert_string_equal(cvopt_dataset_class_name(ds, 2), "Pullover");
        ds = cvopt_dataset_free(ds);

        /* Fashion-MNIST has 10 classes: label 12 is an error naming file and item. */
        write_tiny_idx(images, labels, false, bad_labels);
        assert_int_equal(cvopt_dataset_open("fashion-mnist:test", &ds), -CVOPT_E_DATA);
        assert_non_null(strstr(cvopt_error_detail(), labels));
        assert_non_null(strstr(cvopt_error_detail(), "label 12 of item 1"));
        assert_null(ds);

        assert_int_equal(cvopt_dataset_open("fashion-mnist:validation", &ds), -EINVAL);
        unsetenv("CVOPT_FASHION_MNIST_DIR");
}

static void test_idx_raw_and_gz(void **state) {
        _cleanup_free_ char *images = tmp_path("raw-images"), *labels = tmp_path("raw-labels"),
                            *gz_images = tmp_path("images.gz"), *gz_labels = tmp_path("labels.gz"), *spec = NULL,
                            *gz_spec = NULL;
        (void) state;

        write_tiny_idx(images, labels, false, tiny_labels);
        write_tiny_idx(gz_images, gz_labels, true, tiny_labels);
        assert_true(asprintf(&spec, "idx:%s,%s", images, labels) > 0);
        assert_true(asprintf(&gz_spec, "idx:%s,%s", gz_images, gz_labels) > 0);
        check_tiny(spec);
        check_tiny(gz_spec);
}

/* N x H x W x 3 IDX images are RGB. */
static void test_idx_rgb(void **state) {
        _cleanup_free_ char *images = tmp_path("rgb-images"), *labels = tmp_path("rgb-labels"), *spec = NULL;
        _cleanup_(cvopt_dataset_freep) CvoptDataset *ds = NULL;
        _cleanup_(cvopt_image_freep) CvoptImage *img = NULL;
        static const uint8_t pixels[2 * 1 * 2 * 3] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12 };
        static const uint8_t label_values[2] = { 4, 1 };
        uint32_t image_dims[4] = { 2, 1, 2, 3 }, label_dims[1] = { 2 };
        uint8_t buf[64];
        int label;
        (void) state;

        write_file(images, buf, make_idx(buf, 4, image_dims, pixels));
        write_file(labels, buf, make_idx(buf, 1, label_dims, label_values));
        assert_true(asprintf(&spec, "idx:%s,%s", images, labels) > 0);
        assert_int_equal(cvopt_dataset_open(spec, &ds), 0);
        assert_int_equal(cvopt_dataset_n_classes(ds), 5);
        assert_int_equal(cvopt_dataset_get(ds, 1, &img, &label), 0);
        assert_int_equal(label, 1);
        assert_int_equal(img->channels, 3);
        assert_int_equal(img->width, 2);
        assert_int_equal(img->height, 1);
        assert_memory_equal(img->pixels, pixels + 6, 6);

        /* Two channels is neither gray nor RGB. */
        image_dims[3] = 2;
        write_file(images, buf, make_idx(buf, 4, image_dims, pixels));
        ds = cvopt_dataset_free(ds);
        assert_int_equal(cvopt_dataset_open(spec, &ds), -CVOPT_E_DATA);
        assert_non_null(strstr(cvopt_error_detail(), "2 channels"));
}

static void test_idx_errors(void **state) {
        _cleanup_free_ char *images = tmp_path("e-images"), *labels = tmp_path("e-labels"),
                            *cut = tmp_path("cut-images"), *cut_gz = tmp_path("cut-images.gz"),
                            *bad = tmp_path("bad-magic"), *four = tmp_path("four-labels"), *spec = NULL;
        CvoptDataset *ds = NULL;
        uint8_t buf[256];
        uint32_t image_dims[3] = { 3, 2, 3 }, four_dims[1] = { 4 };
        static const uint8_t four_labels[4] = { 0, 1, 2, 3 };
        size_t n;
        (void) state;

        write_tiny_idx(images, labels, false, tiny_labels);

        /* Truncated raw file: one image byte missing. */
        n = make_idx(buf, 3, image_dims, tiny_pixels);
        write_file(cut, buf, n - 1);
        free(spec);
        assert_true(asprintf(&spec, "idx:%s,%s", cut, labels) > 0);
        assert_int_equal(cvopt_dataset_open(spec, &ds), -CVOPT_E_DATA);
        assert_non_null(strstr(cvopt_error_detail(), cut));
        assert_non_null(strstr(cvopt_error_detail(), "truncated"));

        /* One byte too many: the header and the data disagree. */
        n = make_idx(buf, 3, image_dims, tiny_pixels);
        buf[n] = 7;
        write_file(cut, buf, n + 1);
        assert_int_equal(cvopt_dataset_open(spec, &ds), -CVOPT_E_DATA);
        assert_non_null(strstr(cvopt_error_detail(), "unexpected bytes"));

        /* Truncated gzip stream: half of the compressed bytes. */
        {
                uint8_t z[512];
                FILE *in;
                size_t got;

                write_gz(cut_gz, buf, n);
                in = fopen(cut_gz, "re");
                assert_non_null(in);
                got = fread(z, 1, sizeof(z), in);
                fclose(in);
                assert_true(got > 20);
                write_file(cut_gz, z, got / 2);
        }
        free(spec);
        assert_true(asprintf(&spec, "idx:%s,%s", cut_gz, labels) > 0);
        assert_int_equal(cvopt_dataset_open(spec, &ds), -CVOPT_E_DATA);
        assert_non_null(strstr(cvopt_error_detail(), cut_gz));

        /* Bad magic. */
        write_file(bad, "\x01\x02\x08\x03 and more bytes here", 24);
        free(spec);
        assert_true(asprintf(&spec, "idx:%s,%s", bad, labels) > 0);
        assert_int_equal(cvopt_dataset_open(spec, &ds), -CVOPT_E_DATA);
        assert_non_null(strstr(cvopt_error_detail(), bad));
        assert_non_null(strstr(cvopt_error_detail(), "magic"));

        /* Three images, four labels. */
        n = make_idx(buf, 1, four_dims, four_labels);
        write_file(four, buf, n);
        free(spec);
        assert_true(asprintf(&spec, "idx:%s,%s", images, four) > 0);
        assert_int_equal(cvopt_dataset_open(spec, &ds), -CVOPT_E_DATA);
        assert_non_null(strstr(cvopt_error_detail(), "3 images"));
        assert_non_null(strstr(cvopt_error_detail(), "4 labels"));

        /* Missing file. */
        free(spec);
        assert_true(asprintf(&spec, "idx:%s/nope,%s", tmpdir, labels) > 0);
        assert_int_equal(cvopt_dataset_open(spec, &ds), -ENOENT);
        assert_non_null(strstr(cvopt_error_detail(), "/nope"));

        /* Malformed and unknown specs. */
        assert_int_equal(cvopt_dataset_open("idx:onlyone", &ds), -EINVAL);
        assert_int_equal(cvopt_dataset_open("cifar:test", &ds), -EINVAL);
        assert_non_null(strstr(cvopt_error_detail(), "fashion-mnist:test"));
        assert_non_null(strstr(cvopt_error_detail(), "dir:PATH"));
        assert_int_equal(cvopt_dataset_open("", &ds), -EINVAL);
        assert_null(ds);
}

static CvoptImage *solid(uint32_t w, uint32_t h, uint32_t ch, uint8_t value) {
        CvoptImage *img;
        assert_int_equal(cvopt_image_new(w, h, ch, &img), 0);
        memset(img->pixels, value, (size_t) w * h * ch);
        return img;
}

/* A folder dataset written by the test: classes sorted by name, files
 * sorted by name, other files ignored, images of any size. */
static void test_dir_dataset(void **state) {
        _cleanup_free_ char *root = tmp_path("folder"), *spec = NULL;
        _cleanup_(cvopt_dataset_freep) CvoptDataset *ds = NULL;
        static const char *const classes[] = { "dog", "bird", "cat" };
        char path[512];
        (void) state;

        assert_int_equal(mkdir(root, 0755), 0);
        for (size_t c = 0; c < ELEMENTSOF(classes); c++) {
                snprintf(path, sizeof(path), "%s/%s", root, classes[c]);
                assert_int_equal(mkdir(path, 0755), 0);
        }
        /* bird = 0: two PNGs; cat = 1: a PGM and a PNG; dog = 2: one RGB PNG. */
        struct {
                const char *name;
                uint32_t w, h, ch;
                uint8_t value;
                bool pnm;
        } files[] = {
                { "bird/b.png", 4, 4, 1, 20, false },  { "bird/a.png", 5, 3, 1, 10, false },
                { "cat/z.pgm", 28, 28, 1, 30, true },  { "cat/m.PNG", 2, 2, 1, 40, false },
                { "dog/x.png", 3, 3, 3, 50, false },
        };
        for (size_t i = 0; i < ELEMENTSOF(files); i++) {
                _cleanup_(cvopt_image_freep) CvoptImage *img =
                        solid(files[i].w, files[i].h, files[i].ch, files[i].value);
                snprintf(path, sizeof(path), "%s/%s", root, files[i].name);
                assert_int_equal((files[i].pnm ? cvopt_image_save_pnm : cvopt_image_save_png)(img, path), 0);
        }
        snprintf(path, sizeof(path), "%s/cat/README.txt", root);
        write_file(path, "not an image", 12);
        snprintf(path, sizeof(path), "%s/cat/.hidden.png", root);
        write_file(path, "not an image", 12);
        snprintf(path, sizeof(path), "%s/notes.txt", root);
        write_file(path, "a file among the class folders", 30);

        assert_true(asprintf(&spec, "dir:%s", root) > 0);
        assert_int_equal(cvopt_dataset_open(spec, &ds), 0);
        assert_int_equal(cvopt_dataset_count(ds), 5);
        assert_int_equal(cvopt_dataset_n_classes(ds), 3);
        assert_string_equal(cvopt_dataset_class_name(ds, 0), "bird");
        assert_string_equal(cvopt_dataset_class_name(ds, 1), "cat");
        assert_string_equal(cvopt_dataset_class_name(ds, 2), "dog");
        assert_int_equal(cvopt_dataset_image_size(ds, NULL, NULL, NULL), -ENODATA);

        /* Expected order: bird/a, bird/b, cat/m.PNG, cat/z.pgm, dog/x. */
        static const struct {
                const char *suffix;
                int label;
                uint32_t w, ch;
                uint8_t value;
        } want[] = {
                { "/bird/a.png", 0, 5, 1, 10 }, { "/bird/b.png", 0, 4, 1, 20 }, { "/cat/m.PNG", 1, 2, 1, 40 },
                { "/cat/z.pgm", 1, 28, 1, 30 }, { "/dog/x.png", 2, 3, 3, 50 },
        };
        for (size_t i = 0; i < ELEMENTSOF(want); i++) {
                _cleanup_(cvopt_image_freep) CvoptImage *img = NULL;
                const char *p = cvopt_dataset_item_path(ds, i);
                int label = -1;

                assert_non_null(p);
                assert_string_equal(p + strlen(p) - strlen(want[i].suffix), want[i].suffix);
                assert_int_equal(cvopt_dataset_get(ds, i, &img, &label), 0);
                assert_int_equal(label, want[i].label);
                assert_int_equal(cvopt_dataset_label(ds, i), want[i].label);
                assert_int_equal(img->width, want[i].w);
                assert_int_equal(img->channels, want[i].ch);
                assert_int_equal(img->pixels[0], want[i].value);
        }

        /* A trailing slash changes nothing. */
        ds = cvopt_dataset_free(ds);
        free(spec);
        assert_true(asprintf(&spec, "dir:%s//", root) > 0);
        assert_int_equal(cvopt_dataset_open(spec, &ds), 0);
        assert_int_equal(cvopt_dataset_count(ds), 5);
        snprintf(path, sizeof(path), "%s/bird/a.png", root);
        assert_string_equal(cvopt_dataset_item_path(ds, 0), path);

        /* A file that stops being an image after open: get fails naming
         * the file and the item. */
        ds = cvopt_dataset_free(ds);
        snprintf(path, sizeof(path), "%s/cat/m.PNG", root);
        write_file(path, "\x89PNG\r\n\x1a\n broken", 15);
        assert_int_equal(cvopt_dataset_open(spec, &ds), 0);
        assert_int_equal(cvopt_dataset_get(ds, 2, &(CvoptImage *) { NULL }, NULL), -CVOPT_E_DATA);
        assert_non_null(strstr(cvopt_error_detail(), path));
        assert_non_null(strstr(cvopt_error_detail(), "item 2"));
}

static void test_dir_errors(void **state) {
        _cleanup_free_ char *empty = tmp_path("empty"), *no_images = tmp_path("no-images"), *spec = NULL;
        CvoptDataset *ds = NULL;
        char path[512];
        (void) state;

        assert_int_equal(mkdir(empty, 0755), 0);
        assert_true(asprintf(&spec, "dir:%s", empty) > 0);
        assert_int_equal(cvopt_dataset_open(spec, &ds), -CVOPT_E_DATA);
        assert_non_null(strstr(cvopt_error_detail(), empty));

        assert_int_equal(mkdir(no_images, 0755), 0);
        snprintf(path, sizeof(path), "%s/a", no_images);
        assert_int_equal(mkdir(path, 0755), 0);
        free(spec);
        assert_true(asprintf(&spec, "dir:%s", no_images) > 0);
        assert_int_equal(cvopt_dataset_open(spec, &ds), -CVOPT_E_DATA);
        assert_non_null(strstr(cvopt_error_detail(), "no images"));

        free(spec);
        assert_true(asprintf(&spec, "dir:%s/missing", tmpdir) > 0);
        assert_int_equal(cvopt_dataset_open(spec, &ds), -ENOENT);
        assert_non_null(strstr(cvopt_error_detail(), "/missing"));
        assert_int_equal(cvopt_dataset_open("dir:", &ds), -EINVAL);
        assert_null(ds);
}

static int compare_size(const void *a, const void *b) {
        size_t x = *(const size_t *) a, y = *(const size_t *) b;
        return x < y ? -1 : x > y;
}

static void test_sample(void **state) {
        _cleanup_(cvopt_dataset_freep) CvoptDataset *ds = NULL;
        size_t a[100], b[100], c[100], sorted[100];
        size_t per_class[10] = {};
        _cleanup_free_ size_t *all = NULL;
        (void) state;

        unsetenv("CVOPT_FASHION_MNIST_DIR");
        assert_int_equal(cvopt_dataset_open("fashion-mnist:test", &ds), 0);
        assert_int_equal(cvopt_dataset_sample(ds, 100, 1, a), 0);
        assert_int_equal(cvopt_dataset_sample(ds, 100, 1, b), 0);
        assert_int_equal(cvopt_dataset_sample(ds, 100, 2, c), 0);
        assert_memory_equal(a, b, sizeof(a));
        assert_memory_not_equal(a, c, sizeof(a));

        memcpy(sorted, a, sizeof(a));
        qsort(sorted, 100, sizeof(size_t), compare_size);
        for (size_t i = 0; i < 100; i++) {
                assert_true(sorted[i] < 10000);
                if (i > 0)
                        assert_true(sorted[i] != sorted[i - 1]);
                per_class[cvopt_dataset_label(ds, sorted[i])]++;
        }
        /* 1000 of each class in the test set: 10 of each in 100. */
        for (size_t k = 0; k < 10; k++)
                assert_int_equal(per_class[k], 10);
        /* Shuffled, not in index order. */
        assert_memory_not_equal(a, sorted, sizeof(a));
        /* Another seed picks other items, not only another order. */
        qsort(c, 100, sizeof(size_t), compare_size);
        assert_memory_not_equal(sorted, c, sizeof(c));

        /* The whole set is a permutation. */
        all = calloc(10000, sizeof(size_t));
        assert_non_null(all);
        assert_int_equal(cvopt_dataset_sample(ds, 10000, 7, all), 0);
        qsort(all, 10000, sizeof(size_t), compare_size);
        for (size_t i = 0; i < 10000; i++)
                assert_int_equal(all[i], i);

        assert_int_equal(cvopt_dataset_sample(ds, 10001, 7, all), -EINVAL);
        assert_int_equal(cvopt_dataset_sample(ds, 0, 7, all), 0);
}

/* Uneven classes: 3 items drawn from 7 labelled 0, 0, 0, 0, 1, 1, 2. */
static void test_sample_uneven(void **state) {
        _cleanup_free_ char *images = tmp_path("u-images"), *labels = tmp_path("u-labels"), *spec = NULL;
        _cleanup_(cvopt_dataset_freep) CvoptDataset *ds = NULL;
        static const uint8_t pixels[7] = { 0, 1, 2, 3, 4, 5, 6 };
        static const uint8_t label_values[7] = { 0, 0, 0, 0, 1, 1, 2 };
        uint32_t image_dims[3] = { 7, 1, 1 }, label_dims[1] = { 7 };
        uint8_t buf[64];
        size_t idx[3], count[3] = {};
        (void) state;

        write_file(images, buf, make_idx(buf, 3, image_dims, pixels));
        write_file(labels, buf, make_idx(buf, 1, label_dims, label_values));
        assert_true(asprintf(&spec, "idx:%s,%s", images, labels) > 0);
        assert_int_equal(cvopt_dataset_open(spec, &ds), 0);
        /* Shares of 3 items: 3 * 4/7 = 1.71, 3 * 2/7 = 0.86, 3 * 1/7 = 0.43
         * -> 1, 0, 0, and the 2 left over go to the largest remainders,
         * class 1 (0.86) then class 0 (0.71): 2, 1, 0 for every seed. */
        for (uint64_t seed = 0; seed < 20; seed++) {
                memset(count, 0, sizeof(count));
                assert_int_equal(cvopt_dataset_sample(ds, 3, seed, idx), 0);
                for (size_t i = 0; i < 3; i++)
                        count[cvopt_dataset_label(ds, idx[i])]++;
                assert_int_equal(count[0], 2);
                assert_int_equal(count[1], 1);
                assert_int_equal(count[2], 0);
        }
}

/* Several threads read different items at once and get what one thread
 * gets (run under ASan/TSan-like checking by the sanitizer build). */
typedef struct Reader {
        const CvoptDataset *ds;
        size_t first, n;
        uint64_t checksum;
        int error;
} Reader;

static void *reader_run(void *userdata) {
        Reader *r = userdata;
        for (size_t i = r->first; i < r->first + r->n; i++) {
                CvoptImage *img = NULL;
                int label;
                r->error = cvopt_dataset_get(r->ds, i, &img, &label);
                if (r->error < 0)
                        return NULL;
                for (size_t k = 0; k < (size_t) img->width * img->height * img->channels; k++)
                        r->checksum = r->checksum * 31 + img->pixels[k] + (uint64_t) label;
                cvopt_image_free(img);
        }
        return NULL;
}

static void test_threads(void **state) {
        _cleanup_(cvopt_dataset_freep) CvoptDataset *ds = NULL;
        Reader readers[4], serial[4];
        pthread_t threads[4];
        (void) state;

        unsetenv("CVOPT_FASHION_MNIST_DIR");
        assert_int_equal(cvopt_dataset_open("fashion-mnist:test", &ds), 0);
        for (size_t t = 0; t < 4; t++) {
                readers[t] = serial[t] = (Reader) { .ds = ds, .first = t * 500, .n = 500 };
                reader_run(&serial[t]);
        }
        for (size_t t = 0; t < 4; t++)
                assert_int_equal(pthread_create(&threads[t], NULL, reader_run, &readers[t]), 0);
        for (size_t t = 0; t < 4; t++) {
                assert_int_equal(pthread_join(threads[t], NULL), 0);
                assert_int_equal(readers[t].error, 0);
                assert_int_equal(readers[t].checksum, serial[t].checksum);
        }
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_fashion_mnist_test),
                cmocka_unit_test(test_fashion_mnist_train),
                cmocka_unit_test(test_fashion_mnist_dir_override),
                cmocka_unit_test(test_idx_raw_and_gz),
                cmocka_unit_test(test_idx_rgb),
                cmocka_unit_test(test_idx_errors),
                cmocka_unit_test(test_dir_dataset),
                cmocka_unit_test(test_dir_errors),
                cmocka_unit_test(test_sample),
                cmocka_unit_test(test_sample_uneven),
                cmocka_unit_test(test_threads),
        };
        return cmocka_run_group_tests(tests, setup, teardown);
}
