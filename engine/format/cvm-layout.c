/* SPDX-License-Identifier: MIT */
/* Small pieces shared by the .cvm reader and writer. */
#include <stdio.h>
#include <zlib.h>

#include "format/cvm-layout.h"
#include "macro.h"

const char *cvm_section_name(uint32_t type) {
        static const char *const names[_CVM_SECTION_MAX] = {
                [CVM_SECTION_STRINGS] = "strings",     [CVM_SECTION_INPUT] = "input",
                [CVM_SECTION_LABELS] = "labels",       [CVM_SECTION_PROVENANCE] = "provenance",
                [CVM_SECTION_TENSORS] = "tensors",     [CVM_SECTION_NODES] = "nodes",
                [CVM_SECTION_GRAPH_IO] = "graph_io",   [CVM_SECTION_DATA] = "data",
        };
        if (type == 0 || type >= _CVM_SECTION_MAX)
                return "unknown";
        return names[type];
}

uint32_t cvm_crc32_update(uint32_t start, const uint8_t *data, uint64_t size) {
        /* 1 GiB pieces: well inside zlib's uInt length. */
        const uint64_t piece = UINT64_C(1) << 30;
        uLong crc = start;

        while (size > 0) {
                uint64_t n = MIN(size, piece);

                crc = crc32(crc, data, (uInt) n);
                data += n;
                size -= n;
        }
        return (uint32_t) crc;
}

uint32_t cvm_crc32(const uint8_t *data, uint64_t size) {
        return cvm_crc32_update((uint32_t) crc32(0L, Z_NULL, 0), data, size);
}

uint64_t cvm_hash_fnv1a64(const void *data, size_t size) {
        const uint8_t *p = data;
        uint64_t h = UINT64_C(0xcbf29ce484222325);

        for (size_t i = 0; i < size; i++) {
                h ^= p[i];
                h *= UINT64_C(0x100000001b3);
        }
        return h;
}

void cvm_format_id(const uint8_t *file, size_t table_end, char ret_id[17]) {
        snprintf(ret_id, 17, "%016llx", (unsigned long long) cvm_hash_fnv1a64(file, table_end));
}
