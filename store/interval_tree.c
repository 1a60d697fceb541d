/*
 * interval_tree.c — augmented red-black tree (CLRS 13 + 14.3) over
 * byte-string intervals; see interval_tree.h for the contract.
 *
 * Invariants (checked by itree_check):
 *   - in-order traversal is sorted by (begin, node address);
 *   - red-black: the root is black, a red node has black children, every
 *     root-to-leaf path has the same number of black nodes (depth <= 2 lg n);
 *   - max_end of a node = max(its end, left->max_end, right->max_end), with
 *     +infinity above every string.
 * Only rotations and the path from a changed node to the root can break the
 * augmentation, so those are the only places that recompute it.
 */
#include "interval_tree.h"

#include <string.h>

int itree_bytes_cmp(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
    size_t n = alen < blen ? alen : blen;
    int c = n ? memcmp(a, b, n) : 0;
    if (c)
        return c;
    return alen < blen ? -1 : alen > blen ? 1 : 0;
}

/* Ends compare with +infinity above everything. */
static int end_cmp(const uint8_t *a, size_t alen, bool ainf,
                   const uint8_t *b, size_t blen, bool binf)
{
    if (ainf || binf)
        return ainf == binf ? 0 : ainf ? 1 : -1;
    return itree_bytes_cmp(a, alen, b, blen);
}

void itree_init(itree *t)
{
    t->root = NULL;
    t->count = 0;
}

void itree_node_set(itree_node *n, const uint8_t *begin, size_t begin_len,
                    const uint8_t *end, size_t end_len, bool end_inf)
{
    memset(n, 0, sizeof *n);
    n->begin = begin;
    n->begin_len = (uint32_t)begin_len;
    n->end = end_inf ? NULL : end;
    n->end_len = end_inf ? 0 : (uint32_t)end_len;
    n->end_inf = end_inf;
}

static void update_max(itree_node *n)
{
    const uint8_t *m = n->end;
    size_t mlen = n->end_len;
    bool minf = n->end_inf;
    itree_node *kids[2] = {n->left, n->right};
    for (int i = 0; i < 2; i++) {
        itree_node *k = kids[i];
        if (k && end_cmp(k->max_end, k->max_end_len, k->max_inf, m, mlen, minf) > 0) {
            m = k->max_end;
            mlen = k->max_end_len;
            minf = k->max_inf;
        }
    }
    n->max_end = m;
    n->max_end_len = (uint32_t)mlen;
    n->max_inf = minf;
}

static void update_path(itree_node *n)
{
    for (; n; n = n->parent)
        update_max(n);
}

/* Order of nodes: begin, then address (so equal intervals are distinct). */
static int node_cmp(const itree_node *a, const itree_node *b)
{
    int c = itree_bytes_cmp(a->begin, a->begin_len, b->begin, b->begin_len);
    if (c)
        return c;
    return a < b ? -1 : a > b ? 1 : 0;
}

static void replace_child(itree *t, itree_node *parent, itree_node *old, itree_node *new)
{
    if (!parent)
        t->root = new;
    else if (parent->left == old)
        parent->left = new;
    else
        parent->right = new;
}

static void rotate_left(itree *t, itree_node *x)
{
    itree_node *y = x->right;
    x->right = y->left;
    if (y->left)
        y->left->parent = x;
    y->parent = x->parent;
    replace_child(t, x->parent, x, y);
    y->left = x;
    x->parent = y;
    update_max(x);
    update_max(y);
}

static void rotate_right(itree *t, itree_node *x)
{
    itree_node *y = x->left;
    x->left = y->right;
    if (y->right)
        y->right->parent = x;
    y->parent = x->parent;
    replace_child(t, x->parent, x, y);
    y->right = x;
    x->parent = y;
    update_max(x);
    update_max(y);
}

static bool is_red(const itree_node *n) { return n && n->red; }

void itree_insert(itree *t, itree_node *z)
{
    itree_node *p = NULL, **link = &t->root;
    while (*link) {
        p = *link;
        link = node_cmp(z, p) < 0 ? &p->left : &p->right;
    }
    z->parent = p;
    z->left = z->right = NULL;
    z->red = true;
    *link = z;
    t->count++;
    update_path(z);

    while (is_red(z->parent)) {
        itree_node *zp = z->parent, *g = zp->parent; /* g exists: the root is black */
        if (zp == g->left) {
            itree_node *u = g->right;
            if (is_red(u)) {
                zp->red = false;
                u->red = false;
                g->red = true;
                z = g;
                continue;
            }
            if (z == zp->right) {
                z = zp;
                rotate_left(t, z);
                zp = z->parent;
            }
            zp->red = false;
            g->red = true;
            rotate_right(t, g);
        } else {
            itree_node *u = g->left;
            if (is_red(u)) {
                zp->red = false;
                u->red = false;
                g->red = true;
                z = g;
                continue;
            }
            if (z == zp->left) {
                z = zp;
                rotate_right(t, z);
                zp = z->parent;
            }
            zp->red = false;
            g->red = true;
            rotate_left(t, g);
        }
    }
    t->root->red = false;
}

