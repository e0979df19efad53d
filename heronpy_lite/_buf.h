/*
 * A growable byte buffer for the C modules (instance/_cpath.c, stmgr/_ctracker.c).
 * Header-only; every function raises MemoryError and returns -1 when it cannot
 * grow the buffer.
 */

#ifndef HERONPY_LITE_BUF_H
#define HERONPY_LITE_BUF_H

#include <stdint.h>
#include <string.h>

typedef struct {
    char *data;
    Py_ssize_t len;
    Py_ssize_t cap;
} Buf;

static inline int
buf_reserve(Buf *b, Py_ssize_t extra)
{
    Py_ssize_t need = b->len + extra;
    if (need <= b->cap)
        return 0;
    Py_ssize_t cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap *= 2;
    char *p = PyMem_Realloc(b->data, cap);
    if (p == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    b->data = p;
    b->cap = cap;
    return 0;
}

static inline void
buf_free(Buf *b)
{
    PyMem_Free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

/* Empty the buffer; a large one is given back, so that memory follows the
 * batch limits, not the largest tuple ever seen. */
static inline void
buf_reset(Buf *b)
{
    b->len = 0;
    if (b->cap > (1 << 20))
        buf_free(b);
}

static inline int
put(Buf *b, const void *p, Py_ssize_t n)
{
    if (buf_reserve(b, n) < 0)
        return -1;
    memcpy(b->data + b->len, p, n);
    b->len += n;
    return 0;
}

/* A one-byte code and a big-endian value of `width` bytes (msgpack's headers). */
static inline int
put_head(Buf *b, uint8_t code, uint64_t v, int width)
{
    uint8_t h[9];
    h[0] = code;
    for (int i = 0; i < width; i++)
        h[1 + i] = (uint8_t)(v >> (8 * (width - 1 - i)));
    return put(b, h, 1 + width);
}

/* A little-endian u64 (the acking body's values). */
static inline int
put_u64le(Buf *b, uint64_t v)
{
    uint8_t p[8];
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
    return put(b, p, 8);
}

#endif
