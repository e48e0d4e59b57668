/* SPDX-License-Identifier: MIT */
#pragma once

/* Labelled image datasets, named by a spec string:
 *
 *   fashion-mnist:train   Fashion-MNIST, 60000 training images
 *   fashion-mnist:test    Fashion-MNIST, 10000 test images
 *       from /usr/share/datasets/fashion-mnist (Debian's
 *       dataset-fashion-mnist), or from $CVOPT_FASHION_MNIST_DIR when set;
 *       the files {train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz].
 *   idx:IMAGES,LABELS     a pair of IDX files (gzipped or not: detected by
 *       their magic bytes), unsigned-byte images of N x H x W (gray) or
 *       N x H x W x C (C = 1 or 3) and N unsigned-byte labels. The paths
 *       are split at the first comma.
 *   dir:PATH              an image folder: one sub-folder per class, the
 *       sub-folders sorted by name (bytewise) give the class indices and
 *       names; inside each, the files named *.png, *.jpg, *.jpeg, *.pgm,
 *       *.ppm, *.pnm, *.bmp (any case), sorted by name. Hidden entries
 *       (starting with '.') and other files are ignored.
 *
 * IDX datasets are read and decompressed once, at open, into memory.
 * Folder datasets list their files at open and decode an image on each
 * get, so images of different sizes are allowed (the consumer preprocesses
 * or rejects them).
 *
 * Reading items (get, label, path, sample) never changes the dataset:
 * several threads may read the same dataset at once. */

#include <stddef.h>
#include <stdint.h>

#include "cvopt/image.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct CvoptDataset CvoptDataset;

/* Opens a dataset. Errors: -EINVAL for an unknown or malformed spec (the
 * detail lists the valid forms), -ENOENT/-EACCES/... for missing files,
 * -CVOPT_E_DATA for bad magic, truncated data, image and label counts that
 * differ, a label out of range, a folder without classes or images; the
 * detail names the file (and item index where there is one). */
int cvopt_dataset_open(const char *spec, CvoptDataset **ret_dataset);
CvoptDataset *cvopt_dataset_free(CvoptDataset *ds);

/* The spec string the dataset was opened with. */
const char *cvopt_dataset_spec(const CvoptDataset *ds);

/* Number of items. */
size_t cvopt_dataset_count(const CvoptDataset *ds);

/* Number of classes: 10 for Fashion-MNIST, the number of sub-folders for
 * an image folder, max label + 1 for other IDX files. */
uint32_t cvopt_dataset_n_classes(const CvoptDataset *ds);

/* Name of class i ("Ankle boot", or the sub-folder's name), or NULL when
 * the dataset has no names (plain IDX files) or i is out of range. */
const char *cvopt_dataset_class_name(const CvoptDataset *ds, uint32_t i);

/* The image size every item has (IDX datasets). -ENODATA for folder
 * datasets, whose images may differ. */
int cvopt_dataset_image_size(const CvoptDataset *ds, uint32_t *ret_width, uint32_t *ret_height,
                             uint32_t *ret_channels);

/* Item index: a new image (free it with cvopt_image_free) and its label
 * (0 <= label < n_classes). Either output may be NULL. -ERANGE for an
 * index >= count; for folder datasets any error of cvopt_image_load (the
 * detail names the file and the index). */
int cvopt_dataset_get(const CvoptDataset *ds, size_t index, CvoptImage **ret_image, int *ret_label);

/* Label of item index without decoding its image: >= 0, or -ERANGE. */
int cvopt_dataset_label(const CvoptDataset *ds, size_t index);

/* File of item index for folder datasets, NULL for IDX datasets or an
 * index out of range. For messages and reports. */
const char *cvopt_dataset_item_path(const CvoptDataset *ds, size_t index);

/* A deterministic random subset: n distinct indices (n <= count) written
 * to ret_indices, in a shuffled order. The same dataset, n and seed always
 * give the same indices, on every machine (a fixed PRNG, xoshiro256**
 * seeded through splitmix64; never rand()). The subset is stratified: each
 * class gets n * (its share of the dataset) items, rounded so the total is
 * n (largest remainders first, ties to the lower class), so calibration
 * and replay subsets see every class. -EINVAL when n > count. */
int cvopt_dataset_sample(const CvoptDataset *ds, size_t n, uint64_t seed, size_t *ret_indices);

#ifdef __cplusplus
}
#endif
