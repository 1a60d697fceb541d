/*
 * store_gosort.c — gosort.c must order ties exactly as Go 1.19's sort.Sort,
 * i.e. as etcd 3.4.23 orders a sorted range.
 *
 * The golden orders below were captured from a real etcd 3.4.23 (Debian,
 * Go 1.19.8): each data set was written as keys g/<name>/0000.. with the
 * values "%05d", then read back with sort_target VALUE, sort_order ASCEND
 * and DESCEND; the arrays hold the key indices in etcd's answer order.  A
 * stable sort gets all but the smallest wrong.  The data sets are chosen so
 * that together they take every path of pdqsort (noted per set).  The last
 * tests run the same through kvstore_range, and range's int64 extremes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gosort.h"
#include "store_testutil.h"
#include "testhelp.h"

typedef struct golden {
    const char *name;
    const int *vals, *asc, *desc;
    size_t n;
} golden;

/* 12 elements: insertion sort only */
static const int v_ins12[] = {
    2, 0, 1, 1, 2, 0, 1, 0, 0, 0, 0, 1
};
static const int asc_ins12[] = {
    1, 5, 7, 8, 9, 10, 2, 3, 6, 11, 0, 4
};
static const int desc_ins12[] = {
    0, 4, 2, 3, 6, 11, 1, 5, 7, 8, 9, 10
};

/* 13 elements: the smallest input pdqsort partitions */
static const int v_pdq13[] = {
    1, 0, 0, 2, 1, 1, 1, 1, 2, 0, 0, 1, 0
};
static const int asc_pdq13[] = {
    9, 1, 2, 12, 10, 6, 0, 7, 5, 4, 11, 8, 3
};
static const int desc_pdq13[] = {
    3, 8, 6, 4, 5, 0, 7, 11, 2, 1, 9, 10, 12
};

/* McIlroy's antiqsort adversary against this very sort (values frozen in thirds, so ties): ascending takes breakPatterns six times, partitionEqual, then falls back to heapsort */
static const int v_anti48[] = {
    0, 1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 13, 0, 14, 5, 12, 13, 14, 14, 13, 7, 4, 12, 48, 0, 6, 6, 8,
    7, 5, 12, 15, 5, 7, 8, 10, 15, 8, 11, 11, 11, 10, 4, 10, 9, 9, 9, 6
};
static const int asc_anti48[] = {
    24, 12, 0, 2, 3, 1, 4, 5, 6, 7, 8, 9, 42, 21, 10, 29, 14, 32, 47, 25, 26, 20, 28, 33, 27,
    37, 34, 46, 45, 44, 41, 43, 35, 38, 39, 40, 30, 15, 22, 19, 11, 16, 17, 13, 18, 36, 31, 23
};
static const int desc_anti48[] = {
    23, 31, 36, 18, 17, 13, 11, 19, 16, 30, 15, 22, 40, 38, 39, 43, 41, 35, 44, 45, 46, 27, 37,
    34, 20, 33, 28, 47, 26, 25, 29, 32, 14, 42, 10, 21, 8, 7, 9, 5, 4, 6, 3, 2, 1, 12, 24, 0
};

/* decreasing at the ninther's sample points: ascending reverses the range, then partialInsertionSort shifts */
static const int v_desc64[] = {
    64, 60, 60, 60, 60, 56, 56, 56, 56, 52, 52, 52, 52, 48, 48, 49, 48, 47, 44, 44, 44, 40, 40,
    40, 40, 36, 36, 36, 36, 32, 32, 33, 32, 31, 28, 28, 28, 24, 24, 24, 24, 20, 20, 20, 20, 16,
    16, 17, 16, 15, 12, 12, 12, 8, 8, 8, 8, 4, 4, 4, 4, 0, 0, 0
};
static const int asc_desc64[] = {
    63, 62, 61, 60, 59, 58, 57, 56, 55, 54, 53, 52, 51, 50, 49, 48, 46, 45, 47, 44, 43, 42, 41,
    40, 39, 38, 37, 36, 35, 34, 33, 32, 30, 29, 31, 28, 27, 26, 25, 24, 23, 22, 21, 20, 19, 18,
    17, 16, 14, 13, 15, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0
};
static const int desc_desc64[] = {
    0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 15, 13, 14, 16, 17, 18, 19, 20, 21, 22, 23, 24,
    25, 26, 27, 28, 31, 29, 30, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 47, 45, 46,
    48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 58, 59, 60, 61, 62, 63
};

