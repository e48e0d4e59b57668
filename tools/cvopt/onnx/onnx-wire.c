/* SPDX-License-Identifier: MIT */
/* A nesting check on raw protobuf bytes, run before protobuf-c unpacks
 * them. protobuf-c recurses once per nested message and has no depth limit,
 * and onnx.proto is recursive (TypeProto.sequence_type.elem_type is again a
 * TypeProto; attributes hold graphs that hold nodes that hold attributes),
 * so a 1.5 MB file nesting 200000 TypeProtos overflows the stack. We cannot
 * tell a message from a byte string without the schema, so every
 * length-delimited field is tried as a message: if it parses, its content
 * counts one level deeper; if not, it was bytes. The work is bounded by the
 * input size times ONNX_MAX_NESTING. */
#include "cvopt/errors.h"
#include "macro.h"
#include "onnx-internal.h"

/* Real models nest about 7 levels (model, graph, value_info, type,
 * tensor_type, shape, dim) plus 4 per level of subgraph; 100 leaves room
 * for 20 levels of subgraphs and keeps the recursion a few KiB of stack. */
#define ONNX_MAX_NESTING 100

enum { WIRE_NOT_MESSAGE = 1 };

static bool read_varint(const uint8_t *p, size_t n, size_t *i, uint64_t *ret) {
        uint64_t v = 0;

        for (unsigned shift = 0; shift < 64; shift += 7) {
                uint8_t b;

                if (*i >= n)
                        return false;
                b = p[(*i)++];
                v |= (uint64_t) (b & 0x7f) << shift;
                if (!(b & 0x80)) {
                        *ret = v;
                        return true;
                }
        }
        return false;
}

/* 0 if p[0..n) parses as protobuf messages nested at most
 * ONNX_MAX_NESTING deep, WIRE_NOT_MESSAGE if it is not a message, -E2BIG if
 * it nests too deep. The scan errs towards calling bytes a message: it must
 * look into everything protobuf-c would recurse into, and it stops only
 * where protobuf-c would fail too (a cut varint or a length past the end). */
static int wire_scan(const uint8_t *p, size_t n, unsigned depth) {
        size_t i = 0;

        if (depth > ONNX_MAX_NESTING)
                return -E2BIG;
        while (i < n) {
                uint64_t key, value;
                int r;

                /* Field number 0 is invalid, but accepting it here only
                 * scans more: what protobuf-c rejects, we need not. */
                if (!read_varint(p, n, &i, &key))
                        return WIRE_NOT_MESSAGE;
                switch (key & 7) {
                case 0: /* varint */
                        if (!read_varint(p, n, &i, &value))
                                return WIRE_NOT_MESSAGE;
                        break;
                case 1: /* 64-bit */
                        if (n - i < 8)
                                return WIRE_NOT_MESSAGE;
                        i += 8;
                        break;
                case 5: /* 32-bit */
                        if (n - i < 4)
                                return WIRE_NOT_MESSAGE;
                        i += 4;
                        break;
                case 2: /* length-delimited: a message, string, bytes or packed array */
                        if (!read_varint(p, n, &i, &value) || value > n - i)
                                return WIRE_NOT_MESSAGE;
                        r = wire_scan(p + i, (size_t) value, depth + 1);
                        if (r < 0)
                                return r;
                        i += (size_t) value;
                        break;
                case 3: /* group start and end (deprecated, unused by ONNX): no payload */
                case 4:
                        break;
                default: /* wire types 6 and 7 do not exist */
                        return WIRE_NOT_MESSAGE;
                }
        }
        return 0;
}

int onnx_check_nesting(const void *data, size_t size, const char *name) {
        int r;

        if (size == 0)
                return 0;
        r = wire_scan(data, size, 0);
        if (r == -E2BIG)
                return cvopt_error_set(-CVOPT_E_FORMAT, "%s: messages nested more than %d deep", name,
                                       ONNX_MAX_NESTING);
        return 0; /* a top level that does not parse is for protobuf-c to report */
}
