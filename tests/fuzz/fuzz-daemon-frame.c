/* SPDX-License-Identifier: MIT */
/* cvoptd's frame preprocessing on hostile camera buffers: MJPEG frames
 * (libturbojpeg, scaled decode) and raw frames whose size, stride and
 * bytesused the driver reported wrongly. The first byte picks the format,
 * the next four the claimed size. */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "preprocess.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static Preprocessor *gray, *rgb;
        static float values[3 * 28 * 28];
        static const CvoptInputSpec gray_spec = { .width = 28, .height = 28, .color = CVOPT_COLOR_GRAY,
                                                  .mean = { 0.5f, 0.5f, 0.5f }, .std = { 0.5f, 0.5f, 0.5f },
                                                  .resize = CVOPT_RESIZE_STRETCH };
        static const CvoptInputSpec rgb_spec = { .width = 28, .height = 28, .color = CVOPT_COLOR_RGB,
                                                 .mean = { 0.5f, 0.5f, 0.5f }, .std = { 0.5f, 0.5f, 0.5f },
                                                 .resize = CVOPT_RESIZE_CENTER_CROP };
        if (!gray && (preprocessor_new(&gray_spec, &gray) < 0 || preprocessor_new(&rgb_spec, &rgb) < 0))
                abort();
        if (size < 6)
                return 0;
        static const CameraFormat formats[] = { CAMERA_FORMAT_MJPEG, CAMERA_FORMAT_YUYV, CAMERA_FORMAT_NV12,
                                                CAMERA_FORMAT_GREY, CAMERA_FORMAT_RGB24 };
        Frame f = {
                .format = formats[data[0] % 5],
                /* Small claimed sizes, so the checks (not the allocator) are
                 * what stands between a lie and an out-of-bounds read. */
                .width = 1u + data[1] % 64u,
                .height = 1u + data[2] % 64u,
                .bytes_per_line = data[3] * 2u,
                .full_range = data[4] & 1,
                .truth = -1,
        };
        /* A private copy: the fuzzer's buffer is exactly size bytes, as a
         * driver's bytesused claims. */
        size_t n = size - 5;
        uint8_t *copy = malloc(n ? n : 1);
        memcpy(copy, data + 5, n);
        f.data = copy;
        f.bytes_used = (uint32_t) n;
        (void) preprocess_frame_float(data[4] & 2 ? rgb : gray, &f, values);
        free(copy);
        return 0;
}