/* 85% zeros: partitionEqual and breakPatterns */
static const int v_skew200[] = {
    0, 0, 0, 0, 0, 5, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 4, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    5, 0, 0, 4, 5, 0, 0, 0, 3, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0, 0, 0,
    0, 0, 0, 5, 0, 0, 3, 2, 0, 0, 0, 0, 4, 1, 0, 2, 0, 2, 0, 0, 0, 0, 0, 1, 0, 0, 0, 5, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 4, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 4, 0, 0, 3, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 4, 0, 0, 0, 0, 0, 0, 2, 0, 3, 0, 0, 0
};
static const int asc_skew200[] = {
    150, 13, 2, 3, 4, 199, 6, 198, 8, 9, 10, 11, 12, 197, 14, 15, 16, 17, 195, 19, 20, 21, 193,
    23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 45,
    46, 47, 48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 58, 59, 60, 61, 192, 63, 64, 191, 190, 67,
    68, 69, 189, 71, 188, 73, 74, 75, 76, 77, 78, 79, 80, 81, 82, 83, 84, 85, 86, 186, 88, 89,
    90, 91, 92, 93, 94, 95, 185, 97, 172, 1, 180, 101, 102, 103, 104, 184, 183, 107, 182, 109,
    181, 111, 112, 113, 114, 115, 179, 117, 118, 119, 178, 121, 122, 123, 124, 125, 126, 127,
    128, 129, 130, 131, 132, 177, 134, 135, 176, 137, 138, 139, 140, 141, 142, 143, 144, 145,
    146, 147, 148, 149, 0, 151, 175, 153, 154, 155, 156, 157, 158, 159, 160, 161, 162, 163, 164,
    165, 174, 167, 168, 173, 98, 171, 152, 116, 106, 194, 108, 110, 100, 99, 72, 169, 196, 136,
    170, 70, 18, 187, 105, 7, 133, 65, 166, 22, 62, 120, 87, 5, 96, 66
};
static const int desc_skew200[] = {
    62, 66, 87, 96, 120, 5, 7, 22, 166, 65, 187, 133, 18, 105, 136, 196, 70, 72, 170, 169, 99,
    194, 100, 110, 108, 116, 106, 152, 50, 113, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41,
    42, 43, 44, 45, 46, 47, 48, 49, 0, 51, 52, 53, 54, 55, 56, 57, 58, 59, 60, 61, 28, 63, 64,
    27, 26, 67, 68, 69, 25, 71, 24, 73, 74, 75, 76, 77, 78, 79, 80, 81, 82, 83, 84, 85, 86, 23,
    88, 89, 90, 91, 92, 93, 94, 95, 21, 97, 98, 20, 19, 101, 102, 103, 104, 17, 16, 107, 15,
    109, 14, 111, 112, 29, 114, 115, 13, 117, 118, 119, 12, 121, 122, 123, 124, 125, 126, 127,
    128, 129, 130, 131, 132, 11, 134, 135, 10, 137, 138, 139, 140, 141, 142, 143, 144, 145, 146,
    147, 148, 149, 150, 151, 9, 153, 154, 155, 156, 157, 158, 159, 160, 161, 162, 163, 164, 165,
    8, 167, 168, 6, 4, 171, 172, 173, 174, 175, 176, 177, 178, 179, 180, 181, 182, 183, 184,
    185, 186, 3, 188, 189, 190, 191, 192, 193, 2, 195, 1, 197, 198, 199
};

