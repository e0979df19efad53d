/*
 * msgpack for the tuple path (instance/_cpath.c): a packer that writes, byte
 * for byte, what msgpack-python's Packer(use_bin_type=True) writes, and a
 * decoder of received batches that shares recent short strings. Header-only,
 * included once, beside _acking_body.h (the acking body's format).
 *
 * The packer handles the exact builtin types (None, bool, int, float, str,
 * bytes, list, tuple, dict) and hands anything else to mp_fallback_pack
 * (msgpack-python's Packer.pack), so subclasses and odd values behave as
 * msgpack-python says. The decoder returns NULL, with no exception set, for
 * anything it does not fully handle; the caller then asks msgpack-python.
 *
 * Set mp_fallback_pack and mp_nest_limit (msgpack's DEFAULT_RECURSE_LIMIT)
 * before packing.
 */

#ifndef HERONPY_LITE_MSGPACK_H
#define HERONPY_LITE_MSGPACK_H

#include <stdint.h>
#include <string.h>

#include "../_buf.h"

static PyObject *mp_fallback_pack; /* msgpack.Packer(use_bin_type=True).pack */
static int mp_nest_limit = 1024;

/* ---------------------------------------------------------------- packing */

static int
pack_array_header(Buf *b, Py_ssize_t n)
{
    if (n < 16)
        return put_head(b, (uint8_t)(0x90 | n), 0, 0);
    if (n < 0x10000)
        return put_head(b, 0xdc, (uint64_t)n, 2);
    if ((uint64_t)n > 0xffffffffULL) {
        PyErr_SetString(PyExc_ValueError, "list is too large");
        return -1;
    }
    return put_head(b, 0xdd, (uint64_t)n, 4);
}

static int
pack_bin_header(Buf *b, Py_ssize_t n)
{
    if (n < 256)
        return put_head(b, 0xc4, (uint64_t)n, 1);
    if (n < 0x10000)
        return put_head(b, 0xc5, (uint64_t)n, 2);
    return put_head(b, 0xc6, (uint64_t)n, 4);
}

static int pack_obj(Buf *b, PyObject *o, int depth);

/* The items of an exact list or tuple. */
static inline PyObject **
items_of(PyObject *seq)
{
    return PyList_Check(seq) ? ((PyListObject *)seq)->ob_item : ((PyTupleObject *)seq)->ob_item;
}

static int
pack_fallback(Buf *b, PyObject *o)
{
    PyObject *r = PyObject_CallOneArg(mp_fallback_pack, o);
    if (r == NULL)
        return -1;
    int rc = PyBytes_Check(r) ? put(b, PyBytes_AS_STRING(r), PyBytes_GET_SIZE(r)) : -1;
    if (rc < 0 && !PyErr_Occurred())
        PyErr_SetString(PyExc_TypeError, "msgpack packer returned a non-bytes value");
    Py_DECREF(r);
    return rc;
}

static int
pack_int(Buf *b, PyObject *o)
{
    int overflow;
    long long v = PyLong_AsLongLongAndOverflow(o, &overflow);
    if (v == -1 && PyErr_Occurred())
        return -1;
    if (overflow > 0) {
        unsigned long long u = PyLong_AsUnsignedLongLong(o);
        if (u == (unsigned long long)-1 && PyErr_Occurred()) {
            PyErr_Clear();
            return pack_fallback(b, o); /* raises msgpack's OverflowError */
        }
        return put_head(b, 0xcf, u, 8);
    }
    if (overflow < 0)
        return pack_fallback(b, o);
    if (v < -(1LL << 5)) {
        if (v < -(1LL << 15))
            return v < -(1LL << 31) ? put_head(b, 0xd3, (uint64_t)v, 8)
                                    : put_head(b, 0xd2, (uint64_t)v, 4);
        return v < -(1LL << 7) ? put_head(b, 0xd1, (uint64_t)v, 2)
                               : put_head(b, 0xd0, (uint64_t)v, 1);
    }
    if (v < 128)
        return put_head(b, (uint8_t)v, 0, 0);
    if (v < 256)
        return put_head(b, 0xcc, (uint64_t)v, 1);
    if (v < 0x10000)
        return put_head(b, 0xcd, (uint64_t)v, 2);
    if (v < 0x100000000LL)
        return put_head(b, 0xce, (uint64_t)v, 4);
    return put_head(b, 0xcf, (uint64_t)v, 8);
}

static int
pack_items(Buf *b, PyObject *const *items, Py_ssize_t n, int depth)
{
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *item = items[i];
        Py_INCREF(item); /* the fallback runs Python code: keep the item alive */
        int rc = pack_obj(b, item, depth);
        Py_DECREF(item);
        if (rc < 0)
            return -1;
    }
    return 0;
}

