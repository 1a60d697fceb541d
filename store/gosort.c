/*
 * gosort.c — Go 1.19's sort.Sort, replayed in C (see gosort.h for why).
 *
 * Go 1.19 replaced the old Bentley-McIlroy quicksort of sort.Sort with
 * pattern-defeating quicksort (pdqsort, Orson Peters 2021, without the
 * BlockQuicksort part), in src/sort/zsortinterface.go.  The shape:
 *
 *   sort(n):  n <= 1: done.  Else pdqsort(0, n, limit = bits.Len(n)).
 *   pdqsort(a, b, limit), a loop:
 *     - b-a <= 12: insertion sort, done.  limit == 0: heapsort, done.
 *     - last partition unbalanced: breakPatterns (3 swaps driven by an
 *       xorshift generator seeded with the length: deterministic), limit--.
 *     - choosePivot: the middle-ish element for < 8 elements, median of
 *       three for < 50, Tukey's ninther above; counting the swaps the
 *       medians needed gives a hint: 0 = looks increasing, 12 = looks
 *       decreasing (then the range is reversed and the pivot index mirrored).
 *     - balanced and already partitioned last time and increasing hint:
 *       partialInsertionSort (at most 5 fix-ups) may finish the range.
 *     - the element before the range is not less than the pivot: the range
 *       holds many copies of it; partitionEqual splits off the equal ones
 *       and the loop continues with the greater ones.
 *     - else partition, recurse into the smaller side, loop on the larger;
 *       a side shorter than length/8 marks the partition unbalanced.
 *
 * Every comparison and swap below happens in the same order as in Go, so
 * equal elements end where Go leaves them.  Keep it that way: a different
 * threshold, pivot sample or xorshift shift changes tie orders (the unit
 * test's etcd goldens catch those).  Go's loop bounds are kept even where
 * they look odd (partialInsertionSort's leftward shift runs down to index 1,
 * not a+1; harmless, since nothing left of a is greater).  Arithmetic is on
 * long (Go's int on 64-bit); the xorshift state and modulus are unsigned
 * 64-bit like Go's uint64/uint.
 */
#include "gosort.h"

#include <stdint.h>

enum { GOSORT_MAX_INSERTION = 12, GOSORT_SHORTEST_NINTHER = 50, GOSORT_MAX_SWAPS = 4 * 3,
       GOSORT_PIS_MAX_STEPS = 5, GOSORT_PIS_SHORTEST_SHIFTING = 50 };

typedef enum { HINT_UNKNOWN = 0, HINT_INCREASING, HINT_DECREASING } sorted_hint;

typedef struct gs {
    gosort_less_fn less;
    gosort_swap_fn swap;
    void *ctx;
} gs;

#define LESS(d, i, j) ((d)->less((d)->ctx, (i), (j)))
#define SWAP(d, i, j) ((d)->swap((d)->ctx, (i), (j)))

/* Go's bits.Len: bits needed to represent x (0 for 0). */
static int bits_len(uint64_t x)
{
    return x ? 64 - __builtin_clzll(x) : 0;
}

static void insertion_sort(const gs *d, long a, long b)
{
    for (long i = a + 1; i < b; i++)
        for (long j = i; j > a && LESS(d, j, j - 1); j--)
            SWAP(d, j, j - 1);
}

/* Heap property on data[first+lo, first+hi). */
static void sift_down(const gs *d, long lo, long hi, long first)
{
    long root = lo;
    for (;;) {
        long child = 2 * root + 1;
        if (child >= hi)
            return;
        if (child + 1 < hi && LESS(d, first + child, first + child + 1))
            child++;
        if (!LESS(d, first + root, first + child))
            return;
        SWAP(d, first + root, first + child);
        root = child;
    }
}

static void heap_sort(const gs *d, long a, long b)
{
    long first = a, lo = 0, hi = b - a;
    for (long i = (hi - 1) / 2; i >= 0; i--)
        sift_down(d, i, hi, first);
    for (long i = hi - 1; i >= 0; i--) {
        SWAP(d, first, first + i);
        sift_down(d, lo, i, first);
    }
}

/* Go's xorshift with the shifts Go 1.19 uses (13, 17, 5). */
static uint64_t xorshift_next(uint64_t *r)
{
    *r ^= *r << 13;
    *r ^= *r >> 17;
    *r ^= *r << 5;
    return *r;
}

static void break_patterns(const gs *d, long a, long b)
{
    long length = b - a;
    if (length < 8)
        return;
    uint64_t random = (uint64_t)length;
    uint64_t modulus = (uint64_t)1 << bits_len((uint64_t)length);
    long mid = a + (length / 4) * 2;
    for (long idx = mid - 1; idx <= mid + 1; idx++) {
        long other = (long)(xorshift_next(&random) & (modulus - 1));
        if (other >= length)
            other -= length;
        SWAP(d, idx, a + other);
    }
}

/* Orders the indices x, y so that data[*x] <= data[*y]. */
static void order2(const gs *d, long *x, long *y, int *swaps)
{
    if (LESS(d, *y, *x)) {
        (*swaps)++;
        long t = *x;
        *x = *y;
        *y = t;
    }
}