/* sorted with three swapped pairs: descending partialInsertionSort shifts */
static const int v_near120[] = {
    0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4, 5, 5, 5, 6, 6, 6, 7, 7, 7, 8, 8, 8, 9, 9, 9,
    16, 10, 12, 11, 11, 17, 12, 10, 12, 13, 13, 13, 14, 14, 14, 15, 15, 15, 16, 10, 16, 17, 17,
    11, 18, 18, 18, 19, 19, 19, 20, 20, 20, 21, 21, 21, 22, 22, 22, 23, 23, 23, 24, 24, 24, 25,
    25, 25, 26, 26, 26, 27, 27, 27, 28, 28, 28, 29, 29, 29, 30, 30, 30, 31, 31, 31, 32, 32, 32,
    33, 33, 33, 34, 34, 34, 35, 35, 35, 36, 36, 36, 37, 37, 37, 38, 38, 38, 39, 39, 39
};
static const int asc_near120[] = {
    0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 14, 13, 12, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24,
    25, 26, 27, 28, 29, 31, 49, 37, 34, 33, 53, 36, 32, 38, 39, 40, 41, 42, 43, 44, 45, 46, 47,
    48, 30, 50, 52, 51, 35, 54, 55, 56, 57, 58, 59, 60, 61, 62, 63, 64, 65, 66, 67, 68, 69, 70,
    71, 72, 73, 74, 75, 76, 77, 78, 79, 80, 81, 82, 83, 84, 85, 86, 87, 88, 89, 90, 91, 92, 93,
    94, 95, 96, 97, 98, 99, 100, 101, 102, 103, 104, 105, 106, 107, 108, 109, 110, 111, 112,
    113, 114, 115, 116, 117, 118, 119
};
static const int desc_near120[] = {
    119, 118, 117, 116, 115, 114, 113, 112, 111, 110, 109, 108, 107, 106, 105, 104, 103, 102,
    101, 100, 99, 98, 97, 96, 95, 94, 93, 92, 91, 90, 89, 88, 87, 86, 85, 84, 83, 82, 81, 80,
    79, 78, 77, 76, 75, 74, 73, 72, 71, 70, 69, 68, 67, 66, 63, 65, 64, 61, 60, 62, 59, 57, 58,
    56, 55, 54, 51, 35, 52, 50, 30, 48, 45, 47, 46, 44, 43, 42, 41, 40, 39, 36, 38, 32, 33, 34,
    53, 37, 49, 31, 29, 28, 27, 26, 25, 24, 21, 23, 22, 19, 20, 18, 17, 16, 15, 12, 14, 13, 10,
    11, 9, 8, 7, 6, 5, 4, 3, 0, 2, 1
};