static int
pack_obj(Buf *b, PyObject *o, int depth)
{
    PyTypeObject *t = Py_TYPE(o);
    if (depth > mp_nest_limit) {
        PyErr_SetString(PyExc_ValueError, "recursion limit exceeded.");
        return -1;
    }
    if (t == &PyUnicode_Type) {
        Py_ssize_t n;
        const char *s = PyUnicode_AsUTF8AndSize(o, &n);
        if (s == NULL)
            return -1;
        int rc;
        if (n < 32)
            rc = put_head(b, (uint8_t)(0xa0 | n), 0, 0);
        else if (n < 256)
            rc = put_head(b, 0xd9, (uint64_t)n, 1);
        else if (n < 0x10000)
            rc = put_head(b, 0xda, (uint64_t)n, 2);
        else if ((uint64_t)n <= 0xffffffffULL)
            rc = put_head(b, 0xdb, (uint64_t)n, 4);
        else {
            PyErr_SetString(PyExc_ValueError, "unicode string is too large");
            return -1;
        }
        return rc < 0 ? -1 : put(b, s, n);
    }
    if (t == &PyFloat_Type) {
        double d = PyFloat_AS_DOUBLE(o);
        uint64_t bits;
        memcpy(&bits, &d, 8);
        return put_head(b, 0xcb, bits, 8);
    }
    if (t == &PyLong_Type)
        return pack_int(b, o);
    if (o == Py_None)
        return put_head(b, 0xc0, 0, 0);
    if (o == Py_True)
        return put_head(b, 0xc3, 0, 0);
    if (o == Py_False)
        return put_head(b, 0xc2, 0, 0);
    if (t == &PyList_Type) {
        if (pack_array_header(b, PyList_GET_SIZE(o)) < 0)
            return -1;
        for (Py_ssize_t i = 0; i < PyList_GET_SIZE(o); i++) {
            PyObject *item = PyList_GET_ITEM(o, i);
            Py_INCREF(item);
            int rc = pack_obj(b, item, depth + 1);
            Py_DECREF(item);
            if (rc < 0)
                return -1;
        }
        return 0;
    }
    if (t == &PyTuple_Type) {
        Py_ssize_t n = PyTuple_GET_SIZE(o);
        if (pack_array_header(b, n) < 0)
            return -1;
        return pack_items(b, items_of(o), n, depth + 1);
    }
    if (t == &PyBytes_Type) {
        Py_ssize_t n = PyBytes_GET_SIZE(o);
        if ((uint64_t)n > 0xffffffffULL) {
            PyErr_SetString(PyExc_ValueError, "bytes object is too large");
            return -1;
        }
        if (pack_bin_header(b, n) < 0)
            return -1;
        return put(b, PyBytes_AS_STRING(o), n);
    }
    if (t == &PyDict_Type) {
        Py_ssize_t n = PyDict_GET_SIZE(o), pos = 0;
        int rc;
        if (n < 16)
            rc = put_head(b, (uint8_t)(0x80 | n), 0, 0);
        else if (n < 0x10000)
            rc = put_head(b, 0xde, (uint64_t)n, 2);
        else
            rc = put_head(b, 0xdf, (uint64_t)n, 4);
        if (rc < 0)
            return -1;
        PyObject *k, *v;
        while (PyDict_Next(o, &pos, &k, &v)) {
            Py_INCREF(k);
            Py_INCREF(v);
            rc = pack_obj(b, k, depth + 1);
            if (rc == 0)
                rc = pack_obj(b, v, depth + 1);
            Py_DECREF(k);
            Py_DECREF(v);
            if (rc < 0)
                return -1;
        }
        return 0;
    }
    return pack_fallback(b, o);
}

/* --------------------------------------------------------------- decoding */

/* unpack(body) -> list: what wire.tuples.unpack_batch returns, for the bodies
 * the tuple path writes. Anything else (ext types, a malformed body, a top
 * level that is not an array) is handed whole to unpack_batch, which returns
 * or raises as it always did: this decoder need only be right when it
 * succeeds. Short ASCII strings come from a small cache of recent ones, so a
 * key seen again is the same str object: hashed once, found by identity. */

#define UNPACK_NEST_LIMIT 1024 /* msgpack-python's unpacker stack */
#define STR_CACHE_SLOTS 4096
#define STR_CACHE_MAX_LEN 32

static PyObject *str_cache[STR_CACHE_SLOTS];

typedef struct {
    const unsigned char *p, *end;
} Reader;

static inline int
has(Reader *r, Py_ssize_t n)
{
    return r->end - r->p >= n;
}

static inline uint64_t
take_be(Reader *r, int width)
{
    uint64_t v = 0;
    for (int i = 0; i < width; i++)
        v = (v << 8) | *r->p++;
    return v;
}

