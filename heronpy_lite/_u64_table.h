/*
 * An open-addressing hash table keyed by u64 roots, for
 * the C modules (stmgr/_ctracker.c: the XOR tracker's trees; instance/_cpath.c:
 * a spout's trees in flight).
 *
 * U64_TABLE(Name, Entry) defines `Name` (slots, cap, len) and static
 * functions over it for a struct `Entry` with the fields `uint64_t root` and
 * `uint8_t used` (and any others; a new entry is zeroed):
 *   Entry *Name_find(Name *, uint64_t root, int create)
 *       the entry of root or NULL; with create, a new zeroed entry (root and
 *       used set) if absent, or NULL with MemoryError set
 *   void Name_remove(Name *, Entry *)
 *   void Name_free(Name *)
 *
 * Robin Hood linear probing: entries along a run are ordered by their
 * distance from home, so a lookup stops at the first entry nearer its home
 * than the root would be, and a removal shifts the run back only up to the
 * first entry at its home (no tombstones). Growth at 70% load. An Entry
 * pointer is valid until the next find(create) or remove.
 *
 * A root's home slot is its low bits: a spout draws its roots in sequence from
 * a random start, so its live trees sit in consecutive slots (no cache miss
 * per lookup); roots from elsewhere (the pure-Python emitter's, a restarted
 * spout's) are as good as random, which spreads them as well.
 */

#ifndef HERONPY_LITE_U64_TABLE_H
#define HERONPY_LITE_U64_TABLE_H

#include <stdint.h>
#include <string.h>

static inline size_t
u64_table_home(uint64_t root, size_t cap)
{
    return (size_t)root & (cap - 1);
}

#define U64_TABLE(Name, Entry)                                                           \
    typedef struct {                                                                     \
        Entry *slots;                                                                    \
        size_t cap; /* a power of 2, or 0 */                                             \
        size_t len;                                                                      \
    } Name;                                                                              \
                                                                                         \
    /* how far the entry in slot i is from its home */                                   \
    static inline size_t Name##_distance(Name *t, size_t i)                              \
    {                                                                                    \
        return (i - u64_table_home(t->slots[i].root, t->cap)) & (t->cap - 1);            \
    }                                                                                    \
                                                                                         \
    /* Robin Hood: an entry farther from home takes the slot of one nearer to its own; */ \
    /* returns where e landed */                                                         \
    static Entry *Name##_place(Name *t, Entry e)                                         \
    {                                                                                    \
        size_t i = u64_table_home(e.root, t->cap), d = 0;                                \
        Entry *landed = NULL;                                                            \
        while (t->slots[i].used) {                                                       \
            size_t theirs = Name##_distance(t, i);                                       \
            if (theirs < d) {                                                            \
                Entry displaced = t->slots[i];                                           \
                t->slots[i] = e;                                                         \
                if (landed == NULL)                                                      \
                    landed = &t->slots[i];                                               \
                e = displaced;                                                           \
                d = theirs;                                                              \
            }                                                                            \
            i = (i + 1) & (t->cap - 1);                                                  \
            d++;                                                                         \
        }                                                                                \
        t->slots[i] = e;                                                                 \
        return landed != NULL ? landed : &t->slots[i];                                   \
    }                                                                                    \
                                                                                         \
    static int Name##_grow(Name *t)                                                      \
    {                                                                                    \
        Name old = *t;                                                                   \
        size_t cap = t->cap ? t->cap * 2 : 1024;                                         \
        t->slots = PyMem_Calloc(cap, sizeof(Entry));                                     \
        if (t->slots == NULL) {                                                          \
            t->slots = old.slots;                                                        \
            PyErr_NoMemory();                                                            \
            return -1;                                                                   \
        }                                                                                \
        t->cap = cap;                                                                    \
        for (size_t i = 0; i < old.cap; i++)                                             \
            if (old.slots[i].used)                                                       \
                Name##_place(t, old.slots[i]);                                           \
        PyMem_Free(old.slots);                                                           \
        return 0;                                                                        \
    }                                                                                    \
                                                                                         \
    static Entry *Name##_find(Name *t, uint64_t root, int create)                        \
    {                                                                                    \
        if (t->cap) {                                                                    \
            size_t i = u64_table_home(root, t->cap), d = 0;                              \
            /* past an entry nearer its home than we are to ours, root is absent */      \
            while (t->slots[i].used && Name##_distance(t, i) >= d) {                     \
                if (t->slots[i].root == root)                                            \
                    return &t->slots[i];                                                 \
                i = (i + 1) & (t->cap - 1);                                              \
                d++;                                                                     \
            }                                                                            \
        }                                                                                \
        if (!create)                                                                     \
            return NULL;                                                                 \
        if ((t->len + 1) * 10 > t->cap * 7 && Name##_grow(t) < 0)                        \
            return NULL;                                                                 \
        Entry e;                                                                         \
        memset(&e, 0, sizeof(e));                                                        \
        e.root = root;                                                                   \
        e.used = 1;                                                                      \
        t->len++;                                                                        \
        return Name##_place(t, e);                                                       \
    }                                                                                    \
                                                                                         \
    /* backward shift: later entries of the run move one slot nearer home, up to the */  \
    /* first that is at home already */                                                  \
    static void Name##_remove(Name *t, Entry *e)                                         \
    {                                                                                    \
        size_t mask = t->cap - 1, i = (size_t)(e - t->slots), j = (i + 1) & mask;        \
        while (t->slots[j].used && Name##_distance(t, j) > 0) {                          \
            t->slots[i] = t->slots[j];                                                   \
            i = j;                                                                       \
            j = (j + 1) & mask;                                                          \
        }                                                                                \
        t->slots[i].used = 0;                                                            \
        t->len--;                                                                        \
    }                                                                                    \
                                                                                         \
    static void Name##_free(Name *t)                                                     \
    {                                                                                    \
        PyMem_Free(t->slots);                                                            \
        t->slots = NULL;                                                                 \
        t->cap = t->len = 0;                                                             \
    }

#endif
