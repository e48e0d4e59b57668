/* SPDX-License-Identifier: MIT */
/* Class labels from the ONNX metadata_props entry "labels": a JSON array of
 * strings (["cat", "dog"]) or a comma-separated list (cat,dog). A small
 * parser of our own: the optimizer links no JSON library, and this is the
 * one JSON value it reads. */
#include <stdio.h>

#include "cvopt/errors.h"
#include "macro.h"
#include "onnx-internal.h"

/* More classes than any classifier we serve has (ImageNet-21k has 21841);
 * the cap bounds what a hostile model can make us allocate. */
#define ONNX_MAX_LABELS 65536

typedef struct Labels {
        uint32_t count, cap;
        char **items;
} Labels;

static void labels_done(Labels *l) {
        for (uint32_t i = 0; i < l->count; i++)
                free(l->items[i]);
        free(l->items);
        *l = (Labels) {};
}

static int labels_add(Labels *l, char *item, const char *name) {
        if (l->count >= ONNX_MAX_LABELS) {
                free(item);
                return cvopt_error_set(-CVOPT_E_FORMAT, "%s: more than %d labels", name, ONNX_MAX_LABELS);
        }
        if (l->count == l->cap) {
                uint32_t cap = l->cap ? l->cap * 2 : 16;
                char **p = reallocarray(l->items, cap, sizeof(char *));

                if (!p) {
                        free(item);
                        return -ENOMEM;
                }
                l->items = p;
                l->cap = cap;
        }
        l->items[l->count++] = item;
        return 0;
}

static const char *skip_space(const char *p) {
        while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
                p++;
        return p;
}

static int hex4(const char *p, uint32_t *ret) {
        uint32_t v = 0;

        for (int i = 0; i < 4; i++) {
                char c = p[i];

                v <<= 4;
                if (c >= '0' && c <= '9')
                        v |= (uint32_t) (c - '0');
                else if (c >= 'a' && c <= 'f')
                        v |= (uint32_t) (c - 'a' + 10);
                else if (c >= 'A' && c <= 'F')
                        v |= (uint32_t) (c - 'A' + 10);
                else
                        return -1;
        }
        *ret = v;
        return 0;
}

static size_t utf8_put(char *out, uint32_t cp) {
        if (cp < 0x80) {
                out[0] = (char) cp;
                return 1;
        }
        if (cp < 0x800) {
                out[0] = (char) (0xc0 | (cp >> 6));
                out[1] = (char) (0x80 | (cp & 0x3f));
                return 2;
        }
        if (cp < 0x10000) {
                out[0] = (char) (0xe0 | (cp >> 12));
                out[1] = (char) (0x80 | ((cp >> 6) & 0x3f));
                out[2] = (char) (0x80 | (cp & 0x3f));
                return 3;
        }
        out[0] = (char) (0xf0 | (cp >> 18));
        out[1] = (char) (0x80 | ((cp >> 12) & 0x3f));
        out[2] = (char) (0x80 | ((cp >> 6) & 0x3f));
        out[3] = (char) (0x80 | (cp & 0x3f));
        return 4;
}

/* Parses the JSON string starting at *p (at the opening quote). The
 * decoded string is never longer than the escaped one, so a buffer of the
 * remaining length holds it. */
static int json_string(const char **p, char **ret) {
        const char *s = *p + 1;
        _cleanup_free_ char *out = malloc(strlen(s) + 1);
        size_t n = 0;

        if (!out)
                return -ENOMEM;
        for (;;) {
                char c = *s++;
                uint32_t cp, low;

                if (c == '"')
                        break;
                if (c == 0 || (unsigned char) c < 0x20)
                        return -EINVAL;
                if (c != '\\') {
                        out[n++] = c;
                        continue;
                }
                c = *s++;
                switch (c) {
                case '"':
                case '\\':
                case '/':
                        out[n++] = c;
                        break;
                case 'b':
                        out[n++] = '\b';
                        break;
                case 'f':
                        out[n++] = '\f';
                        break;
                case 'n':
                        out[n++] = '\n';
                        break;
                case 'r':
                        out[n++] = '\r';
                        break;
                case 't':
                        out[n++] = '\t';
                        break;
                case 'u':
                        if (hex4(s, &cp) < 0)
                                return -EINVAL;
                        s += 4;
                        if (cp >= 0xd800 && cp < 0xdc00) { /* surrogate pair: 12 escaped bytes, 4 decoded */
                                if (s[0] != '\\' || s[1] != 'u' || hex4(s + 2, &low) < 0 || low < 0xdc00 ||
                                    low > 0xdfff)
                                        return -EINVAL;
                                s += 6;
                                cp = 0x10000 + ((cp - 0xd800) << 10) + (low - 0xdc00);
                        } else if ((cp >= 0xdc00 && cp <= 0xdfff) || cp == 0)
                                return -EINVAL;
                        n += utf8_put(out + n, cp);
                        break;
                default:
                        return -EINVAL;
                }
        }
        out[n] = 0;
        *p = s;
        *ret = TAKE_PTR(out);
        return 0;
}

static int parse_json(const char *value, const char *name, Labels *l) {
        const char *p = skip_space(value) + 1; /* past '[' */
        int r;

        p = skip_space(p);
        if (*p == ']')
                return *skip_space(p + 1) ? cvopt_error_set(-CVOPT_E_FORMAT, "%s: labels: text after ']'", name) : 0;
        for (;;) {
                char *item;

                if (*p != '"')
                        return cvopt_error_set(-CVOPT_E_FORMAT, "%s: labels: expected a string at offset %zu", name,
                                               (size_t) (p - value));
                r = json_string(&p, &item);
                if (r == -ENOMEM)
                        return r;
                if (r < 0)
                        return cvopt_error_set(-CVOPT_E_FORMAT, "%s: labels: invalid JSON string at label %u", name,
                                               l->count);
                r = labels_add(l, item, name);
                if (r < 0)
                        return r;
                p = skip_space(p);
                if (*p == ',') {
                        p = skip_space(p + 1);
                        continue;
                }
                if (*p == ']' && !*skip_space(p + 1))
                        return 0;
                return cvopt_error_set(-CVOPT_E_FORMAT, "%s: labels: expected ',' or a final ']' at offset %zu",
                                       name, (size_t) (p - value));
        }
}

static int parse_csv(const char *value, const char *name, Labels *l) {
        const char *p = value;

        for (;;) {
                const char *end = strchrnul(p, ',');
                const char *b = p, *e = end;
                char *item;
                int r;

                while (b < e && (*b == ' ' || *b == '\t'))
                        b++;
                while (e > b && (e[-1] == ' ' || e[-1] == '\t'))
                        e--;
                item = strndup(b, (size_t) (e - b));
                if (!item)
                        return -ENOMEM;
                r = labels_add(l, item, name);
                if (r < 0)
                        return r;
                if (!*end)
                        return 0;
                p = end + 1;
        }
}

int onnx_labels_parse(const char *value, const char *name, uint32_t *ret_count, char ***ret_labels) {
        Labels l = {};
        int r;

        if (!*skip_space(value)) {
                *ret_count = 0;
                *ret_labels = NULL;
                return 0;
        }
        if (*skip_space(value) == '[')
                r = parse_json(value, name, &l);
        else
                r = parse_csv(value, name, &l);
        if (r < 0) {
                labels_done(&l);
                return r;
        }
        *ret_count = l.count;
        *ret_labels = l.items;
        return 0;
}
