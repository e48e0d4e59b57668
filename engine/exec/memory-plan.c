/* SPDX-License-Identifier: MIT */
#include "exec/memory-plan.h"
#include "macro.h"

static bool lifetimes_overlap(const MemoryPlanItem *a, const MemoryPlanItem *b) {
        return a->first <= b->last && b->first <= a->last;
}

/* Sorting indices by a key in another array needs qsort_r; a stable
 * insertion sort is as short, gives the same plan on every libc (ties keep
 * node order), and the arrays hold a few hundred tensors. */
static void order_by_size_desc(const MemoryPlanItem *items, size_t *order, size_t n) {
        for (size_t i = 0; i < n; i++) {
                size_t v = order[i], j = i;

                while (j > 0 && items[order[j - 1]].size_bytes < items[v].size_bytes) {
                        order[j] = order[j - 1];
                        j--;
                }
                order[j] = v;
        }
}

static void order_by_offset(const MemoryPlanItem *items, size_t *order, size_t n) {
        for (size_t i = 0; i < n; i++) {
                size_t v = order[i], j = i;

                while (j > 0 && items[order[j - 1]].offset > items[v].offset) {
                        order[j] = order[j - 1];
                        j--;
                }
                order[j] = v;
        }
}

int memory_plan(MemoryPlanItem *items, size_t n_items, size_t *ret_total_bytes) {
        _cleanup_free_ size_t *order = calloc(MAX(n_items, 1u), sizeof(size_t));
        _cleanup_free_ size_t *conflicts = calloc(MAX(n_items, 1u), sizeof(size_t));
        _cleanup_free_ size_t *sizes = calloc(MAX(n_items, 1u), sizeof(size_t));
        size_t total = 0;

        if (!order || !conflicts || !sizes)
                return -ENOMEM;
        for (size_t i = 0; i < n_items; i++) {
                if (items[i].size_bytes > SIZE_MAX / 2)
                        return -EOVERFLOW;
                sizes[i] = ALIGN_TO(items[i].size_bytes, MEMORY_PLAN_ALIGNMENT);
                order[i] = i;
        }
        order_by_size_desc(items, order, n_items);

        for (size_t placed = 0; placed < n_items; placed++) {
                size_t i = order[placed], n_conflicts = 0, offset = 0;

                /* Items placed before this one that are alive at the same time. */
                for (size_t p = 0; p < placed; p++)
                        if (sizes[order[p]] > 0 && lifetimes_overlap(&items[i], &items[order[p]]))
                                conflicts[n_conflicts++] = order[p];
                order_by_offset(items, conflicts, n_conflicts);
                for (size_t c = 0; c < n_conflicts; c++) {
                        const MemoryPlanItem *other = &items[conflicts[c]];

                        if (offset + sizes[i] <= other->offset)
                                break; /* fits in the gap below other */
                        offset = MAX(offset, other->offset + sizes[conflicts[c]]);
                }
                items[i].offset = offset;
                if (size_add_overflow(offset, sizes[i], &offset))
                        return -EOVERFLOW;
                total = MAX(total, offset);
        }
        *ret_total_bytes = total;
        return 0;
}
