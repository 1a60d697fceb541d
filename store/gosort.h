/*
 * gosort.h — Go 1.19's sort.Sort (pattern-defeating quicksort) over an
 * abstract less/swap interface.
 *
 * Why: etcd 3.4 sorts range results with Go's sort.Sort, which is not
 * stable.  Elements that compare equal on the sort target (same version,
 * same create revision, same value, ...) come out in an order that depends
 * on the exact sequence of Less and Swap calls Go makes.  To answer ties
 * exactly as etcd 3.4.23 (built with Go 1.19) does, kvgate replays that
 * algorithm step for step: same pivot choices, same pattern breaking, same
 * insertion-sort thresholds, same heapsort fallback.  Any "equivalent"
 * sort (qsort, a stable sort) would order ties differently.
 *
 * Pure: no allocation, no globals; the recursion depth is O(log n).
 */
#ifndef KVGATE_GOSORT_H
#define KVGATE_GOSORT_H

#include <stdbool.h>

/* Go's sort.Interface minus Len.  Indices are Go ints (signed, 64-bit
 * here).  less(ctx, i, j): element i sorts strictly before element j.
 * For Go's sort.Reverse(x), pass a less that calls x's with i and j
 * exchanged. */
typedef bool (*gosort_less_fn)(void *ctx, long i, long j);
typedef void (*gosort_swap_fn)(void *ctx, long i, long j);

/* sort.Sort(data) for data.Len() == n: the same Less/Swap call sequence
 * as Go 1.19, hence the same final order, ties included. */
void gosort_sort(long n, gosort_less_fn less, gosort_swap_fn swap, void *ctx);

#endif
