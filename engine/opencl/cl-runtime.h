/* SPDX-License-Identifier: MIT */
#pragma once

/* One OpenCL device for one session: platform/device selection, the
 * context, one in-order command queue, and the program of every embedded
 * kernel built once (or loaded from the on-disk cache). Also the fault
 * injection every CL call of the backend goes through, so tests can make
 * any of them fail (CVOPT_CL_FAULT, docs/opencl.md). */

#define CL_TARGET_OPENCL_VERSION 120
#include <CL/cl.h>
#include <stdbool.h>
#include <stdint.h>

/* CVOPT_CL_FAULT=<call>[:after-N][:times-M]: the named call fails (as
 * CL_OUT_OF_RESOURCES) once it has been made N times (default 0) in this
 * runtime, M times (default: for ever). <call> is a CL function name, or
 * "wrong-output": a downloaded output gets one bit flipped (a device that
 * computes wrong results without reporting an error). */
typedef struct ClFault {
        char call[64];
        long after;
        long times; /* < 0: no limit */
        long seen;
} ClFault;

typedef struct ClRuntime {
        cl_platform_id platform;
        cl_device_id device;
        cl_context context;
        cl_command_queue queue;
        cl_program program;
        char device_name[256];
        char driver_version[128];
        char platform_name[128];
        cl_device_type device_type;
        size_t max_work_group_size;
        ClFault fault;
        char cache_dir[4096]; /* "" when the cache is disabled */
        uint64_t program_key; /* device, driver, source, options: keys every cache entry */
        bool program_from_cache;
        bool cache_entry_discarded; /* a corrupt or unusable entry was found and rebuilt */
} ClRuntime;

/* device_spec: NULL, "" or "auto" (the first GPU, else accelerator, else
 * any device), a number (index in the list of all devices of all
 * platforms, as `clinfo -l` orders them), or a substring of the device or
 * platform name (case-insensitive). cache_dir: NULL for the default
 * (CVOPT_CACHE_DIR, else $XDG_CACHE_HOME/cvopt, else ~/.cache/cvopt), ""
 * to disable. Fails with -CVOPT_E_BACKEND and detail naming the reason. */
int cl_runtime_open(const char *device_spec, const char *cache_dir, ClRuntime **ret_runtime);
ClRuntime *cl_runtime_free(ClRuntime *rt);

/* Whether the fault injected for call triggers now (counts the call). */
bool cl_fault_hit(ClRuntime *rt, const char *call);

/* "CL_OUT_OF_RESOURCES" ... for detail messages. */
const char *cl_error_name(cl_int err);

/* A checked call: err = the injected fault or the call's result. */
#define CL_CALL(rt, name, ...) (cl_fault_hit((rt), #name) ? CL_OUT_OF_RESOURCES : name(__VA_ARGS__))