/* 300 values in 0..9: deep recursion, partitionEqual */
static const int v_rand300[] = {
    0, 6, 2, 5, 7, 6, 8, 9, 2, 7, 0, 0, 9, 0, 8, 6, 4, 2, 5, 0, 6, 8, 1, 4, 0, 7, 2, 8, 9, 1, 1,
    5, 9, 7, 6, 4, 9, 8, 2, 2, 0, 8, 0, 5, 4, 7, 3, 7, 5, 2, 6, 7, 0, 0, 2, 0, 5, 5, 6, 6, 3, 3,
    0, 2, 5, 8, 6, 0, 3, 0, 7, 3, 8, 0, 1, 1, 4, 7, 4, 3, 8, 1, 9, 7, 9, 2, 9, 7, 1, 1, 2, 4, 7,
    8, 7, 5, 3, 2, 7, 4, 6, 4, 4, 7, 8, 0, 7, 4, 1, 3, 9, 7, 3, 8, 9, 7, 7, 8, 0, 3, 4, 0, 4, 9,
    6, 9, 7, 5, 3, 3, 0, 5, 2, 2, 1, 1, 0, 4, 3, 0, 6, 9, 2, 0, 3, 9, 6, 4, 9, 4, 6, 6, 6, 2, 9,
    0, 4, 1, 0, 3, 8, 7, 5, 9, 1, 2, 0, 1, 3, 4, 3, 9, 6, 2, 3, 9, 8, 0, 7, 5, 0, 6, 4, 1, 0, 7,
    5, 4, 9, 5, 8, 3, 4, 0, 9, 6, 3, 6, 5, 8, 0, 6, 1, 5, 1, 6, 2, 4, 7, 2, 2, 1, 2, 9, 4, 0, 8,
    4, 5, 5, 4, 5, 7, 9, 7, 4, 1, 4, 7, 9, 4, 9, 1, 1, 7, 3, 3, 0, 2, 9, 3, 6, 5, 5, 6, 7, 5, 4,
    6, 6, 5, 0, 3, 0, 2, 0, 1, 8, 7, 5, 2, 6, 4, 3, 9, 5, 7, 8, 8, 8, 2, 3, 9, 1, 6, 8, 0, 4, 6,
    9, 5, 4, 6, 1, 4, 8, 5, 5, 6, 8, 1, 9, 5, 6, 9, 5, 3, 2, 4, 9
};
static const int asc_rand300[] = {
    255, 130, 53, 143, 193, 180, 276, 200, 105, 55, 10, 11, 67, 13, 136, 139, 184, 0, 121, 19,
    155, 253, 52, 69, 24, 251, 177, 73, 118, 62, 42, 237, 158, 215, 40, 166, 29, 226, 232, 81,
    233, 164, 30, 167, 211, 75, 74, 88, 89, 157, 204, 202, 22, 256, 135, 134, 273, 283, 290,
    183, 108, 238, 26, 63, 297, 2, 132, 54, 8, 49, 206, 133, 270, 209, 260, 210, 173, 142, 97,
    17, 212, 39, 38, 165, 153, 85, 254, 90, 236, 263, 61, 252, 159, 235, 144, 79, 96, 168, 170,
    46, 138, 240, 174, 271, 71, 68, 196, 296, 191, 109, 129, 128, 112, 60, 119, 225, 230, 298,
    44, 214, 120, 217, 122, 207, 220, 192, 227, 187, 35, 182, 107, 76, 284, 247, 169, 102, 101,
    137, 78, 99, 23, 281, 16, 91, 156, 277, 262, 147, 149, 286, 3, 295, 218, 265, 48, 203, 219,
    95, 56, 259, 280, 18, 162, 198, 57, 250, 221, 292, 189, 43, 127, 246, 186, 131, 287, 243,
    242, 64, 31, 179, 20, 195, 66, 34, 241, 244, 172, 5, 282, 100, 288, 59, 248, 58, 249, 181,
    140, 197, 274, 124, 15, 201, 278, 261, 50, 205, 146, 293, 152, 151, 150, 1, 161, 245, 45,
    115, 4, 47, 208, 51, 126, 111, 222, 106, 224, 103, 98, 94, 228, 9, 266, 92, 185, 87, 234,
    33, 258, 178, 116, 25, 83, 70, 77, 160, 268, 117, 41, 176, 80, 113, 27, 216, 289, 21, 199,
    285, 104, 257, 37, 190, 65, 6, 275, 14, 72, 93, 269, 267, 272, 213, 12, 229, 264, 7, 148,
    154, 231, 145, 86, 279, 36, 141, 32, 188, 223, 28, 110, 194, 163, 84, 239, 291, 125, 123,
    294, 82, 114, 171, 175, 299
};
static const int desc_rand300[] = {
    291, 213, 299, 154, 145, 239, 32, 7, 141, 163, 294, 171, 12, 175, 110, 148, 264, 82, 188,
    125, 123, 84, 86, 194, 223, 272, 114, 36, 28, 229, 279, 231, 27, 199, 104, 113, 257, 37,
    275, 216, 117, 41, 269, 93, 268, 285, 267, 190, 21, 289, 176, 80, 14, 6, 160, 72, 65, 111,
    224, 4, 258, 161, 9, 178, 185, 126, 25, 116, 115, 245, 70, 33, 106, 103, 208, 98, 94, 77,
    234, 92, 51, 222, 266, 83, 45, 228, 47, 87, 34, 195, 50, 150, 152, 1, 261, 146, 59, 5, 241,
    274, 100, 278, 140, 293, 58, 205, 172, 15, 201, 244, 249, 151, 181, 288, 282, 124, 248, 66,
    197, 20, 31, 221, 286, 48, 246, 280, 56, 127, 18, 186, 64, 131, 198, 179, 189, 292, 287,
    259, 243, 250, 242, 295, 162, 57, 218, 219, 95, 3, 43, 265, 203, 225, 187, 298, 147, 16,
    156, 23, 284, 281, 35, 277, 44, 149, 262, 247, 76, 78, 230, 169, 227, 91, 137, 220, 217, 99,
    214, 101, 102, 207, 107, 120, 182, 192, 122, 263, 252, 129, 128, 236, 235, 191, 296, 71, 68,
    119, 196, 79, 112, 109, 168, 159, 144, 170, 240, 271, 61, 60, 138, 96, 174, 46, 212, 142,
    49, 54, 260, 210, 97, 209, 173, 270, 90, 133, 206, 254, 39, 38, 85, 63, 26, 17, 165, 132, 8,
    297, 153, 2, 238, 74, 135, 75, 183, 290, 167, 22, 233, 232, 157, 81, 283, 108, 226, 29, 30,
    202, 256, 88, 89, 204, 273, 134, 164, 211, 42, 251, 53, 177, 139, 166, 215, 105, 40, 136,
    55, 180, 276, 143, 255, 0, 253, 52, 200, 62, 158, 24, 67, 69, 19, 118, 73, 155, 13, 11, 10,
    193, 237, 121, 184, 130
};

