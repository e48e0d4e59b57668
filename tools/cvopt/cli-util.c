/* SPDX-License-Identifier: MIT */
/* Small helpers every cvopt command uses: error and usage messages, file
 * reading, labels, graph statistics. */
#include <errno.h>
#include <stdarg.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"

void log_error(int r, const char *context) {
        const char *detail = cvopt_error_detail();

        if (detail && *detail)
                fprintf(stderr, "cvopt: %s\n", detail);
        else if (context)
                fprintf(stderr, "cvopt: %s: %s\n", context, r < 0 ? cvopt_strerror(r) : "failed");
        else
                fprintf(stderr, "cvopt: %s\n", cvopt_strerror(r));
}

int usage_error(const char *command, const char *format, ...) {
        va_list ap;

        fputs("cvopt: ", stderr);
        va_start(ap, format);
        vfprintf(stderr, format, ap);
        va_end(ap);
        fprintf(stderr, "\nTry 'cvopt %s --help'.\n", command);
        return EXIT_USAGE;
}

int usage_hint(const char *command) {
        fprintf(stderr, "Try 'cvopt %s --help'.\n", command);
        return EXIT_USAGE;
}

int read_file_full(const char *path, size_t max_bytes, void **ret_data, size_t *ret_size) {
        _cleanup_(fclosep) FILE *f = NULL;
        _cleanup_free_ void *data = NULL;
        struct stat st;
        size_t size;

        f = fopen(path, "re");
        if (!f)
                return cvopt_error_set(-errno, "%s: %s", path, strerror(errno));
        if (fstat(fileno(f), &st) < 0)
                return cvopt_error_set(-errno, "%s: %s", path, strerror(errno));
        if (!S_ISREG(st.st_mode))
                return cvopt_error_set(-EINVAL, "%s: not a regular file", path);
        if ((uint64_t) st.st_size > max_bytes)
                return cvopt_error_set(-EFBIG, "%s: larger than %zu bytes", path, max_bytes);
        size = (size_t) st.st_size;
        data = malloc(size ? size : 1);
        if (!data)
                return -ENOMEM;
        if (fread(data, 1, size, f) != size)
                return cvopt_error_set(-EIO, "%s: short read", path);
        *ret_data = TAKE_PTR(data);
        *ret_size = size;
        return 0;
}

const char *model_label(const CvoptModel *m, uint32_t i, char *buf, size_t size) {
        if (i < m->n_labels && m->labels[i] && m->labels[i][0])
                return m->labels[i];
        snprintf(buf, size, "class %u", i);
        return buf;
}

void graph_stats(const CvoptGraph *g, GraphStats *ret) {
        GraphStats s = {};

        for (uint32_t i = 0; i < g->n_tensors; i++) {
                const CvoptTensor *t = &g->tensors[i];
                int64_t count;

                if (!t->is_constant)
                        continue;
                count = cvopt_tensor_count(t);
                if (count > 0)
                        s.n_params += (uint64_t) count;
                s.params_bytes += cvopt_tensor_bytes(t);
        }
        *ret = s;
}

int parse_count(const char *arg, unsigned long max, unsigned long *ret) {
        char *end;
        unsigned long v;

        errno = 0;
        v = strtoul(arg, &end, 10);
        if (errno || *end || end == arg || v > max)
                return -EINVAL;
        *ret = v;
        return 0;
}