/* Index of the median of data[x], data[y], data[z] (one of the three). */
static long median(const gs *d, long x, long y, long z, int *swaps)
{
    order2(d, &x, &y, swaps);
    order2(d, &y, &z, swaps);
    order2(d, &x, &y, swaps);
    return y;
}

static long median_adjacent(const gs *d, long x, int *swaps)
{
    return median(d, x - 1, x, x + 1, swaps);
}

static long choose_pivot(const gs *d, long a, long b, sorted_hint *hint)
{
    long l = b - a;
    int swaps = 0;
    long i = a + l / 4 * 1, j = a + l / 4 * 2, k = a + l / 4 * 3;
    if (l >= 8) {
        if (l >= GOSORT_SHORTEST_NINTHER) {
            i = median_adjacent(d, i, &swaps);
            j = median_adjacent(d, j, &swaps);
            k = median_adjacent(d, k, &swaps);
        }
        j = median(d, i, j, k, &swaps);
    }
    *hint = swaps == 0 ? HINT_INCREASING
          : swaps == GOSORT_MAX_SWAPS ? HINT_DECREASING : HINT_UNKNOWN;
    return j;
}

static void reverse_range(const gs *d, long a, long b)
{
    for (long i = a, j = b - 1; i < j; i++, j--)
        SWAP(d, i, j);
}

/* Sorts a little and reports whether data[a:b] ended up sorted. */
static bool partial_insertion_sort(const gs *d, long a, long b)
{
    long i = a + 1;
    for (int step = 0; step < GOSORT_PIS_MAX_STEPS; step++) {
        while (i < b && !LESS(d, i, i - 1))
            i++;
        if (i == b)
            return true;
        if (b - a < GOSORT_PIS_SHORTEST_SHIFTING)
            return false;
        SWAP(d, i, i - 1);
        /* the smaller one to the left (down to index 1, as Go 1.19) */
        if (i - a >= 2) {
            for (long j = i - 1; j >= 1; j--) {
                if (!LESS(d, j, j - 1))
                    break;
                SWAP(d, j, j - 1);
            }
        }
        /* the greater one to the right */
        if (b - i >= 2) {
            for (long j = i + 1; j < b; j++) {
                if (!LESS(d, j, j - 1))
                    break;
                SWAP(d, j, j - 1);
            }
        }
    }
    return false;
}

/* One quicksort partition around data[pivot] (moved to a first, then to
 * its final place).  Returns the pivot's final index; *already: nothing
 * had to move. */
static long partition(const gs *d, long a, long b, long pivot, bool *already)
{
    SWAP(d, a, pivot);
    long i = a + 1, j = b - 1;
    while (i <= j && LESS(d, i, a))
        i++;
    while (i <= j && !LESS(d, j, a))
        j--;
    if (i > j) {
        SWAP(d, j, a);
        *already = true;
        return j;
    }
    SWAP(d, i, j);
    i++;
    j--;
    for (;;) {
        while (i <= j && LESS(d, i, a))
            i++;
        while (i <= j && !LESS(d, j, a))
            j--;
        if (i > j)
            break;
        SWAP(d, i, j);
        i++;
        j--;
    }
    SWAP(d, j, a);
    *already = false;
    return j;
}

/* data[a:b] holds nothing less than data[pivot]: moves the elements equal
 * to it first; returns where the greater ones start. */
static long partition_equal(const gs *d, long a, long b, long pivot)
{
    SWAP(d, a, pivot);
    long i = a + 1, j = b - 1;
    for (;;) {
        while (i <= j && !LESS(d, a, i))
            i++;
        while (i <= j && LESS(d, a, j))
            j--;
        if (i > j)
            break;
        SWAP(d, i, j);
        i++;
        j--;
    }
    return i;
}

static void pdqsort(const gs *d, long a, long b, int limit)
{
    bool was_balanced = true, was_partitioned = true;
    for (;;) {
        long length = b - a;
        if (length <= GOSORT_MAX_INSERTION) {
            insertion_sort(d, a, b);
            return;
        }
        if (limit == 0) {
            heap_sort(d, a, b);
            return;
        }
        if (!was_balanced) {
            break_patterns(d, a, b);
            limit--;
        }
        sorted_hint hint;
        long pivot = choose_pivot(d, a, b, &hint);
        if (hint == HINT_DECREASING) {
            reverse_range(d, a, b);
            pivot = (b - 1) - (pivot - a);
            hint = HINT_INCREASING;
        }
        if (was_balanced && was_partitioned && hint == HINT_INCREASING &&
            partial_insertion_sort(d, a, b))
            return;
        if (a > 0 && !LESS(d, a - 1, pivot)) {
            a = partition_equal(d, a, b, pivot);
            continue;
        }
        bool already;
        long mid = partition(d, a, b, pivot, &already);
        was_partitioned = already;
        long left = mid - a, right = b - mid, threshold = length / 8;
        if (left < right) {
            was_balanced = left >= threshold;
            pdqsort(d, a, mid, limit);
            a = mid + 1;
        } else {
            was_balanced = right >= threshold;
            pdqsort(d, mid + 1, b, limit);
            b = mid;
        }
    }
}

void gosort_sort(long n, gosort_less_fn less, gosort_swap_fn swap, void *ctx)
{
    if (n <= 1)
        return;
    gs d = {less, swap, ctx};
    pdqsort(&d, 0, n, bits_len((uint64_t)n));
}
