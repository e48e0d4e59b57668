/* SPDX-License-Identifier: MIT */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <strings.h>
#include <sys/stat.h>

#include "cvopt/errors.h"
#include "data/dataset-internal.h"
#include "macro.h"

/* A growable list of strings. */
typedef struct StringList {
        char **items;
        size_t n, allocated;
} StringList;

static void string_list_done(StringList *l) {
        for (size_t i = 0; i < l->n; i++)
                free(l->items[i]);
        free(l->items);
        *l = (StringList) {};
}

/* Takes s (freed on failure). */
static int string_list_push(StringList *l, char *s) {
        if (!s)
                return -ENOMEM;
        if (l->n == l->allocated) {
                size_t n = l->allocated ? l->allocated * 2 : 16, bytes;
                char **p;
                if (size_mul_overflow(n, sizeof(char *), &bytes) || !(p = realloc(l->items, bytes))) {
                        free(s);
                        return -ENOMEM;
                }
                l->items = p;
                l->allocated = n;
        }
        l->items[l->n++] = s;
        return 0;
}

static int compare_strings(const void *a, const void *b) {
        return strcmp(*(char *const *) a, *(char *const *) b);
}

static bool has_image_extension(const char *name) {
        static const char *const extensions[] = { ".png", ".jpg", ".jpeg", ".pgm", ".ppm", ".pnm", ".bmp" };
        const char *dot = strrchr(name, '.');

        if (!dot || dot == name)
                return false;
        for (size_t i = 0; i < ELEMENTSOF(extensions); i++)
                if (strcasecmp(dot, extensions[i]) == 0)
                        return true;
        return false;
}

static void closedirp(DIR **d) {
        if (*d)
                closedir(*d);
}

/* Names in folder path that are sub-folders (want_dirs) or regular files
 * with an image extension, hidden ones skipped, symbolic links followed;
 * sorted bytewise so the order does not depend on the file system or the
 * locale. */
static int list_folder(const char *path, bool want_dirs, StringList *ret) {
        _cleanup_(closedirp) DIR *d = NULL;
        _cleanup_(string_list_done) StringList names = {};
        struct dirent *de;
        int r;

        d = opendir(path);
        if (!d)
                return cvopt_error_set(-errno, "%s: cannot open folder: %s", path, strerror(errno));
        for (;;) {
                struct stat st;

                errno = 0;
                de = readdir(d);
                if (!de) {
                        if (errno != 0)
                                return cvopt_error_set(-errno, "%s: cannot read folder: %s", path, strerror(errno));
                        break;
                }
                if (de->d_name[0] == '.')
                        continue;
                if (!want_dirs && !has_image_extension(de->d_name))
                        continue;
                if (fstatat(dirfd(d), de->d_name, &st, 0) < 0) {
                        if (errno == ENOENT)
                                continue; /* removed while we list, or a dangling link */
                        return cvopt_error_set(-errno, "%s/%s: cannot stat: %s", path, de->d_name, strerror(errno));
                }
                if (want_dirs ? !S_ISDIR(st.st_mode) : !S_ISREG(st.st_mode))
                        continue;
                r = string_list_push(&names, strdup(de->d_name));
                if (r < 0)
                        return r;
        }
        if (names.n > 0)
                qsort(names.items, names.n, sizeof(char *), compare_strings);
        *ret = names;
        names = (StringList) {};
        return 0;
}

int dataset_open_dir(CvoptDataset *ds, const char *folder) {
        _cleanup_(string_list_done) StringList classes = {}, paths = {};
        _cleanup_free_ int32_t *labels = NULL;
        _cleanup_free_ char *path = NULL;
        size_t allocated_labels = 0, len;
        int r;

        /* "dir:images/" and "dir:images" name the same files. */
        path = strdup(folder);
        if (!path)
                return -ENOMEM;
        len = strlen(path);
        while (len > 1 && path[len - 1] == '/')
                path[--len] = 0;

        r = list_folder(path, true, &classes);
        if (r < 0)
                return r;
        if (classes.n == 0)
                return cvopt_error_set(-CVOPT_E_DATA,
                                       "%s: no class sub-folders (expected %s/CLASS/IMAGE.png, one folder per class)",
                                       path, path);
        /* Labels are int; a folder with more classes than that is not a dataset. */
        if (classes.n > INT32_MAX)
                return cvopt_error_set(-CVOPT_E_DATA, "%s: too many classes", path);

        for (size_t c = 0; c < classes.n; c++) {
                _cleanup_(string_list_done) StringList files = {};
                _cleanup_free_ char *class_path = NULL;

                if (asprintf(&class_path, "%s/%s", path, classes.items[c]) < 0) {
                        class_path = NULL;
                        return -ENOMEM;
                }
                r = list_folder(class_path, false, &files);
                if (r < 0)
                        return r;
                for (size_t i = 0; i < files.n; i++) {
                        char *p;

                        if (asprintf(&p, "%s/%s", class_path, files.items[i]) < 0)
                                return -ENOMEM;
                        r = string_list_push(&paths, p);
                        if (r < 0)
                                return r;
                        if (paths.n > allocated_labels) {
                                int32_t *l;
                                allocated_labels = paths.allocated;
                                l = reallocarray(labels, allocated_labels, sizeof(int32_t));
                                if (!l)
                                        return -ENOMEM;
                                labels = l;
                        }
                        labels[paths.n - 1] = (int32_t) c;
                }
        }
        if (paths.n == 0)
                return cvopt_error_set(-CVOPT_E_DATA,
                                       "%s: no images in the class sub-folders (*.png, *.jpg, *.jpeg, *.pgm, *.ppm, "
                                       "*.pnm, *.bmp)",
                                       path);

        ds->kind = DATASET_KIND_DIR;
        ds->count = paths.n;
        ds->n_classes = (uint32_t) classes.n;
        ds->class_names = TAKE_PTR(classes.items);
        classes = (StringList) {};
        ds->paths = TAKE_PTR(paths.items);
        paths = (StringList) {};
        ds->labels = TAKE_PTR(labels);
        return 0;
}
