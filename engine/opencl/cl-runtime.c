/* SPDX-License-Identifier: MIT */
/* Device selection, context, queue and program for one session. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cvopt/errors.h"
#include "macro.h"
#include "opencl/cl-cache.h"
#include "opencl/cl-runtime.h"

extern const char cvopt_cl_source[];
extern const size_t cvopt_cl_source_size;

/* No -cl-fast-relaxed-math or -cl-mad-enable: Quantize and float-output
 * QConv/QGemm must round exactly as the CPU does. */
#define BUILD_OPTIONS "-cl-std=CL1.2"

/* Enough for any machine we know (PoCL + one GPU ICD lists 2). */
#define MAX_PLATFORMS 16
#define MAX_DEVICES 64

const char *cl_error_name(cl_int err) {
        switch (err) {
        case CL_SUCCESS: return "CL_SUCCESS";
        case CL_DEVICE_NOT_FOUND: return "CL_DEVICE_NOT_FOUND";
        case CL_DEVICE_NOT_AVAILABLE: return "CL_DEVICE_NOT_AVAILABLE";
        case CL_COMPILER_NOT_AVAILABLE: return "CL_COMPILER_NOT_AVAILABLE";
        case CL_MEM_OBJECT_ALLOCATION_FAILURE: return "CL_MEM_OBJECT_ALLOCATION_FAILURE";
        case CL_OUT_OF_RESOURCES: return "CL_OUT_OF_RESOURCES";
        case CL_OUT_OF_HOST_MEMORY: return "CL_OUT_OF_HOST_MEMORY";
        case CL_BUILD_PROGRAM_FAILURE: return "CL_BUILD_PROGRAM_FAILURE";
        case CL_INVALID_VALUE: return "CL_INVALID_VALUE";
        case CL_INVALID_PLATFORM: return "CL_INVALID_PLATFORM";
        case CL_INVALID_DEVICE: return "CL_INVALID_DEVICE";
        case CL_INVALID_BINARY: return "CL_INVALID_BINARY";
        case CL_INVALID_BUILD_OPTIONS: return "CL_INVALID_BUILD_OPTIONS";
        case CL_INVALID_PROGRAM_EXECUTABLE: return "CL_INVALID_PROGRAM_EXECUTABLE";
        case CL_INVALID_KERNEL_NAME: return "CL_INVALID_KERNEL_NAME";
        case CL_INVALID_KERNEL_ARGS: return "CL_INVALID_KERNEL_ARGS";
        case CL_INVALID_WORK_GROUP_SIZE: return "CL_INVALID_WORK_GROUP_SIZE";
        case CL_INVALID_BUFFER_SIZE: return "CL_INVALID_BUFFER_SIZE";
        case CL_INVALID_MEM_OBJECT: return "CL_INVALID_MEM_OBJECT";
        case CL_INVALID_COMMAND_QUEUE: return "CL_INVALID_COMMAND_QUEUE";
        case -1001: return "CL_PLATFORM_NOT_FOUND_KHR";
        default: return "CL error";
        }
}

static long fault_number(const char *text, const char *prefix) {
        size_t length = strlen(prefix);
        char *end;
        long n;

        if (strncmp(text, prefix, length) == 0)
                text += length;
        n = strtol(text, &end, 10);
        /* A malformed count means 0: a test that mistypes it still sees a
         * failure rather than none. */
        return (*end == '\0' || *end == ':') && n >= 0 ? n : 0;
}

static void fault_parse(ClFault *f) {
        const char *spec = getenv("CVOPT_CL_FAULT"), *colon;

        *f = (ClFault) { .after = 0, .times = -1 };
        if (!spec || !spec[0])
                return;
        colon = strchr(spec, ':');
        snprintf(f->call, sizeof(f->call), "%.*s", (int) (colon ? (size_t) (colon - spec) : strlen(spec)), spec);
        while (colon) {
                const char *field = colon + 1;

                if (strncmp(field, "times-", 6) == 0)
                        f->times = fault_number(field, "times-");
                else
                        f->after = fault_number(field, "after-");
                colon = strchr(field, ':');
        }
}

bool cl_fault_hit(ClRuntime *rt, const char *call) {
        long n;

        if (!rt || !rt->fault.call[0] || !streq(rt->fault.call, call))
                return false;
        n = rt->fault.seen++;
        return n >= rt->fault.after && (rt->fault.times < 0 || n < rt->fault.after + rt->fault.times);
}

ClRuntime *cl_runtime_free(ClRuntime *rt) {
        if (!rt)
                return NULL;
        if (rt->program)
                clReleaseProgram(rt->program);
        if (rt->queue)
                clReleaseCommandQueue(rt->queue);
        if (rt->context)
                clReleaseContext(rt->context);
        free(rt);
        return NULL;
}

DEFINE_TRIVIAL_CLEANUP_FUNC(ClRuntime *, cl_runtime_free);

