/* SPDX-License-Identifier: MIT */
/* Test helper: writes Fashion-MNIST test images as PNG or PGM files and
 * prints one line per image, "PATH<TAB>LABEL_INDEX<TAB>LABEL_NAME", so
 * shell tests and scripts/demo.sh can compare cvopt's labels with the
 * dataset's.
 *
 * Usage: write-fmnist-images DIR COUNT [png|pgm] */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "cvopt/cvopt.h"
#include "macro.h"

int main(int argc, char **argv) {
        CvoptDataset *ds = NULL;
        const char *dir, *format = "png";
        long count;
        char *end;
        int r;

        if (argc < 3 || argc > 4) {
                fprintf(stderr, "usage: %s DIR COUNT [png|pgm]\n", argv[0]);
                return 2;
        }
        dir = argv[1];
        count = strtol(argv[2], &end, 10);
        if (*end || count < 1 || count > 10000) {
                fprintf(stderr, "%s: COUNT must be 1..10000\n", argv[0]);
                return 2;
        }
        if (argc == 4)
                format = argv[3];
        if (!streq(format, "png") && !streq(format, "pgm")) {
                fprintf(stderr, "%s: format must be png or pgm\n", argv[0]);
                return 2;
        }

        r = cvopt_dataset_open("fashion-mnist:test", &ds);
        if (r < 0) {
                fprintf(stderr, "%s: %s\n", argv[0], *cvopt_error_detail() ? cvopt_error_detail() : cvopt_strerror(r));
                return 1;
        }
        for (long i = 0; i < count; i++) {
                CvoptImage *img = NULL;
                char path[4096];
                int label;

                r = cvopt_dataset_get(ds, (size_t) i, &img, &label);
                if (r < 0)
                        break;
                snprintf(path, sizeof path, "%s/test-%05ld.%s", dir, i, format);
                r = streq(format, "png") ? cvopt_image_save_png(img, path) : cvopt_image_save_pnm(img, path);
                cvopt_image_free(img);
                if (r < 0)
                        break;
                printf("%s\t%d\t%s\n", path, label, cvopt_dataset_class_name(ds, (uint32_t) label));
        }
        cvopt_dataset_free(ds);
        if (r < 0) {
                fprintf(stderr, "%s: %s\n", argv[0], *cvopt_error_detail() ? cvopt_error_detail() : cvopt_strerror(r));
                return 1;
        }
        return 0;
}