#define GOLDEN(n) {#n, v_##n, asc_##n, desc_##n, sizeof v_##n / sizeof v_##n[0]}
static const golden goldens[] = {
    GOLDEN(ins12),
    GOLDEN(pdq13),
    GOLDEN(anti48),
    GOLDEN(desc64),
    GOLDEN(skew200),
    GOLDEN(near120),
    GOLDEN(rand300),
};

typedef struct item {
    int v, idx;
} item;

typedef struct sorter {
    item *a;
    bool desc;
    long nless, nswap;
} sorter;

static bool item_less(void *arg, long i, long j)
{
    sorter *s = arg;
    s->nless++;
    return s->desc ? s->a[j].v < s->a[i].v : s->a[i].v < s->a[j].v;
}

static void item_swap(void *arg, long i, long j)
{
    sorter *s = arg;
    item t = s->a[i];
    s->nswap++;
    s->a[i] = s->a[j];
    s->a[j] = t;
}

/* Sorts g's values (descending: as sort.Reverse) and checks etcd's order. */
static bool check_golden(const golden *g, bool desc)
{
    item *a = malloc(g->n * sizeof *a);
    for (size_t i = 0; i < g->n; i++)
        a[i] = (item){g->vals[i], (int)i};
    sorter s = {a, desc, 0, 0};
    gosort_sort((long)g->n, item_less, item_swap, &s);
    const int *want = desc ? g->desc : g->asc;
    bool ok = true;
    for (size_t i = 0; i < g->n; i++)
        if (a[i].idx != want[i]) {
            fprintf(stderr, "  %s %s: position %zu holds index %d, etcd has %d\n", g->name,
                    desc ? "DESCEND" : "ASCEND", i, a[i].idx, want[i]);
            ok = false;
            break;
        }
    free(a);
    return ok;
}