static bool contains_nocase(const char *haystack, const char *needle) {
        size_t n = strlen(needle);

        for (; *haystack; haystack++)
                if (strncasecmp(haystack, needle, n) == 0)
                        return true;
        return n == 0;
}

static bool is_number(const char *s) {
        if (!*s)
                return false;
        for (; *s; s++)
                if (!isdigit((unsigned char) *s))
                        return false;
        return true;
}

static int runtime_select_device(ClRuntime *rt, const char *spec) {
        cl_platform_id platforms[MAX_PLATFORMS];
        cl_uint n_platforms = 0;
        cl_int err;
        struct {
                cl_platform_id platform;
                cl_device_id device;
                cl_device_type type;
                char name[256], platform_name[128];
        } found[MAX_DEVICES];
        size_t n_found = 0, pick = SIZE_MAX;
        bool automatic = !spec || !spec[0] || streq(spec, "auto");

        err = CL_CALL(rt, clGetPlatformIDs, MAX_PLATFORMS, platforms, &n_platforms);
        if (err != CL_SUCCESS || n_platforms == 0)
                return cvopt_error_set(-CVOPT_E_BACKEND, "no OpenCL platform (%s): is an ICD installed?",
                                       err != CL_SUCCESS ? cl_error_name(err) : "none listed");
        for (cl_uint p = 0; p < MIN(n_platforms, (cl_uint) MAX_PLATFORMS); p++) {
                cl_device_id devices[MAX_DEVICES];
                cl_uint n_devices = 0;

                if (CL_CALL(rt, clGetDeviceIDs, platforms[p], CL_DEVICE_TYPE_ALL, MAX_DEVICES, devices, &n_devices) !=
                    CL_SUCCESS)
                        continue;
                for (cl_uint d = 0; d < MIN(n_devices, (cl_uint) MAX_DEVICES) && n_found < MAX_DEVICES; d++) {
                        found[n_found].platform = platforms[p];
                        found[n_found].device = devices[d];
                        found[n_found].name[0] = found[n_found].platform_name[0] = '\0';
                        clGetDeviceInfo(devices[d], CL_DEVICE_TYPE, sizeof(cl_device_type), &found[n_found].type, NULL);
                        clGetDeviceInfo(devices[d], CL_DEVICE_NAME, sizeof(found[n_found].name) - 1,
                                        found[n_found].name, NULL);
                        clGetPlatformInfo(platforms[p], CL_PLATFORM_NAME, sizeof(found[n_found].platform_name) - 1,
                                          found[n_found].platform_name, NULL);
                        n_found++;
                }
        }
        if (n_found == 0)
                return cvopt_error_set(-CVOPT_E_BACKEND, "no OpenCL device on %u platform(s)", n_platforms);

        if (automatic) {
                /* GPUs first, then accelerators, then anything (PoCL's CPU). */
                static const cl_device_type preference[] = { CL_DEVICE_TYPE_GPU, CL_DEVICE_TYPE_ACCELERATOR,
                                                             CL_DEVICE_TYPE_ALL };
                for (size_t t = 0; t < ELEMENTSOF(preference) && pick == SIZE_MAX; t++)
                        for (size_t i = 0; i < n_found && pick == SIZE_MAX; i++)
                                if (found[i].type & preference[t])
                                        pick = i;
        } else if (is_number(spec)) {
                unsigned long index = strtoul(spec, NULL, 10);

                if (index >= n_found)
                        return cvopt_error_set(-CVOPT_E_BACKEND, "OpenCL device %lu requested, %zu present", index,
                                               n_found);
                pick = index;
        } else {
                for (size_t i = 0; i < n_found && pick == SIZE_MAX; i++)
                        if (contains_nocase(found[i].name, spec) || contains_nocase(found[i].platform_name, spec))
                                pick = i;
                if (pick == SIZE_MAX)
                        return cvopt_error_set(-CVOPT_E_BACKEND, "no OpenCL device matches '%s' (first: '%s')", spec,
                                               found[0].name);
        }
        rt->platform = found[pick].platform;
        rt->device = found[pick].device;
        rt->device_type = found[pick].type;
        snprintf(rt->device_name, sizeof(rt->device_name), "%s", found[pick].name);
        snprintf(rt->platform_name, sizeof(rt->platform_name), "%s", found[pick].platform_name);
        clGetDeviceInfo(rt->device, CL_DRIVER_VERSION, sizeof(rt->driver_version) - 1, rt->driver_version, NULL);
        clGetDeviceInfo(rt->device, CL_DEVICE_MAX_WORK_GROUP_SIZE, sizeof(size_t), &rt->max_work_group_size, NULL);
        return 0;
}

static uint64_t program_key(const ClRuntime *rt) {
        uint64_t key = 0;

        key = cl_hash(key, rt->platform_name, strlen(rt->platform_name) + 1);
        key = cl_hash(key, rt->device_name, strlen(rt->device_name) + 1);
        key = cl_hash(key, rt->driver_version, strlen(rt->driver_version) + 1);
        key = cl_hash(key, BUILD_OPTIONS, sizeof(BUILD_OPTIONS));
        return cl_hash(key, cvopt_cl_source, cvopt_cl_source_size);
}

