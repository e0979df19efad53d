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
 * A root's home is its low bits: a spout draws its roots in sequence from a
 * random start, so its live trees sit in consecutive slots and lookups in
 * order stay in cache. Roots that share their low bits (a hostile sender could
 * choose them) would pile into one run; the first insertion that probes more
 * than U64_TABLE_MAX_PROBES slots switches the table, for good, to a seeded
 * mix of all the bits, which no sender can aim at. Seed a table with
 * Name_seed() before use.
 */

#ifndef HERONPY_LITE_U64_TABLE_H
#define HERONPY_LITE_U64_TABLE_H

#include <stdint.h>
#include <string.h>

#define U64_TABLE_MAX_PROBES 64

static inline size_t
u64_table_mix(uint64_t root, uint64_t seed, size_t cap)
{
    uint64_t x = root ^ seed; /* splitmix64's finalizer */
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return (size_t)(x ^ (x >> 31)) & (cap - 1);
}

#define U64_TABLE(Name, Entry)                                                           \
    typedef struct {                                                                     \
        Entry *slots;                                                                    \
        size_t cap; /* a power of 2, or 0 */                                             \
        size_t len;                                                                      \
        uint64_t seed;                                                                   \
        int mixed; /* homes from the seeded mix (after a long probe), else low bits */   \
    } Name;                                                                              \
                                                                                         \
    static inline void Name##_seed(Name *t, uint64_t seed)                               \
    {                                                                                    \
        t->seed = seed;                                                                  \
    }                                                                                    \
                                                                                         \
    static inline size_t Name##_home(Name *t, uint64_t root)                             \
    {                                                                                    \
        return t->mixed ? u64_table_mix(root, t->seed, t->cap)                           \
                        : (size_t)root & (t->cap - 1);                                   \
    }                                                                                    \
                                                                                         \
    /* how far the entry in slot i is from its home */                                   \
    static inline size_t Name##_distance(Name *t, size_t i)                              \
    {                                                                                    \
        return (i - Name##_home(t, t->slots[i].root)) & (t->cap - 1);                    \
    }                                                                                    \
                                                                                         \
    /* Robin Hood: an entry farther from home takes the slot of one nearer to its own; */ \
    /* returns where e landed; *probes counts the slots looked at */                     \
    static inline Entry *Name##_place(Name *t, Entry e, size_t *probes)                      \
    {                                                                                    \
        size_t i = Name##_home(t, e.root), d = 0;                                        \
        Entry *landed = NULL;                                                            \
        while (t->slots[i].used) {                                                       \
            (*probes)++;                                                                 \
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
    static inline int Name##_rebuild(Name *t, size_t cap)                                     \
    {                                                                                    \
        Name old = *t;                                                                   \
        size_t probes = 0;                                                               \
        t->slots = PyMem_Calloc(cap, sizeof(Entry));                                     \
        if (t->slots == NULL) {                                                          \
            t->slots = old.slots;                                                        \
            PyErr_NoMemory();                                                            \
            return -1;                                                                   \
        }                                                                                \
        t->cap = cap;                                                                    \
        for (size_t i = 0; i < old.cap; i++)                                             \
            if (old.slots[i].used)                                                       \
                Name##_place(t, old.slots[i], &probes);                                  \
        PyMem_Free(old.slots);                                                           \
        return 0;                                                                        \
    }                                                                                    \
                                                                                         \
    static inline Entry *Name##_find(Name *t, uint64_t root, int create)                    \
    {                                                                                    \
        if (t->cap) {                                                                    \
            size_t i = Name##_home(t, root), d = 0;                                      \
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
        if ((t->len + 1) * 10 > t->cap * 7 &&                                            \
            Name##_rebuild(t, t->cap ? t->cap * 2 : 1024) < 0)                           \
            return NULL;                                                                 \
        Entry e;                                                                         \
        memset(&e, 0, sizeof(e));                                                        \
        e.root = root;                                                                   \
        e.used = 1;                                                                      \
        t->len++;                                                                        \
        size_t probes = 0;                                                               \
        Entry *landed = Name##_place(t, e, &probes);                                     \
        if (probes <= U64_TABLE_MAX_PROBES || t->mixed)                                  \
            return landed;                                                               \
        t->mixed = 1; /* roots that share their low bits: from now on, mix */            \
        if (Name##_rebuild(t, t->cap) < 0) {                                             \
            PyErr_Clear(); /* the old slots are kept: still correct, only slower */      \
            t->mixed = 0;                                                                \
            return landed;                                                               \
        }                                                                                \
        return Name##_find(t, root, 0);                                                  \
    }                                                                                    \
                                                                                         \
    /* backward shift: later entries of the run move one slot nearer home, up to the */  \
    /* first that is at home already */                                                  \
    static inline void Name##_remove(Name *t, Entry *e)                                     \
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
    static inline void Name##_free(Name *t) /* the seed stays */                              \
    {                                                                                    \
        PyMem_Free(t->slots);                                                            \
        t->slots = NULL;                                                                 \
        t->cap = t->len = 0;                                                             \
    }

#endif
