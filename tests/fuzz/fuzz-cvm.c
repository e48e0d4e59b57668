/* SPDX-License-Identifier: MIT */
/* libFuzzer target for the .cvm reader: any input must be refused cleanly or
 * loaded into a model that frees without leaks. A loaded model is written back
 * and read again, which must succeed: the writer refuses nothing the reader
 * accepted, and the reader accepts everything the writer writes.
 *
 * Random mutations almost never keep the CRCs right, so they would only ever
 * exercise the CRC check. Each input is therefore loaded twice: as it is, and
 * with every CRC it names recomputed, which lets the mutations reach the
 * section parsers behind the checksums. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cvopt/cvopt.h"
#include "format/cvm-layout.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void load_check(const uint8_t *data, size_t size) {
        CvoptModel *m = NULL, *again = NULL;
        uint8_t *out = NULL;
        size_t out_size;

        if (cvopt_model_load_buffer(data, size, &m) < 0)
                return;
        if (cvm_write_buffer(m, &out, &out_size) < 0)
                abort();
        if (cvopt_model_load_buffer(out, out_size, &again) < 0)
                abort();
        free(out);
        cvopt_model_free(again);
        cvopt_model_free(m);
}

/* Recomputes the section and header CRCs of a copy, as far as the (hostile)
 * header and table allow. */
static void fix_crcs(uint8_t *buf, size_t size) {
        uint32_t n_sections;
        size_t table_end;

        if (size < CVM_HEADER_SIZE)
                return;
        n_sections = cvm_get_u32(buf + CVM_HDR_N_SECTIONS);
        if (n_sections > CVM_MAX_SECTIONS)
                return;
        table_end = CVM_HEADER_SIZE + (size_t) n_sections * CVM_SECTION_ENTRY_SIZE;
        if (table_end > size)
                return;
        for (uint32_t s = 0; s < n_sections; s++) {
                uint8_t *e = buf + CVM_HEADER_SIZE + (size_t) s * CVM_SECTION_ENTRY_SIZE;
                uint64_t offset = cvm_get_u64(e + CVM_SEC_OFFSET), len = cvm_get_u64(e + CVM_SEC_SIZE);

                if (offset <= size && len <= size - offset)
                        cvm_put_u32(e + CVM_SEC_CRC, cvm_crc32(buf + offset, len));
        }
        cvm_put_u32(buf + CVM_HDR_CRC, 0);
        cvm_put_u32(buf + CVM_HDR_CRC, cvm_crc32(buf, table_end));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        uint8_t *copy;

        load_check(data, size);
        copy = malloc(size ? size : 1);
        if (!copy)
                return 0;
        memcpy(copy, data, size);
        fix_crcs(copy, size);
        load_check(copy, size);
        free(copy);
        return 0;
}