/* Builds from a cached binary; false (and the entry removed) if there is
 * none or the driver refuses it. */
static bool runtime_build_from_cache(ClRuntime *rt, uint64_t key) {
        _cleanup_free_ void *binary = NULL;
        size_t size = 0;
        cl_int err, status = CL_SUCCESS;
        cl_program program;
        int r;

        r = cl_cache_load(rt->cache_dir, "program", key, &binary, &size);
        if (r == -CVOPT_E_CRC)
                rt->cache_entry_discarded = true;
        if (r < 0)
                return false;
        program = clCreateProgramWithBinary(rt->context, 1, &rt->device, &size,
                                            (const unsigned char *[]) { binary }, &status, &err);
        if (err == CL_SUCCESS && status == CL_SUCCESS &&
            CL_CALL(rt, clBuildProgram, program, 1, &rt->device, BUILD_OPTIONS, NULL, NULL) == CL_SUCCESS) {
                rt->program = program;
                rt->program_from_cache = true;
                return true;
        }
        if (err == CL_SUCCESS)
                clReleaseProgram(program);
        cl_cache_remove(rt->cache_dir, "program", key);
        rt->cache_entry_discarded = true;
        return false;
}

static int runtime_build_program(ClRuntime *rt) {
        const uint64_t key = rt->program_key = program_key(rt);
        const char *source = cvopt_cl_source;
        size_t length = cvopt_cl_source_size;
        cl_int err;

        if (runtime_build_from_cache(rt, key))
                return 0;
        rt->program = clCreateProgramWithSource(rt->context, 1, &source, &length, &err);
        if (err != CL_SUCCESS) {
                rt->program = NULL;
                return cvopt_error_set(-CVOPT_E_BACKEND, "clCreateProgramWithSource: %s", cl_error_name(err));
        }
        err = CL_CALL(rt, clBuildProgram, rt->program, 1, &rt->device, BUILD_OPTIONS, NULL, NULL);
        if (err != CL_SUCCESS) {
                char log[512] = "";

                clGetProgramBuildInfo(rt->program, rt->device, CL_PROGRAM_BUILD_LOG, sizeof(log) - 1, log, NULL);
                return cvopt_error_set(-CVOPT_E_BACKEND, "building the OpenCL kernels for '%s' failed (%s): %s",
                                       rt->device_name, cl_error_name(err), log[0] ? log : "no build log");
        }

        /* Cache the binary; failing to is harmless (next start recompiles). */
        size_t binary_size = 0;
        if (clGetProgramInfo(rt->program, CL_PROGRAM_BINARY_SIZES, sizeof(size_t), &binary_size, NULL) == CL_SUCCESS &&
            binary_size > 0) {
                _cleanup_free_ unsigned char *binary = malloc(binary_size);

                if (binary &&
                    clGetProgramInfo(rt->program, CL_PROGRAM_BINARIES, sizeof(unsigned char *),
                                     (unsigned char *[]) { binary }, NULL) == CL_SUCCESS)
                        (void) cl_cache_store(rt->cache_dir, "program", key, binary, binary_size);
        }
        return 0;
}

int cl_runtime_open(const char *device_spec, const char *cache_dir, ClRuntime **ret_runtime) {
        _cleanup_(cl_runtime_freep) ClRuntime *rt = calloc(1, sizeof(ClRuntime));
        cl_int err;
        int r;

        if (!rt)
                return -ENOMEM;
        fault_parse(&rt->fault);
        cl_cache_dir_resolve(cache_dir, rt->cache_dir, sizeof(rt->cache_dir));
        r = runtime_select_device(rt, device_spec);
        if (r < 0)
                return r;
        rt->context = clCreateContext(NULL, 1, &rt->device, NULL, NULL, &err);
        if (cl_fault_hit(rt, "clCreateContext") && err == CL_SUCCESS) {
                clReleaseContext(rt->context);
                err = CL_OUT_OF_RESOURCES;
        }
        if (err != CL_SUCCESS) {
                rt->context = NULL;
                return cvopt_error_set(-CVOPT_E_BACKEND, "clCreateContext on '%s': %s", rt->device_name,
                                       cl_error_name(err));
        }
        /* Profiling is always on: events then time each kernel for
         * profiled sessions and for work-group tuning, at no measurable
         * cost on the devices we know. */
        rt->queue = clCreateCommandQueue(rt->context, rt->device, CL_QUEUE_PROFILING_ENABLE, &err);
        if (err != CL_SUCCESS) {
                rt->queue = NULL;
                return cvopt_error_set(-CVOPT_E_BACKEND, "clCreateCommandQueue on '%s': %s", rt->device_name,
                                       cl_error_name(err));
        }
        r = runtime_build_program(rt);
        if (r < 0)
                return r;
        *ret_runtime = TAKE_PTR(rt);
        return 0;
}