static uint64_t rng = 0x2545F4914F6CDD1Dull;

static uint64_t rng_next(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static kv_op op_put_txn(char (*keys)[32], char (*vals)[32], size_t n)
{
    kv_op op = {.type = KV_OP_TXN};
    op.u.txn = calloc(1, sizeof *op.u.txn);
    op.u.txn->success = calloc(n, sizeof(kv_op));
    op.u.txn->n_success = n;
    for (size_t i = 0; i < n; i++)
        op.u.txn->success[i] = op_put(keys[i], vals[i]);
    return op;
}

int main(void)
{
    TEST("etcd 3.4.23's tie orders, ascending and descending") {
        for (size_t i = 0; i < sizeof goldens / sizeof goldens[0]; i++) {
            CHECK(check_golden(&goldens[i], false));
            CHECK(check_golden(&goldens[i], true));
        }
    }

    TEST("sorted permutation for every length 0..300, few distinct values") {
        for (long n = 0; n <= 300; n++) {
            for (int m = 1; m <= 64; m *= 4) {
                item a[300];
                int hist[64] = {0};
                for (long i = 0; i < n; i++) {
                    a[i] = (item){(int)(rng_next() % (uint64_t)m), (int)i};
                    hist[a[i].v]++;
                }
                sorter s = {a, false, 0, 0};
                gosort_sort(n, item_less, item_swap, &s);
                bool ok = true;
                for (long i = 1; i < n; i++)
                    ok = ok && a[i - 1].v <= a[i].v;
                for (long i = 0; i < n; i++)
                    hist[a[i].v]--;
                for (int v = 0; v < 64; v++)
                    ok = ok && hist[v] == 0;
                CHECK(ok);
            }
        }
    }

    TEST("n log n comparisons on a large input with many ties") {
        enum { N = 5000 };
        item *a = malloc(N * sizeof *a);
        for (int i = 0; i < N; i++)
            a[i] = (item){(int)(rng_next() % 7), i};
        sorter s = {a, false, 0, 0};
        gosort_sort(N, item_less, item_swap, &s);
        CHECK(s.nless < (long)N * 40);
        for (int i = 1; i < N; i++)
            if (a[i - 1].v > a[i].v) {
                CHECK(!"unsorted");
                break;
            }
        free(a);
    }

    TEST("kvstore_range: VALUE/VERSION ties in etcd's order") {
        char *dir = tu_tmpdir();
        kvstore *s = tu_open(dir, NULL);
        const golden *g = NULL;
        for (size_t i = 0; i < sizeof goldens / sizeof goldens[0]; i++)
            if (!strcmp(goldens[i].name, "anti48"))
                g = &goldens[i];
        char keys[48][32], vals[48][32];
        for (size_t i = 0; i < g->n; i++) {
            snprintf(keys[i], sizeof keys[i], "g/anti48/%04zu", i);
            snprintf(vals[i], sizeof vals[i], "%05d", g->vals[i]);
        }
        kv_response *r = tu_do(s, op_put_txn(keys, vals, g->n));
        CHECK_EQ_INT(r->err, KV_OK);
        kv_response_free(r);
        for (int desc = 0; desc < 2; desc++) {
            kv_range_req q = {.key = B("g/anti48/"), .range_end = B("g/anti480"),
                              .sort_target = KV_SORT_VALUE,
                              .sort_order = desc ? KV_SORT_DESCEND : KV_SORT_ASCEND,
                              .keys_only = true};
            kv_range_resp out;
            int64_t h;
            CHECK_EQ_INT(kvstore_range(s, &q, &out, &h), KV_OK);
            CHECK_EQ_INT(out.n_kvs, g->n);
            const int *want = desc ? g->desc : g->asc;
            for (size_t i = 0; i < out.n_kvs && i < g->n; i++) {
                CHECK_MEM(out.kvs[i].key.data, out.kvs[i].key.len, keys[want[i]],
                          strlen(keys[want[i]]));
                CHECK_EQ_INT(out.kvs[i].value.len, 0); /* keys_only after sorting */
            }
            kv_range_resp_free(&out);
            kv_range_req_free(&q);
        }
        kvstore_close(s);
        tu_rmrf(dir);
        free(dir);
    }

    TEST("kvstore_range: int64 extremes of limit, revision and filters") {
        char *dir = tu_tmpdir();
        kvstore *s = tu_open(dir, NULL);
        for (int i = 0; i < 5; i++) {
            char k[8];
            snprintf(k, sizeof k, "x%d", i);
            CHECK(tu_put(s, k, "v") > 0); /* revisions 2..6 */
        }
        static const struct {
            int64_t limit, rev, min_mod, max_mod, min_create, max_create;
            kv_err err;
            size_t n;
            bool more;
        } cases[] = {
            /* etcd's limit+1 wraps to INT64_MIN: "all", never "more" */
            {INT64_MAX, 0, 0, 0, 0, 0, KV_OK, 5, false},
            {INT64_MAX - 1, 0, 0, 0, 0, 0, KV_OK, 5, false},
            {INT64_MIN, 0, 0, 0, 0, 0, KV_OK, 5, false},
            {-1, 0, 0, 0, 0, 0, KV_OK, 5, false},
            {2, 0, 0, 0, 0, 0, KV_OK, 2, true},
            {0, INT64_MAX, 0, 0, 0, 0, KV_ERR_FUTURE_REV, 0, false},
            {0, INT64_MIN, 0, 0, 0, 0, KV_OK, 5, false},
            {0, 4, 0, 0, 0, 0, KV_OK, 3, false},
            {0, 0, INT64_MAX, 0, 0, 0, KV_OK, 0, false},
            {0, 0, INT64_MIN, 0, 0, 0, KV_OK, 5, false},
            {0, 0, 0, INT64_MAX, 0, 0, KV_OK, 5, false},
            {0, 0, 0, INT64_MIN, 0, 0, KV_OK, 0, false},
            {0, 0, 0, 0, INT64_MAX, 0, KV_OK, 0, false},
            {0, 0, 0, 0, INT64_MIN, 0, KV_OK, 5, false},
            {0, 0, 0, 0, 0, INT64_MAX, KV_OK, 5, false},
            {0, 0, 0, 0, 0, INT64_MIN, KV_OK, 0, false},
            {INT64_MAX, 0, 0, 0, 0, INT64_MAX, KV_OK, 5, false},
            {1, 0, INT64_MIN, 0, 0, 0, KV_OK, 1, true},
        };
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
            kv_range_req q = {.key = B("x"), .range_end = B("y"), .limit = cases[i].limit,
                              .revision = cases[i].rev, .min_mod_revision = cases[i].min_mod,
                              .max_mod_revision = cases[i].max_mod,
                              .min_create_revision = cases[i].min_create,
                              .max_create_revision = cases[i].max_create};
            kv_range_resp out;
            int64_t h;
            kv_err e = kvstore_range(s, &q, &out, &h);
            CHECK_EQ_INT(e, cases[i].err);
            if (e == KV_OK) {
                CHECK_EQ_INT(out.n_kvs, cases[i].n);
                CHECK_EQ_INT(out.more, cases[i].more);
                CHECK_EQ_INT(out.count, cases[i].rev == 4 ? 3 : 5);
                kv_range_resp_free(&out);
            }
            kv_range_req_free(&q);
            if (th_cur_failed) {
                fprintf(stderr, "  case %zu\n", i);
                break;
            }
        }
        kvstore_close(s);
        tu_rmrf(dir);
        free(dir);
    }
    return TEST_REPORT();
}
