/*
 * The acking body (see acking.py) for the C modules: a msgpack array of five
 * bin strings (init, update, fail, acked, failed), each a flat array of
 * little-endian u64; init and update alternate root and value.
 *
 * Header-only: included by instance/_cpath.c and stmgr/_ctracker.c.
 */

#ifndef HERONPY_LITE_ACKING_BODY_H
#define HERONPY_LITE_ACKING_BODY_H

#include <stdint.h>
#include <string.h>

static inline uint64_t
ack_get_u64le(const void *at)
{
    const unsigned char *p = at;
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static inline void
ack_put_u64le(void *at, uint64_t v)
{
    unsigned char *p = at;
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

typedef struct {
    const unsigned char *data;
    Py_ssize_t n; /* u64 values */
} AckPart;

enum { ACK_INIT, ACK_UPDATE, ACK_FAIL, ACK_ACKED, ACK_FAILED, ACK_PARTS };

/* Split a body into its parts: 0, or -1 if it is malformed (nothing set). */
static inline int
ack_parse_body(const unsigned char *p, Py_ssize_t len, AckPart parts[ACK_PARTS])
{
    const unsigned char *end = p + len;
    if (len < 1 || *p++ != 0x95)
        return -1;
    for (int i = 0; i < ACK_PARTS; i++) {
        if (p >= end)
            return -1;
        unsigned char code = *p++;
        int width = code == 0xc4 ? 1 : code == 0xc5 ? 2 : code == 0xc6 ? 4 : 0;
        if (!width || end - p < width)
            return -1;
        uint64_t n = 0;
        for (int k = 0; k < width; k++)
            n = (n << 8) | *p++;
        if ((uint64_t)(end - p) < n || n % 8)
            return -1;
        parts[i].data = p;
        parts[i].n = (Py_ssize_t)(n / 8);
        p += n;
    }
    if (p != end || parts[ACK_INIT].n % 2 || parts[ACK_UPDATE].n % 2)
        return -1;
    return 0;
}

/* A body of the given parts (data may be NULL where size is 0), each part as
 * bin32, after `headroom` bytes left for the caller (a frame header); NULL
 * with an exception set if a part is over 4 GiB or memory is short. */
static inline PyObject *
ack_body(const char *const data[ACK_PARTS], const Py_ssize_t sizes[ACK_PARTS],
         Py_ssize_t headroom)
{
    Py_ssize_t size = 1;
    for (int i = 0; i < ACK_PARTS; i++) {
        if ((uint64_t)sizes[i] > 0xffffffffULL) {
            PyErr_SetString(PyExc_ValueError, "acking body part over 4 GiB");
            return NULL;
        }
        size += 5 + sizes[i];
    }
    PyObject *body = PyBytes_FromStringAndSize(NULL, headroom + size);
    if (body == NULL)
        return NULL;
    unsigned char *out = (unsigned char *)PyBytes_AS_STRING(body) + headroom;
    *out++ = 0x95;
    for (int i = 0; i < ACK_PARTS; i++) {
        uint32_t n = (uint32_t)sizes[i];
        *out++ = 0xc6;
        for (int k = 3; k >= 0; k--)
            *out++ = (unsigned char)(n >> (8 * k));
        if (n)
            memcpy(out, data[i], n);
        out += n;
    }
    return body;
}

#endif