/* Puts v (may be NULL) where u was, as CLRS's RB-TRANSPLANT. */
static void transplant(itree *t, itree_node *u, itree_node *v)
{
    replace_child(t, u->parent, u, v);
    if (v)
        v->parent = u->parent;
}

void itree_remove(itree *t, itree_node *z)
{
    itree_node *x, *xp, *y = z;
    bool y_was_red = y->red;

    if (!z->left) {
        x = z->right;
        xp = z->parent;
        transplant(t, z, z->right);
    } else if (!z->right) {
        x = z->left;
        xp = z->parent;
        transplant(t, z, z->left);
    } else {
        y = z->right;
        while (y->left)
            y = y->left;
        y_was_red = y->red;
        x = y->right;
        if (y->parent == z) {
            xp = y;
        } else {
            xp = y->parent;
            transplant(t, y, y->right);
            y->right = z->right;
            y->right->parent = y;
        }
        transplant(t, z, y);
        y->left = z->left;
        y->left->parent = y;
        y->red = z->red;
    }
    t->count--;
    /* Every node whose subtree lost z (or had y moved) is on xp's path to
     * the root (y, when it moved, is an ancestor of xp or xp itself). */
    update_path(xp);
    z->left = z->right = z->parent = NULL;

    if (y_was_red)
        return;
    while (x != t->root && !is_red(x)) {
        if (x == xp->left) {
            itree_node *w = xp->right;
            if (is_red(w)) {
                w->red = false;
                xp->red = true;
                rotate_left(t, xp);
                w = xp->right;
            }
            if (!is_red(w->left) && !is_red(w->right)) {
                w->red = true;
                x = xp;
                xp = x->parent;
            } else {
                if (!is_red(w->right)) {
                    w->left->red = false;
                    w->red = true;
                    rotate_right(t, w);
                    w = xp->right;
                }
                w->red = xp->red;
                xp->red = false;
                w->right->red = false;
                rotate_left(t, xp);
                x = t->root;
                break;
            }
        } else {
            itree_node *w = xp->left;
            if (is_red(w)) {
                w->red = false;
                xp->red = true;
                rotate_right(t, xp);
                w = xp->left;
            }
            if (!is_red(w->right) && !is_red(w->left)) {
                w->red = true;
                x = xp;
                xp = x->parent;
            } else {
                if (!is_red(w->left)) {
                    w->right->red = false;
                    w->red = true;
                    rotate_left(t, w);
                    w = xp->left;
                }
                w->red = xp->red;
                xp->red = false;
                w->left->red = false;
                rotate_right(t, xp);
                x = t->root;
                break;
            }
        }
    }
    if (x)
        x->red = false;
}

static void stab(const itree_node *n, const uint8_t *key, size_t key_len,
                 itree_visit_fn fn, void *arg)
{
    while (n) {
        /* Nothing below n ends after key: no interval here contains it. */
        if (!n->max_inf && itree_bytes_cmp(key, key_len, n->max_end, n->max_end_len) >= 0)
            return;
        stab(n->left, key, key_len, fn, arg);
        /* n and its right subtree begin at or after n->begin. */
        if (itree_bytes_cmp(n->begin, n->begin_len, key, key_len) > 0)
            return;
        if (n->end_inf || itree_bytes_cmp(key, key_len, n->end, n->end_len) < 0)
            fn((itree_node *)n, arg);
        n = n->right; /* tail call by hand: depth stays O(log n) */
    }
}

void itree_stab(const itree *t, const uint8_t *key, size_t key_len,
                itree_visit_fn fn, void *arg)
{
    stab(t->root, key, key_len, fn, arg);
}

/* Returns the black height, or -1 on a violation. */
static int check(const itree_node *n, const itree_node *parent, size_t *count)
{
    if (!n)
        return 1;
    if (n->parent != parent)
        return -1;
    if (n->red && (is_red(n->left) || is_red(n->right)))
        return -1;
    if (n->left && node_cmp(n->left, n) >= 0)
        return -1;
    if (n->right && node_cmp(n->right, n) <= 0)
        return -1;
    itree_node tmp = *n;
    update_max(&tmp);
    if (end_cmp(tmp.max_end, tmp.max_end_len, tmp.max_inf,
                n->max_end, n->max_end_len, n->max_inf) != 0)
        return -1;
    (*count)++;
    int lh = check(n->left, n, count), rh = check(n->right, n, count);
    if (lh < 0 || rh < 0 || lh != rh)
        return -1;
    return lh + (n->red ? 0 : 1);
}

int itree_check(const itree *t)
{
    size_t count = 0;
    if (t->root && (t->root->red || t->root->parent))
        return -2;
    if (check(t->root, NULL, &count) < 0)
        return -1;
    /* A full in-order walk also proves global order (local checks only
     * compare neighbours). */
    const itree_node *prev = NULL, *n = t->root;
    while (n && n->left)
        n = n->left;
    while (n) {
        if (prev && node_cmp(prev, n) >= 0)
            return -4;
        prev = n;
        if (n->right) {
            n = n->right;
            while (n->left)
                n = n->left;
        } else {
            while (n->parent && n->parent->right == n)
                n = n->parent;
            n = n->parent;
        }
    }
    return count == t->count ? 0 : -3;
}
