/* SPDX-License-Identifier: MIT */
#pragma once

/* Placement of activation tensors in one arena: two tensors may share
 * bytes when their lifetimes (first..last node that touches them) do not
 * overlap. */

#include <stddef.h>
#include <stdint.h>

typedef struct MemoryPlanItem {
        size_t size_bytes;
        uint32_t first; /* index of the node that writes it */
        uint32_t last;  /* index of the last node that reads it (or the end) */
        size_t offset;  /* set by memory_plan() */
} MemoryPlanItem;

/* 64 bytes: a cache line, and the widest vector load (AVX-512) the CPU
 * kernels issue, so every tensor starts aligned for them. */
#define MEMORY_PLAN_ALIGNMENT 64u

/* Sets every item's offset (a multiple of MEMORY_PLAN_ALIGNMENT) and the
 * arena size in *ret_total_bytes. Greedy by size, largest first, each put
 * at the lowest offset free over its lifetime: not optimal (that is NP-hard)
 * but within a few percent of the lower bound on CNNs, whose lifetimes are
 * short chains. 0, -ENOMEM, or -EOVERFLOW. */
int memory_plan(MemoryPlanItem *items, size_t n_items, size_t *ret_total_bytes);