static PyObject *
cached_str(const char *s, Py_ssize_t n)
{
    if (n > STR_CACHE_MAX_LEN)
        return PyUnicode_DecodeUTF8(s, n, NULL);
    uint32_t h = 2166136261U; /* FNV-1a */
    for (Py_ssize_t i = 0; i < n; i++)
        h = (h ^ (uint8_t)s[i]) * 16777619U;
    PyObject **slot = &str_cache[h & (STR_CACHE_SLOTS - 1)];
    PyObject *c = *slot;
    if (c != NULL && PyUnicode_GET_LENGTH(c) == n && memcmp(PyUnicode_DATA(c), s, n) == 0)
        return Py_NewRef(c);
    PyObject *u = PyUnicode_DecodeUTF8(s, n, NULL);
    if (u != NULL && PyUnicode_IS_ASCII(u))
        Py_XSETREF(*slot, Py_NewRef(u));
    return u;
}

/* NULL: this decoder does not take the body (the caller asks unpack_batch) */
static PyObject *
unpack_obj(Reader *r, int depth)
{
    if (!has(r, 1))
        return NULL;
    unsigned char c = *r->p++;
    Py_ssize_t n;
    if (c <= 0x7f)
        return PyLong_FromLong(c);
    if (c >= 0xe0)
        return PyLong_FromLong((long)(signed char)c);
    if ((c & 0xe0) == 0xa0) {
        n = c & 0x1f;
        goto str;
    }
    if ((c & 0xf0) == 0x90) {
        n = c & 0x0f;
        goto array;
    }
    if ((c & 0xf0) == 0x80) {
        n = c & 0x0f;
        goto map;
    }
    switch (c) {
    case 0xc0:
        return Py_NewRef(Py_None);
    case 0xc2:
        return Py_NewRef(Py_False);
    case 0xc3:
        return Py_NewRef(Py_True);
    case 0xc4: case 0xc5: case 0xc6: {
        int width = c == 0xc4 ? 1 : c == 0xc5 ? 2 : 4;
        if (!has(r, width))
            return NULL;
        n = (Py_ssize_t)take_be(r, width);
        if (!has(r, n))
            return NULL;
        r->p += n;
        return PyBytes_FromStringAndSize((const char *)r->p - n, n);
    }
    case 0xca: case 0xcb: {
        int width = c == 0xca ? 4 : 8;
        if (!has(r, width))
            return NULL;
        uint64_t bits = take_be(r, width);
        if (width == 4) {
            uint32_t b32 = (uint32_t)bits;
            float f;
            memcpy(&f, &b32, 4);
            return PyFloat_FromDouble(f);
        }
        double d;
        memcpy(&d, &bits, 8);
        return PyFloat_FromDouble(d);
    }
    case 0xcc: case 0xcd: case 0xce: case 0xcf: {
        int width = 1 << (c - 0xcc);
        if (!has(r, width))
            return NULL;
        return PyLong_FromUnsignedLongLong(take_be(r, width));
    }
    case 0xd0: case 0xd1: case 0xd2: case 0xd3: {
        int width = 1 << (c - 0xd0);
        if (!has(r, width))
            return NULL;
        uint64_t v = take_be(r, width);
        int shift = 64 - 8 * width;
        return PyLong_FromLongLong((int64_t)(v << shift) >> shift);
    }
    case 0xd9: case 0xda: case 0xdb: {
        int width = c == 0xd9 ? 1 : c == 0xda ? 2 : 4;
        if (!has(r, width))
            return NULL;
        n = (Py_ssize_t)take_be(r, width);
        goto str;
    }
    case 0xdc: case 0xdd:
        if (!has(r, c == 0xdc ? 2 : 4))
            return NULL;
        n = (Py_ssize_t)take_be(r, c == 0xdc ? 2 : 4);
        goto array;
    case 0xde: case 0xdf:
        if (!has(r, c == 0xde ? 2 : 4))
            return NULL;
        n = (Py_ssize_t)take_be(r, c == 0xde ? 2 : 4);
        goto map;
    default: /* ext types, 0xc1 */
        return NULL;
    }
str:
    if (!has(r, n))
        return NULL;
    r->p += n;
    return cached_str((const char *)r->p - n, n);
array:
    if (depth >= UNPACK_NEST_LIMIT || !has(r, n)) /* every item takes a byte at least */
        return NULL;
    {
        PyObject *list = PyList_New(n);
        for (Py_ssize_t i = 0; list != NULL && i < n; i++) {
            PyObject *item = unpack_obj(r, depth + 1);
            if (item == NULL)
                Py_CLEAR(list);
            else
                PyList_SET_ITEM(list, i, item);
        }
        return list;
    }
map:
    if (depth >= UNPACK_NEST_LIMIT || !has(r, 2 * n))
        return NULL;
    {
        PyObject *dict = PyDict_New();
        for (Py_ssize_t i = 0; dict != NULL && i < n; i++) {
            PyObject *k = unpack_obj(r, depth + 1);
            PyObject *v = k ? unpack_obj(r, depth + 1) : NULL;
            if (v == NULL || PyDict_SetItem(dict, k, v) < 0)
                Py_CLEAR(dict);
            Py_XDECREF(k);
            Py_XDECREF(v);
        }
        return dict;
    }
}

#endif
