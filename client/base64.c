/* SPDX-License-Identifier: MIT */
/* Base64 encoding (RFC 4648, standard alphabet, padded) for classify
 * requests, which carry an image file in a JSON string. */

#include <stdint.h>
#include <stdlib.h>

#include "client-internal.h"

char *client_base64_encode(const void *data, size_t size) {
        static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        const uint8_t *in = data;

        if (size > (SIZE_MAX - 1) / 4 * 3 - 3)
                return NULL;
        size_t out_size = (size + 2) / 3 * 4;
        char *out = malloc(out_size + 1);
        if (!out)
                return NULL;
        char *o = out;
        size_t i = 0;
        for (; i + 3 <= size; i += 3) {
                uint32_t v = (uint32_t) in[i] << 16 | (uint32_t) in[i + 1] << 8 | in[i + 2];
                *o++ = alphabet[v >> 18 & 63];
                *o++ = alphabet[v >> 12 & 63];
                *o++ = alphabet[v >> 6 & 63];
                *o++ = alphabet[v & 63];
        }
        if (i < size) {
                uint32_t v = (uint32_t) in[i] << 16 | (i + 1 < size ? (uint32_t) in[i + 1] << 8 : 0);
                *o++ = alphabet[v >> 18 & 63];
                *o++ = alphabet[v >> 12 & 63];
                *o++ = i + 1 < size ? alphabet[v >> 6 & 63] : '=';
                *o++ = '=';
        }
        *o = 0;
        return out;
}
