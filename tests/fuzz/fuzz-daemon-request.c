/* SPDX-License-Identifier: MIT */
/* cvoptd's request checks: any bytes a client sends as one line. */

#include <stdint.h>
#include <stdlib.h>

#include "daemon.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        json_t *req = NULL;
        const char *code = NULL;
        char message[512];

        if (protocol_parse_request((const char *) data, size, &req, &code, message, sizeof message) == 0) {
                json_t *image = json_object_get(req, "image");
                uint8_t *bytes = NULL;
                size_t n;
                if (json_is_string(image) &&
                    protocol_decode_base64(json_string_value(image), json_string_length(image), &bytes, &n) == 0)
                        free(bytes);
        } else if (!code)
                abort(); /* every rejection names its error code */
        json_decref(req);
        return 0;
}
