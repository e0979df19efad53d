/*
 * The tuple path in C: the same objects, arguments and behaviour as
 * `_pypath.py`, which is the reference (read its docstring first).
 *
 * Why C: at a million tuples per second a task has well under a microsecond
 * per tuple, and the user's next_tuple/process take most of it. What is left
 * for the engine (check the emit, pack the values, pick the destination,
 * append; build the HeronTuple and call process; record an ack) costs several
 * hundred nanoseconds as Python bytecode and a few dozen here.
 *
 * What is here, as in _pypath.py:
 *   pack(values)          msgpack, byte for byte what msgpack-python's Packer
 *                         (use_bin_type=True) writes; types other than the
 *                         exact builtins are handed to that Packer
 *   unpack(body)          a received batch, as wire.tuples.unpack_batch decodes it,
 *                         recent short strings shared
 *   Batch                 packed entries of one destination task
 *   Emitter               a task's emit; send() for batches chosen elsewhere
 *   Anchors, AckOut       at-least-once bookkeeping of a bolt
 *   deliver, deliver_reliable
 *   InFlight              a spout's trees in flight; its verdicts into tuple ids
 *   call_repeatedly       the spout loop's calls of next_tuple
 *
 * `configure(heron_tuple, emit_error, protocol_error, fallback_pack, fallback_unpack,
 * nest_limit)` must be
 * called once before use (tuplepath.py does).
 *
 * Every entry point holds the GIL throughout; nothing here blocks.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "../_buf.h"
#include "../_u64_table.h"
#include "../wire/_acking_body.h"

/* ------------------------------------------------------------ module state */

static PyTypeObject *HeronTuple_type;   /* heronpy_lite.api.tuple.HeronTuple */
static PyObject *EmitError;
static PyObject *RemoteProtocolError;
static PyObject *fallback_pack;         /* msgpack.Packer(use_bin_type=True).pack */
static PyObject *fallback_unpack;       /* wire.tuples.unpack_batch */

static PyObject *s_default, *s_tup_id, *s_stream, *s_direct_task, *s_need_task_ids, *s_anchors;

static int nest_limit = 1024;           /* msgpack's DEFAULT_RECURSE_LIMIT, from configure() */
#define TRIPLE 24      /* (spout task, root, edge) as u64 little-endian */
#define LATENCY_SAMPLE 16 /* process latency is timed on the first ack and every 16th */
#define VALUE_DEPTH 3     /* a tuple's values, in a body: inside the batch and the entry */

static int
check_configured(void)
{
    if (HeronTuple_type == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "_cpath.configure() was not called");
        return -1;
    }
    return 0;
}

/* The exception being raised, normalized and with its traceback attached; the
 * error indicator is cleared. */
static PyObject *
take_exception(void)
{
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    PyErr_NormalizeException(&type, &value, &tb);
    if (tb != NULL && value != NULL)
        PyException_SetTraceback(value, tb);
    Py_XDECREF(type);
    Py_XDECREF(tb);
    return value;
}

/* ------------------------------------------------------------ msgpack */

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
    PyObject *r = PyObject_CallOneArg(fallback_pack, o);
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
    if (depth > nest_limit) {
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

static PyObject *
cpath_pack(PyObject *module, PyObject *o)
{
    if (check_configured() < 0)
        return NULL;
    Buf b = {0};
    if (pack_obj(&b, o, 0) < 0) {
        buf_free(&b);
        return NULL;
    }
    PyObject *r = PyBytes_FromStringAndSize(b.data, b.len);
    buf_free(&b);
    return r;
}

/* ------------------------------------------------------------ stable hash */

/* routing.stable_hash: zlib's crc32 of a str's UTF-8 or of bytes, the low 48
 * bits of an int. Other values go to the route's own choose(). */
static uint32_t crc_table[256];

static void
crc_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = c & 1 ? 0xedb88320U ^ (c >> 1) : c >> 1;
        crc_table[i] = c;
    }
}

static uint32_t
crc32_of(const char *p, Py_ssize_t n)
{
    uint32_t c = 0xffffffffU;
    for (Py_ssize_t i = 0; i < n; i++)
        c = crc_table[(c ^ (uint8_t)p[i]) & 0xff] ^ (c >> 8);
    return c ^ 0xffffffffU;
}

/* 1: hashed into *h; 0: not a value hashed here; -1: error */
static int
stable_hash(PyObject *v, uint64_t *h)
{
    PyTypeObject *t = Py_TYPE(v);
    if (t == &PyUnicode_Type) {
        Py_ssize_t n;
        const char *s = PyUnicode_AsUTF8AndSize(v, &n);
        if (s == NULL)
            return -1;
        *h = crc32_of(s, n);
        return 1;
    }
    if (t == &PyBytes_Type) {
        *h = crc32_of(PyBytes_AS_STRING(v), PyBytes_GET_SIZE(v));
        return 1;
    }
    if (t == &PyLong_Type) {
        int overflow;
        long long x = PyLong_AsLongLongAndOverflow(v, &overflow);
        if (x == -1 && PyErr_Occurred())
            return -1;
        if (overflow)
            return 0;
        *h = (uint64_t)x & 0xffffffffffffULL;
        return 1;
    }
    return 0;
}

/* ------------------------------------------------------------ random ids */

/* xoshiro256**: edge ids and roots only need to be unpredictable enough that
 * a partial XOR of a tree is never 0 by chance; seeded from the OS. */
typedef struct {
    uint64_t s[4];
} Rng;

static inline uint64_t
rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

static inline uint64_t
rng_next(Rng *r)
{
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result ? result : 1;
}

static int
rng_seed(Rng *r)
{
    if (_PyOS_URandom(r->s, sizeof(r->s)) < 0)
        return -1;
    if (!(r->s[0] | r->s[1] | r->s[2] | r->s[3]))
        r->s[0] = 1;
    return 0;
}

/* ------------------------------------------------------------ Batch */

typedef struct {
    PyObject_HEAD
    PyObject *stream; /* str */
    PyObject *task;   /* int */
    Py_ssize_t count;
    Buf buf;          /* the entries, without the array header */
} BatchObject;

static PyTypeObject Batch_Type;

static int
Batch_init(BatchObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"stream", "task", NULL};
    PyObject *stream, *task;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "UO!", kwlist, &stream, &PyLong_Type, &task))
        return -1;
    Py_INCREF(stream);
    Py_XSETREF(self->stream, stream);
    Py_INCREF(task);
    Py_XSETREF(self->task, task);
    self->count = 0;
    self->buf.len = 0;
    return 0;
}

static void
Batch_dealloc(BatchObject *self)
{
    Py_XDECREF(self->stream);
    Py_XDECREF(self->task);
    buf_free(&self->buf);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static Py_ssize_t
Batch_len(BatchObject *self)
{
    return self->count;
}

static PyObject *
Batch_take(BatchObject *self, PyObject *unused)
{
    Buf head = {0};
    if (pack_array_header(&head, self->count) < 0)
        return NULL;
    PyObject *body = PyBytes_FromStringAndSize(NULL, head.len + self->buf.len);
    if (body != NULL) {
        memcpy(PyBytes_AS_STRING(body), head.data, head.len);
        if (self->buf.len)
            memcpy(PyBytes_AS_STRING(body) + head.len, self->buf.data, self->buf.len);
        self->count = 0;
        buf_reset(&self->buf);
    }
    buf_free(&head);
    return body;
}

static PyObject *
Batch_get_nbytes(BatchObject *self, void *closure)
{
    return PyLong_FromSsize_t(self->buf.len);
}

static PyObject *
Batch_get_stream(BatchObject *self, void *closure)
{
    return Py_NewRef(self->stream ? self->stream : Py_None);
}

static PyObject *
Batch_get_task(BatchObject *self, void *closure)
{
    return Py_NewRef(self->task ? self->task : Py_None);
}

static PyMethodDef Batch_methods[] = {
    {"take", (PyCFunction)Batch_take, METH_NOARGS,
     "The DATA body of everything held; the batch is empty again."},
    {NULL},
};

static PyGetSetDef Batch_getset[] = {
    {"nbytes", (getter)Batch_get_nbytes, NULL, "bytes of the entries held", NULL},
    {"stream", (getter)Batch_get_stream, NULL, NULL, NULL},
    {"task", (getter)Batch_get_task, NULL, NULL, NULL},
    {NULL},
};

static PySequenceMethods Batch_as_sequence = {.sq_length = (lenfunc)Batch_len};

static PyTypeObject Batch_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "heronpy_lite.instance._cpath.Batch",
    .tp_basicsize = sizeof(BatchObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "The open batch of one destination task: packed entries and their count.",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Batch_init,
    .tp_dealloc = (destructor)Batch_dealloc,
    .tp_methods = Batch_methods,
    .tp_getset = Batch_getset,
    .tp_as_sequence = &Batch_as_sequence,
};

/* ------------------------------------------------------------ Anchors */

typedef struct {
    PyObject_HEAD
    PyObject *flat; /* bytes: the triples as received */
    uint64_t ack_val;
    char done;
} AnchorsObject;

static PyTypeObject Anchors_Type;

static AnchorsObject *
anchors_new(PyObject *flat)
{
    AnchorsObject *a = PyObject_New(AnchorsObject, &Anchors_Type);
    if (a == NULL)
        return NULL;
    a->flat = Py_NewRef(flat);
    a->ack_val = 0;
    a->done = 0;
    return a;
}

static void
Anchors_dealloc(AnchorsObject *self)
{
    Py_XDECREF(self->flat);
    PyObject_Free(self);
}

static PyObject *
Anchors_get_flat(AnchorsObject *self, void *c)
{
    return Py_NewRef(self->flat);
}

static PyObject *
Anchors_get_ack_val(AnchorsObject *self, void *c)
{
    return PyLong_FromUnsignedLongLong(self->ack_val);
}

static int
Anchors_set_ack_val(AnchorsObject *self, PyObject *v, void *c)
{
    if (v == NULL) {
        PyErr_SetString(PyExc_AttributeError, "cannot delete ack_val");
        return -1;
    }
    unsigned long long x = PyLong_AsUnsignedLongLong(v);
    if (x == (unsigned long long)-1 && PyErr_Occurred())
        return -1;
    self->ack_val = x;
    return 0;
}

static PyObject *
Anchors_get_done(AnchorsObject *self, void *c)
{
    return PyBool_FromLong(self->done);
}

static int
Anchors_set_done(AnchorsObject *self, PyObject *v, void *c)
{
    if (v == NULL) {
        PyErr_SetString(PyExc_AttributeError, "cannot delete done");
        return -1;
    }
    int t = PyObject_IsTrue(v);
    if (t < 0)
        return -1;
    self->done = (char)t;
    return 0;
}

static PyGetSetDef Anchors_getset[] = {
    {"flat", (getter)Anchors_get_flat, NULL, "the (spout task, root, edge) triples", NULL},
    {"ack_val", (getter)Anchors_get_ack_val, (setter)Anchors_set_ack_val, NULL, NULL},
    {"done", (getter)Anchors_get_done, (setter)Anchors_set_done, NULL, NULL},
    {NULL},
};

static PyTypeObject Anchors_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "heronpy_lite.instance._cpath.Anchors",
    .tp_basicsize = sizeof(AnchorsObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "HeronTuple.roots at least once: anchors, ack value, acked or failed "
              "(made by deliver_reliable).",
    .tp_dealloc = (destructor)Anchors_dealloc,
    .tp_getset = Anchors_getset,
};

static inline AnchorsObject *
roots_of(PyObject *tup)
{
    if (!PyObject_TypeCheck(tup, HeronTuple_type) || PyTuple_GET_SIZE(tup) < 7)
        return NULL;
    PyObject *roots = PyTuple_GET_ITEM(tup, 6);
    return Py_IS_TYPE(roots, &Anchors_Type) ? (AnchorsObject *)roots : NULL;
}

/* ------------------------------------------------------------ AckOut */

typedef struct {
    uint64_t task;
    Buf init, update, fail; /* u64 little-endian */
} AckTarget;

typedef struct {
    uint64_t root; /* the spout task */
    uint8_t used;
    Py_ssize_t index; /* into targets */
} TaskSlot;

U64_TABLE(TaskIndex, TaskSlot)

#define FEW_TARGETS 8   /* looked up by a scan; more are indexed */
#define MANY_TARGETS 64 /* more than this are forgotten at take() */

typedef struct {
    PyObject_HEAD
    PyObject *complain;
    AckTarget *targets;
    Py_ssize_t ntargets, cap, last;
    TaskIndex index; /* once there are more than FEW_TARGETS */
    int pending;
    long long acked, failed, latency_count;
    double latency_sum;
} AckOutObject;

static PyTypeObject AckOut_Type;

static AckTarget *
ackout_target(AckOutObject *self, uint64_t task)
{
    if (self->last < self->ntargets && self->targets[self->last].task == task)
        return &self->targets[self->last]; /* most acks of a batch go to one spout task */
    if (self->ntargets <= FEW_TARGETS) {
        for (Py_ssize_t i = 0; i < self->ntargets; i++)
            if (self->targets[i].task == task)
                return &self->targets[self->last = i];
    }
    else {
        TaskSlot *slot = TaskIndex_find(&self->index, task, 0);
        if (slot != NULL)
            return &self->targets[self->last = slot->index];
    }
    if (self->ntargets == self->cap) {
        Py_ssize_t cap = self->cap ? self->cap * 2 : 4;
        AckTarget *t = PyMem_Realloc(self->targets, cap * sizeof(AckTarget));
        if (t == NULL) {
            PyErr_NoMemory();
            return NULL;
        }
        self->targets = t;
        self->cap = cap;
    }
    AckTarget *t = &self->targets[self->ntargets];
    memset(t, 0, sizeof(*t));
    t->task = task;
    self->last = self->ntargets++;
    if (self->ntargets > FEW_TARGETS) {
        /* index every target the first time, the new one after */
        for (Py_ssize_t i = self->index.len ? self->ntargets - 1 : 0; i < self->ntargets; i++) {
            TaskSlot *slot = TaskIndex_find(&self->index, self->targets[i].task, 1);
            if (slot == NULL) {
                self->ntargets--;
                return NULL;
            }
            slot->index = i;
        }
    }
    return t;
}

static int
ackout_init(AckOutObject *self, uint64_t task, uint64_t root, uint64_t value)
{
    AckTarget *t = ackout_target(self, task);
    if (t == NULL || put_u64le(&t->init, root) < 0 || put_u64le(&t->init, value) < 0)
        return -1;
    self->pending = 1;
    return 0;
}

static int
AckOut_init(AckOutObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"complain", NULL};
    PyObject *complain;
    uint64_t seed;
    if (check_configured() < 0 ||
        !PyArg_ParseTupleAndKeywords(args, kwds, "O", kwlist, &complain) ||
        _PyOS_URandom(&seed, sizeof(seed)) < 0)
        return -1;
    TaskIndex_seed(&self->index, seed);
    Py_INCREF(complain);
    Py_XSETREF(self->complain, complain);
    return 0;
}

static int
AckOut_traverse(AckOutObject *self, visitproc visit, void *arg)
{
    Py_VISIT(self->complain);
    return 0;
}

static int
AckOut_clear(AckOutObject *self)
{
    Py_CLEAR(self->complain);
    return 0;
}

static void
ackout_forget_targets(AckOutObject *self)
{
    for (Py_ssize_t i = 0; i < self->ntargets; i++) {
        buf_free(&self->targets[i].init);
        buf_free(&self->targets[i].update);
        buf_free(&self->targets[i].fail);
    }
    PyMem_Free(self->targets);
    self->targets = NULL;
    self->ntargets = self->cap = self->last = 0;
    TaskIndex_free(&self->index);
}

static void
AckOut_dealloc(AckOutObject *self)
{
    PyObject_GC_UnTrack(self);
    AckOut_clear(self);
    ackout_forget_targets(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *
ackout_complain(AckOutObject *self, const char *what, PyObject *tup)
{
    return PyObject_CallFunction(self->complain, "sO", what, tup);
}

static double
wall_clock(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* ack (failing = 0) or fail (1) one input tuple: its roots' updates, or fails,
 * go to their spout tasks. */
static PyObject *
ackout_settle(AckOutObject *self, PyObject *tup, int failing)
{
    if (!PyObject_TypeCheck(tup, HeronTuple_type) || PyTuple_GET_SIZE(tup) < 7)
        return ackout_complain(self, failing ? "fail" : "ack", tup);
    PyObject *roots = PyTuple_GET_ITEM(tup, 6);
    if (Py_IS_TYPE(roots, &Anchors_Type)) {
        AnchorsObject *a = (AnchorsObject *)roots;
        if (a->done)
            return ackout_complain(self, "twice", tup);
        a->done = 1;
        const char *p = PyBytes_AS_STRING(a->flat);
        Py_ssize_t n = PyBytes_GET_SIZE(a->flat) / TRIPLE;
        for (Py_ssize_t i = 0; i < n; i++, p += TRIPLE) {
            AckTarget *t = ackout_target(self, ack_get_u64le(p));
            uint64_t root = ack_get_u64le(p + 8), edge = ack_get_u64le(p + 16);
            int rc;
            if (t == NULL)
                rc = -1;
            else if (failing)
                rc = put_u64le(&t->fail, root);
            else if ((rc = put_u64le(&t->update, root)) == 0)
                rc = put_u64le(&t->update, edge ^ a->ack_val);
            if (rc < 0)
                return NULL;
            self->pending = 1;
        }
    }
    if (failing) {
        self->failed++;
        Py_RETURN_NONE;
    }
    if (!(self->acked % LATENCY_SAMPLE)) {
        double created = PyFloat_AsDouble(PyTuple_GET_ITEM(tup, 5));
        if (created == -1.0 && PyErr_Occurred())
            return NULL;
        self->latency_count++;
        self->latency_sum += wall_clock() - created;
    }
    self->acked++;
    Py_RETURN_NONE;
}

static PyObject *
AckOut_ack(AckOutObject *self, PyObject *tup)
{
    return ackout_settle(self, tup, 0);
}

static PyObject *
AckOut_fail(AckOutObject *self, PyObject *tup)
{
    return ackout_settle(self, tup, 1);
}

/* The acking body (wire/acking.py); acked and failed are empty from a task. */
static PyObject *
ackout_body(AckTarget *t)
{
    const char *data[ACK_PARTS] = {t->init.data, t->update.data, t->fail.data, NULL, NULL};
    Py_ssize_t sizes[ACK_PARTS] = {t->init.len, t->update.len, t->fail.len, 0, 0};
    return ack_body(data, sizes);
}

static PyObject *
AckOut_take(AckOutObject *self, PyObject *unused)
{
    PyObject *out = PyList_New(0);
    if (out == NULL)
        return NULL;
    for (Py_ssize_t i = 0; i < self->ntargets; i++) {
        AckTarget *t = &self->targets[i];
        if (!(t->init.len || t->update.len || t->fail.len))
            continue;
        PyObject *body = ackout_body(t);
        PyObject *item = body ? Py_BuildValue("(KN)", (unsigned long long)t->task, body) : NULL;
        if (item == NULL || PyList_Append(out, item) < 0) {
            Py_XDECREF(item);
            Py_DECREF(out);
            return NULL;
        }
        Py_DECREF(item);
        buf_reset(&t->init);
        buf_reset(&t->update);
        buf_reset(&t->fail);
    }
    self->pending = 0;
    if (self->ntargets > MANY_TARGETS)
        ackout_forget_targets(self); /* a burst of spout tasks: memory follows the burst */
    return out;
}

static int
AckOut_bool(AckOutObject *self)
{
    return self->pending;
}

static PyObject *
AckOut_get(AckOutObject *self, void *which)
{
    switch ((intptr_t)which) {
    case 0:
        return PyLong_FromLongLong(self->acked);
    case 1:
        return PyLong_FromLongLong(self->failed);
    case 2:
        return PyLong_FromLongLong(self->latency_count);
    default:
        return PyFloat_FromDouble(self->latency_sum);
    }
}

static PyMethodDef AckOut_methods[] = {
    {"ack", (PyCFunction)AckOut_ack, METH_O, NULL},
    {"fail", (PyCFunction)AckOut_fail, METH_O, NULL},
    {"take", (PyCFunction)AckOut_take, METH_NOARGS,
     "Each spout task's acking body since the last call."},
    {NULL},
};

static PyGetSetDef AckOut_getset[] = {
    {"acked", (getter)AckOut_get, NULL, NULL, (void *)0},
    {"failed", (getter)AckOut_get, NULL, NULL, (void *)1},
    {"latency_count", (getter)AckOut_get, NULL, NULL, (void *)2},
    {"latency_sum", (getter)AckOut_get, NULL, NULL, (void *)3},
    {NULL},
};

static PyNumberMethods AckOut_as_number = {.nb_bool = (inquiry)AckOut_bool};

static PyTypeObject AckOut_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "heronpy_lite.instance._cpath.AckOut",
    .tp_basicsize = sizeof(AckOutObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "A task's ack/fail and its outgoing acking traffic by spout task.",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)AckOut_init,
    .tp_traverse = (traverseproc)AckOut_traverse,
    .tp_clear = (inquiry)AckOut_clear,
    .tp_dealloc = (destructor)AckOut_dealloc,
    .tp_methods = AckOut_methods,
    .tp_getset = AckOut_getset,
    .tp_as_number = &AckOut_as_number,
};

/* ------------------------------------------------------------ InFlight */

typedef struct {
    uint64_t root;
    uint8_t used;
    double emitted;
    PyObject *tup_id; /* owned */
} Flight;

U64_TABLE(Flights, Flight)

typedef struct {
    PyObject_HEAD
    Flights table;
} InFlightObject;

static PyTypeObject InFlight_Type;

/* Record a new tree. */
static int
inflight_add(InFlightObject *self, uint64_t root, PyObject *tup_id, double emitted)
{
    Flight *f = Flights_find(&self->table, root, 1);
    if (f == NULL)
        return -1;
    PyObject *old = f->tup_id;
    f->tup_id = Py_NewRef(tup_id);
    f->emitted = emitted;
    Py_XDECREF(old); /* a root drawn twice: the older tree is forgotten */
    return 0;
}

static int
InFlight_traverse(InFlightObject *self, visitproc visit, void *arg)
{
    for (size_t i = 0; i < self->table.cap; i++)
        if (self->table.slots[i].used)
            Py_VISIT(self->table.slots[i].tup_id);
    return 0;
}

static int
InFlight_clear(InFlightObject *self)
{
    Flights table = self->table;
    memset(&self->table, 0, sizeof(self->table));
    Flights_seed(&self->table, table.seed);
    for (size_t i = 0; i < table.cap; i++)
        if (table.slots[i].used)
            Py_DECREF(table.slots[i].tup_id);
    Flights_free(&table);
    return 0;
}

static void
InFlight_dealloc(InFlightObject *self)
{
    PyObject_GC_UnTrack(self);
    InFlight_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static Py_ssize_t
InFlight_len(InFlightObject *self)
{
    return (Py_ssize_t)self->table.len;
}

static PyObject *
InFlight_add(InFlightObject *self, PyObject *args)
{
    unsigned long long root;
    PyObject *tup_id;
    double emitted;
    if (!PyArg_ParseTuple(args, "KOd:add", &root, &tup_id, &emitted))
        return NULL;
    if (inflight_add(self, root, tup_id, emitted) < 0)
        return NULL;
    Py_RETURN_NONE;
}

/* Remove root's tree: its id appended to ids, its age added to *latency. */
static int
inflight_take(InFlightObject *self, uint64_t root, PyObject *ids, double now, double *latency)
{
    Flight *f = Flights_find(&self->table, root, 0);
    if (f == NULL)
        return 0;
    PyObject *tup_id = f->tup_id;
    double emitted = f->emitted;
    Flights_remove(&self->table, f);
    int rc = PyList_Append(ids, tup_id);
    if (latency != NULL)
        *latency += now - emitted;
    Py_DECREF(tup_id);
    return rc;
}

static PyObject *
InFlight_resolve(InFlightObject *self, PyObject *args)
{
    Py_buffer body;
    double now;
    if (check_configured() < 0 || !PyArg_ParseTuple(args, "y*d:resolve", &body, &now))
        return NULL;
    AckPart parts[ACK_PARTS];
    PyObject *acked = NULL, *failed = NULL, *result = NULL;
    double latency = 0;
    if (ack_parse_body(body.buf, body.len, parts) < 0) {
        PyErr_SetString(RemoteProtocolError, "malformed acking body");
        goto done;
    }
    if ((acked = PyList_New(0)) == NULL || (failed = PyList_New(0)) == NULL)
        goto done;
    for (Py_ssize_t i = 0; i < parts[ACK_ACKED].n; i++)
        if (inflight_take(self, ack_get_u64le(parts[ACK_ACKED].data + 8 * i), acked, now,
                          &latency) < 0)
            goto done;
    for (Py_ssize_t i = 0; i < parts[ACK_FAILED].n; i++)
        if (inflight_take(self, ack_get_u64le(parts[ACK_FAILED].data + 8 * i), failed, now,
                          NULL) < 0)
            goto done;
    result = Py_BuildValue("(OdO)", acked, latency, failed);
done:
    Py_XDECREF(acked);
    Py_XDECREF(failed);
    PyBuffer_Release(&body);
    return result;
}

static PyObject *
InFlight_expire(InFlightObject *self, PyObject *arg)
{
    double deadline = PyFloat_AsDouble(arg);
    if (deadline == -1.0 && PyErr_Occurred())
        return NULL;
    PyObject *ids = PyList_New(0);
    for (size_t i = 0; ids != NULL && i < self->table.cap;) {
        Flight *f = &self->table.slots[i];
        if (f->used && f->emitted < deadline) {
            /* the backward shift may move an unseen entry into slot i: look again */
            if (inflight_take(self, f->root, ids, 0, NULL) < 0)
                Py_CLEAR(ids);
            continue;
        }
        i++;
    }
    return ids;
}

static PyObject *
InFlight_clear_method(InFlightObject *self, PyObject *unused)
{
    InFlight_clear(self);
    Py_RETURN_NONE;
}

static PyObject *
InFlight_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    InFlightObject *self = (InFlightObject *)type->tp_alloc(type, 0);
    uint64_t seed;
    if (self != NULL && _PyOS_URandom(&seed, sizeof(seed)) < 0)
        Py_CLEAR(self);
    if (self != NULL)
        Flights_seed(&self->table, seed);
    return (PyObject *)self;
}

static PyMethodDef InFlight_methods[] = {
    {"add", (PyCFunction)InFlight_add, METH_VARARGS, "add(root, tup_id, emitted): a new tree"},
    {"resolve", (PyCFunction)InFlight_resolve, METH_VARARGS,
     "resolve(body, now) -> (acked ids, their summed latency, failed ids)"},
    {"expire", (PyCFunction)InFlight_expire, METH_O,
     "expire(deadline) -> ids of the trees emitted before deadline, removed"},
    {"clear", (PyCFunction)InFlight_clear_method, METH_NOARGS, NULL},
    {NULL},
};

static PySequenceMethods InFlight_as_sequence = {.sq_length = (lenfunc)InFlight_len};

static PyTypeObject InFlight_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "heronpy_lite.instance._cpath.InFlight",
    .tp_basicsize = sizeof(InFlightObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "A spout's trees in flight: root -> (tuple id, emitted at).",
    .tp_new = InFlight_new,
    .tp_traverse = (traverseproc)InFlight_traverse,
    .tp_clear = (inquiry)InFlight_clear,
    .tp_dealloc = (destructor)InFlight_dealloc,
    .tp_methods = InFlight_methods,
    .tp_as_sequence = &InFlight_as_sequence,
};

/* ------------------------------------------------------------ Emitter */

enum { R_ONE, R_SHUFFLE, R_ALL, R_FIELDS };

typedef struct {
    int kind;
    Py_ssize_t n;
    BatchObject **batches; /* owned */
    Py_ssize_t next;       /* shuffle */
    Py_ssize_t nkeys;
    Py_ssize_t *keys;      /* fields: value indexes */
    PyObject *choose;      /* fields: Route.choose(values, None), for keys not hashed here */
    PyObject *by_task;     /* {task: Batch} */
} Route;

typedef struct {
    PyObject *name;
    Py_ssize_t arity;
    Py_ssize_t max_entry;
    Py_ssize_t nroutes; /* -1: the stream needs `general` */
    Route *routes;
    long long count;
} StreamOut;

typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall;
    Py_ssize_t nstreams;
    StreamOut *streams;
    PyObject *general, *flush_one, *flush_all, *component;
    PyObject *immediate, *in_flight, *clock, *anchor_done, *monotonic;
    AckOutObject *acks;
    Py_ssize_t limit, batch_max_bytes, pending_bytes;
    long long count, rejected;
    int bolt, reliable, busy;
    uint64_t task_id;
    uint64_t next_root; /* roots: consecutive from a random start (see _u64_table.h) */
    Rng rng;
    Buf scratch;   /* the packed values of the emit in progress */
    Buf anchors;   /* the anchors of one copy */
    Buf pending;   /* (Anchors *, edge) of one copy, applied once its entry fits */
    BatchObject **chosen;
    Py_ssize_t nchosen, chosen_cap;
} EmitterObject;

static PyTypeObject Emitter_Type;

static void
route_clear(Route *r)
{
    for (Py_ssize_t i = 0; i < r->n; i++)
        Py_XDECREF(r->batches[i]);
    PyMem_Free(r->batches);
    PyMem_Free(r->keys);
    Py_XDECREF(r->choose);
    Py_XDECREF(r->by_task);
    memset(r, 0, sizeof(*r));
}

static void
streams_clear(EmitterObject *self)
{
    for (Py_ssize_t i = 0; i < self->nstreams; i++) {
        StreamOut *s = &self->streams[i];
        for (Py_ssize_t j = 0; j < s->nroutes; j++)
            route_clear(&s->routes[j]);
        PyMem_Free(s->routes);
        Py_XDECREF(s->name);
    }
    PyMem_Free(self->streams);
    self->streams = NULL;
    self->nstreams = 0;
}

static int
parse_route(Route *r, PyObject *spec)
{
    PyObject *kind, *batches, *keys, *choose, *by_task;
    if (!PyArg_ParseTuple(spec, "UO!O!OO!", &kind, &PyList_Type, &batches, &PyList_Type, &keys,
                          &choose, &PyDict_Type, &by_task))
        return -1;
    if (PyUnicode_CompareWithASCIIString(kind, "one") == 0)
        r->kind = R_ONE;
    else if (PyUnicode_CompareWithASCIIString(kind, "shuffle") == 0)
        r->kind = R_SHUFFLE;
    else if (PyUnicode_CompareWithASCIIString(kind, "all") == 0)
        r->kind = R_ALL;
    else if (PyUnicode_CompareWithASCIIString(kind, "fields") == 0)
        r->kind = R_FIELDS;
    else {
        PyErr_Format(PyExc_ValueError, "unknown route kind %R", kind);
        return -1;
    }
    r->n = PyList_GET_SIZE(batches);
    if (r->n == 0 && r->kind != R_ALL) {
        PyErr_SetString(PyExc_ValueError, "a route needs at least one batch");
        return -1;
    }
    r->batches = PyMem_Calloc(r->n ? r->n : 1, sizeof(BatchObject *));
    r->nkeys = PyList_GET_SIZE(keys);
    r->keys = PyMem_Calloc(r->nkeys ? r->nkeys : 1, sizeof(Py_ssize_t));
    if (r->batches == NULL || r->keys == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    for (Py_ssize_t i = 0; i < r->n; i++) {
        PyObject *b = PyList_GET_ITEM(batches, i);
        if (!Py_IS_TYPE(b, &Batch_Type)) {
            PyErr_SetString(PyExc_TypeError, "route batches must be _cpath.Batch objects");
            return -1;
        }
        r->batches[i] = (BatchObject *)Py_NewRef(b);
    }
    for (Py_ssize_t i = 0; i < r->nkeys; i++) {
        r->keys[i] = PyLong_AsSsize_t(PyList_GET_ITEM(keys, i));
        if (r->keys[i] == -1 && PyErr_Occurred())
            return -1;
    }
    if (r->kind == R_FIELDS && r->nkeys == 0) {
        PyErr_SetString(PyExc_ValueError, "a fields route needs key indexes");
        return -1;
    }
    r->choose = Py_NewRef(choose);
    r->by_task = Py_NewRef(by_task);
    return 0;
}

static int
Emitter_init(EmitterObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"streams", "general", "flush_one", "flush_all", "component",
                             "batch_max_tuples", "batch_max_bytes", "bolt", "reliable",
                             "task_id", "immediate", "in_flight", "acks", "clock",
                             "anchor_done", NULL};
    PyObject *streams, *general, *flush_one, *flush_all, *component, *immediate, *in_flight;
    PyObject *acks, *clock, *anchor_done;
    Py_ssize_t limit, batch_max_bytes;
    int bolt, reliable;
    unsigned long long task_id;
    if (check_configured() < 0)
        return -1;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O!OOOUnnppKOO!O!OO", kwlist, &PyList_Type,
                                     &streams, &general, &flush_one, &flush_all, &component,
                                     &limit, &batch_max_bytes, &bolt, &reliable, &task_id,
                                     &immediate, &InFlight_Type, &in_flight, &AckOut_Type, &acks,
                                     &clock, &anchor_done))
        return -1;
    if (self->streams != NULL) {
        PyErr_SetString(PyExc_RuntimeError, "Emitter is initialized once");
        return -1;
    }
    if (limit < 1) {
        PyErr_SetString(PyExc_ValueError, "batch_max_tuples must be at least 1");
        return -1;
    }
    if (immediate != Py_None && !PyList_Check(immediate)) {
        PyErr_SetString(PyExc_TypeError, "immediate is a list or None");
        return -1;
    }
    /* streams are installed last: a half-initialized emitter routes nothing */
    Py_ssize_t n = PyList_GET_SIZE(streams);
    EmitterObject parsed = {0};
    parsed.streams = PyMem_Calloc(n ? n : 1, sizeof(StreamOut));
    if (parsed.streams == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    parsed.nstreams = n;
    for (Py_ssize_t i = 0; i < n; i++) {
        StreamOut *s = &parsed.streams[i];
        PyObject *name, *routes;
        s->nroutes = -1;
        if (!PyArg_ParseTuple(PyList_GET_ITEM(streams, i), "UnnO", &name, &s->arity,
                              &s->max_entry, &routes))
            goto fail;
        s->name = Py_NewRef(name);
        if (routes == Py_None)
            continue;
        if (!PyList_Check(routes)) {
            PyErr_SetString(PyExc_TypeError, "routes is a list or None");
            goto fail;
        }
        s->routes = PyMem_Calloc(PyList_GET_SIZE(routes) + 1, sizeof(Route));
        if (s->routes == NULL) {
            PyErr_NoMemory();
            goto fail;
        }
        s->nroutes = 0;
        for (Py_ssize_t j = 0; j < PyList_GET_SIZE(routes); j++) {
            s->nroutes = j + 1;
            if (parse_route(&s->routes[j], PyList_GET_ITEM(routes, j)) < 0)
                goto fail;
        }
        for (Py_ssize_t j = 0; j < s->nroutes; j++)
            if (s->routes[j].n)
                s->routes[j].next = (Py_ssize_t)(rng_next(&self->rng) % s->routes[j].n);
    }
    self->general = Py_NewRef(general);
    self->flush_one = Py_NewRef(flush_one);
    self->flush_all = Py_NewRef(flush_all);
    self->component = Py_NewRef(component);
    self->immediate = immediate == Py_None ? NULL : Py_NewRef(immediate);
    self->in_flight = Py_NewRef(in_flight);
    self->acks = (AckOutObject *)Py_NewRef(acks);
    self->clock = Py_NewRef(clock);
    self->anchor_done = Py_NewRef(anchor_done);
    self->limit = limit;
    self->batch_max_bytes = batch_max_bytes;
    self->bolt = bolt;
    self->reliable = reliable;
    self->task_id = task_id;
    self->streams = parsed.streams;
    self->nstreams = parsed.nstreams;
    return 0;

fail:
    streams_clear(&parsed);
    return -1;
}

static PyObject *Emitter_vectorcall(PyObject *, PyObject *const *, size_t, PyObject *);

static PyObject *
Emitter_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    EmitterObject *self = (EmitterObject *)type->tp_alloc(type, 0);
    if (self == NULL)
        return NULL;
    self->vectorcall = Emitter_vectorcall;
    if (rng_seed(&self->rng) < 0) {
        Py_DECREF(self);
        return NULL;
    }
    self->next_root = rng_next(&self->rng);
    PyObject *time = PyImport_ImportModule("time");
    if (time != NULL) {
        self->monotonic = PyObject_GetAttrString(time, "monotonic");
        Py_DECREF(time);
    }
    if (self->monotonic == NULL) {
        Py_DECREF(self);
        return NULL;
    }
    return (PyObject *)self;
}

static int
Emitter_traverse(EmitterObject *self, visitproc visit, void *arg)
{
    for (Py_ssize_t i = 0; i < self->nstreams; i++) {
        StreamOut *s = &self->streams[i];
        for (Py_ssize_t j = 0; j < s->nroutes; j++) {
            Route *r = &s->routes[j];
            for (Py_ssize_t k = 0; k < r->n; k++)
                Py_VISIT(r->batches[k]);
            Py_VISIT(r->choose);
            Py_VISIT(r->by_task);
        }
    }
    Py_VISIT(self->general);
    Py_VISIT(self->flush_one);
    Py_VISIT(self->flush_all);
    Py_VISIT(self->immediate);
    Py_VISIT(self->in_flight);
    Py_VISIT(self->acks);
    Py_VISIT(self->clock);
    Py_VISIT(self->anchor_done);
    return 0;
}

static int
Emitter_clear(EmitterObject *self)
{
    streams_clear(self);
    Py_CLEAR(self->general);
    Py_CLEAR(self->flush_one);
    Py_CLEAR(self->flush_all);
    Py_CLEAR(self->component);
    Py_CLEAR(self->immediate);
    Py_CLEAR(self->in_flight);
    Py_CLEAR(self->acks);
    Py_CLEAR(self->clock);
    Py_CLEAR(self->anchor_done);
    Py_CLEAR(self->monotonic);
    return 0;
}

static void
Emitter_dealloc(EmitterObject *self)
{
    PyObject_GC_UnTrack(self);
    Emitter_clear(self);
    buf_free(&self->scratch);
    buf_free(&self->anchors);
    buf_free(&self->pending);
    PyMem_Free(self->chosen);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static StreamOut *
find_stream(EmitterObject *self, PyObject *name)
{
    for (Py_ssize_t i = 0; i < self->nstreams; i++)
        if (self->streams[i].name == name)
            return &self->streams[i];
    if (!PyUnicode_Check(name))
        return NULL;
    for (Py_ssize_t i = 0; i < self->nstreams; i++)
        if (PyUnicode_Compare(self->streams[i].name, name) == 0)
            return &self->streams[i];
    return NULL;
}

static int
choose_add(EmitterObject *self, BatchObject *b)
{
    if (self->nchosen == self->chosen_cap) {
        Py_ssize_t cap = self->chosen_cap ? self->chosen_cap * 2 : 8;
        BatchObject **p = PyMem_Realloc(self->chosen, cap * sizeof(BatchObject *));
        if (p == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        self->chosen = p;
        self->chosen_cap = cap;
    }
    self->chosen[self->nchosen++] = b; /* borrowed: the routes own them */
    return 0;
}

/* The values of one emit, as they were at the call: routing and packing can
 * run Python code (a route's choose, msgpack on a subclass), which could
 * change a list under them. A tuple cannot change; a list's items are held. */
typedef struct {
    PyObject **items;
    Py_ssize_t n;
    int held;
    PyObject *few[8];
} Values;

static int
values_take(Values *v, PyObject *tup)
{
    v->n = Py_SIZE(tup);
    v->held = PyList_Check(tup);
    if (!v->held) {
        v->items = ((PyTupleObject *)tup)->ob_item;
        return 0;
    }
    v->items = v->n <= 8 ? v->few : PyMem_Malloc(v->n * sizeof(PyObject *));
    if (v->items == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    for (Py_ssize_t i = 0; i < v->n; i++)
        v->items[i] = Py_NewRef(PyList_GET_ITEM(tup, i));
    return 0;
}

static void
values_release(Values *v)
{
    if (!v->held)
        return;
    for (Py_ssize_t i = 0; i < v->n; i++)
        Py_DECREF(v->items[i]);
    if (v->items != v->few)
        PyMem_Free(v->items);
}

static int
choose_by_fields(EmitterObject *self, Route *r, PyObject *tup, Values *v)
{
    PyObject *const *items = v->items;
    uint64_t h = 0;
    int native = 1;
    for (Py_ssize_t i = 0; i < r->nkeys && native; i++) {
        uint64_t one = 0;
        int rc = stable_hash(items[r->keys[i]], &one);
        if (rc < 0)
            return -1;
        native = rc;
        h = r->nkeys == 1 ? one : ((h * 31 + one) & 0xffffffffffffULL);
    }
    if (native)
        return choose_add(self, r->batches[h % (uint64_t)r->n]);
    /* a key not hashed here: the route decides, as the general path would */
    PyObject *chosen = PyObject_CallFunctionObjArgs(r->choose, tup, Py_None, NULL);
    if (chosen == NULL)
        return -1;
    int rc = -1;
    if (PyList_Check(chosen) && PyList_GET_SIZE(chosen) == 1) {
        PyObject *b = PyDict_GetItemWithError(r->by_task, PyList_GET_ITEM(chosen, 0));
        if (b != NULL && Py_IS_TYPE(b, &Batch_Type))
            rc = choose_add(self, (BatchObject *)b);
        else if (!PyErr_Occurred())
            PyErr_SetString(PyExc_RuntimeError, "fields route chose a task it has no batch for");
    }
    else
        PyErr_SetString(PyExc_RuntimeError, "fields route must choose exactly one task");
    Py_DECREF(chosen);
    return rc;
}

static PyObject *
emit_error(const char *format, ...)
{
    va_list va;
    va_start(va, format);
    PyObject *message = PyUnicode_FromFormatV(format, va);
    va_end(va);
    if (message != NULL) {
        PyErr_SetObject(EmitError, message);
        Py_DECREF(message);
    }
    return NULL;
}

static int
refuse_size(EmitterObject *self, StreamOut *s, Py_ssize_t size)
{
    self->rejected++;
    emit_error("%U emits a tuple of %zd bytes on stream %R; the limit is %zd "
               "(heron.wire.max.frame.bytes)",
               self->component, size, s->name, s->max_entry);
    return -1;
}

/* Pack the values into self->scratch (no array header). On a packing error,
 * raise EmitError from it. */
static int
pack_values(EmitterObject *self, StreamOut *s, Values *v)
{
    Buf *b = &self->scratch;
    b->len = 0;
    /* as deep as they will be in the body (batch array, entry array), so that a
     * value too deep for the receiver's unpacker is refused here, not there */
    if (pack_items(b, v->items, v->n, VALUE_DEPTH) == 0)
        return 0;
    if (!PyErr_ExceptionMatches(PyExc_TypeError) && !PyErr_ExceptionMatches(PyExc_ValueError) &&
        !PyErr_ExceptionMatches(PyExc_OverflowError))
        return -1;
    PyObject *cause = take_exception();
    self->rejected++;
    emit_error("values on stream %R are not msgpack-serializable: %S", s->name, cause);
    PyObject *refusal = take_exception();
    if (refusal != NULL) {
        PyException_SetCause(refusal, Py_NewRef(cause));
        PyException_SetContext(refusal, Py_NewRef(cause));
        PyErr_SetObject((PyObject *)Py_TYPE(refusal), refusal);
        Py_DECREF(refusal);
    }
    Py_XDECREF(cause);
    return -1;
}

static inline Py_ssize_t
array_header_size(Py_ssize_t n)
{
    return n < 16 ? 1 : n < 0x10000 ? 3 : 5;
}

static inline Py_ssize_t
bin_header_size(Py_ssize_t n)
{
    return n < 256 ? 2 : n < 0x10000 ? 3 : 5;
}

static inline Py_ssize_t
entry_size(EmitterObject *self, StreamOut *s, Py_ssize_t alen)
{
    return array_header_size(s->arity + self->reliable) + self->scratch.len +
           (self->reliable ? bin_header_size(alen) + alen : 0);
}

static int
flush_batch(EmitterObject *self, BatchObject *b)
{
    PyObject *r = PyObject_CallOneArg(self->flush_one, (PyObject *)b);
    Py_XDECREF(r);
    return r ? 0 : -1;
}

/* Add one copy's entry, [*values] or, at least once, [*values, anchors], of
 * `size` bytes to b: the batch is flushed first if the frame would overflow,
 * and after if it is full. */
static int
append_entry(EmitterObject *self, BatchObject *b, StreamOut *s, const char *anchors,
             Py_ssize_t alen, Py_ssize_t size)
{
    if (b->count && b->buf.len + size > s->max_entry && flush_batch(self, b) < 0)
        return -1;
    Buf *out = &b->buf;
    if (buf_reserve(out, size) < 0) /* then nothing below can fail */
        return -1;
    pack_array_header(out, s->arity + (self->reliable ? 1 : 0));
    put(out, self->scratch.data, self->scratch.len);
    if (self->reliable) {
        pack_bin_header(out, alen);
        if (alen)
            put(out, anchors, alen);
    }
    if (++b->count >= self->limit)
        return flush_batch(self, b);
    return 0;
}

static double
monotonic_now(EmitterObject *self, int *error)
{
    if (self->clock == self->monotonic) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
    }
    PyObject *r = PyObject_CallNoArgs(self->clock);
    double now = r ? PyFloat_AsDouble(r) : -1.0;
    Py_XDECREF(r);
    *error = now == -1.0 && PyErr_Occurred();
    return now;
}

/* A bolt's anchored copy: a fresh edge per input tuple with Anchors, XORed
 * into the new tuple's id for each of its roots (triples with the same spout
 * task and root merge, in first-seen order) and, by apply_pending once the
 * entry is known to fit, into that input's ack value. */
typedef struct {
    AnchorsObject *anchors; /* held */
    uint64_t edge;
} Pending;

#define FEW_TRIPLES 16 /* merged by a scan; more through a dict */

static void
settle_pending(EmitterObject *self, int apply)
{
    Pending *p = (Pending *)self->pending.data;
    for (Py_ssize_t i = 0; i < self->pending.len / (Py_ssize_t)sizeof(Pending); i++) {
        if (apply)
            p[i].anchors->ack_val ^= p[i].edge;
        Py_DECREF(p[i].anchors);
    }
    self->pending.len = 0;
}

/* the offset of (task, root) in b, -1 if absent; index: {(task, root): offset} or NULL */
static Py_ssize_t
find_triple(Buf *b, PyObject *index, const char *p, PyObject **key)
{
    *key = NULL;
    if (index == NULL) {
        for (Py_ssize_t at = 0; at < b->len; at += TRIPLE)
            if (memcmp(b->data + at, p, 16) == 0)
                return at;
        return -1;
    }
    *key = Py_BuildValue("(KK)", (unsigned long long)ack_get_u64le(p),
                         (unsigned long long)ack_get_u64le(p + 8));
    if (*key == NULL)
        return -2;
    PyObject *at = PyDict_GetItemWithError(index, *key);
    if (at == NULL)
        return PyErr_Occurred() ? -2 : -1;
    return PyLong_AsSsize_t(at);
}

static int
index_triple(PyObject *index, PyObject *key, const char *p, Py_ssize_t at)
{
    PyObject *k = key ? Py_NewRef(key)
                      : Py_BuildValue("(KK)", (unsigned long long)ack_get_u64le(p),
                                      (unsigned long long)ack_get_u64le(p + 8));
    PyObject *v = k ? PyLong_FromSsize_t(at) : NULL;
    int rc = v ? PyDict_SetItem(index, k, v) : -1;
    Py_XDECREF(k);
    Py_XDECREF(v);
    return rc;
}

static int
anchor_copy(EmitterObject *self, PyObject *anchors)
{
    Buf *b = &self->anchors;
    b->len = 0;
    settle_pending(self, 0);
    PyObject *seq = PySequence_Fast(anchors, "anchors must be a list or tuple");
    if (seq == NULL)
        return -1;
    PyObject *index = NULL;
    int rc = 0;
    for (Py_ssize_t i = 0; rc == 0 && i < PySequence_Fast_GET_SIZE(seq); i++) {
        AnchorsObject *a = roots_of(PySequence_Fast_GET_ITEM(seq, i));
        if (a == NULL)
            continue;
        if (a->done) {
            PyObject *r = PyObject_CallNoArgs(self->anchor_done);
            rc = r ? 0 : -1;
            Py_XDECREF(r);
            continue;
        }
        uint64_t edge = rng_next(&self->rng);
        Pending pending = {(AnchorsObject *)Py_NewRef(a), edge};
        if (put(&self->pending, &pending, sizeof(pending)) < 0) {
            Py_DECREF(a);
            rc = -1;
            break;
        }
        const char *p = PyBytes_AS_STRING(a->flat);
        Py_ssize_t n = PyBytes_GET_SIZE(a->flat) / TRIPLE;
        for (Py_ssize_t k = 0; rc == 0 && k < n; k++, p += TRIPLE) {
            PyObject *key;
            Py_ssize_t at = find_triple(b, index, p, &key);
            if (at >= 0)
                ack_put_u64le(b->data + at + 16, ack_get_u64le(b->data + at + 16) ^ edge);
            else if (at == -2 || buf_reserve(b, TRIPLE) < 0)
                rc = -1;
            else {
                at = b->len;
                memcpy(b->data + at, p, 16);
                ack_put_u64le(b->data + at + 16, edge);
                b->len += TRIPLE;
                if (index != NULL)
                    rc = index_triple(index, key, p, at);
                else if (b->len / TRIPLE > FEW_TRIPLES) { /* many: index them all */
                    index = PyDict_New();
                    for (Py_ssize_t off = 0; index != NULL && rc == 0 && off < b->len;
                         off += TRIPLE)
                        rc = index_triple(index, NULL, b->data + off, off);
                    if (index == NULL)
                        rc = -1;
                }
            }
            Py_XDECREF(key);
        }
    }
    Py_XDECREF(index);
    Py_DECREF(seq);
    if (rc < 0)
        settle_pending(self, 0);
    return rc;
}

/* Pack the values once, then add one entry per chosen batch (self->chosen);
 * start or extend the tree at least once; count. */
static int
emitter_send_values(EmitterObject *self, StreamOut *s, Values *v, PyObject *tup_id,
                    PyObject *anchors)
{
    int spout = self->immediate != NULL;
    Py_ssize_t copies = self->nchosen;
    if (pack_values(self, s, v) < 0)
        return -1;
    int tree = self->reliable && spout && tup_id != Py_None;
    int anchored = self->reliable && !spout && anchors != Py_None;
    if (anchored) {
        int t = PyObject_IsTrue(anchors);
        if (t < 0)
            return -1;
        anchored = t;
    }
    /* every copy has this size but an anchored one, whose anchors are counted below */
    Py_ssize_t size = entry_size(self, s, tree ? TRIPLE : 0);
    if (size > s->max_entry && !anchored)
        return refuse_size(self, s, size);
    uint64_t root = 0, xor = 0, few[8], *edges = few;
    if (tree && copies) {
        /* the tree's init goes out before any of its tuples can (a flush of a
         * full batch below sends the acking traffic first) */
        if (copies > 8 && (edges = PyMem_Malloc(copies * sizeof(uint64_t))) == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        root = self->next_root++;
        for (Py_ssize_t i = 0; i < copies; i++)
            xor ^= (edges[i] = rng_next(&self->rng));
        int error = 0;
        double now = monotonic_now(self, &error);
        int rc = error ? -1 : inflight_add((InFlightObject *)self->in_flight, root, tup_id, now);
        if (rc == 0)
            rc = ackout_init(self->acks, self->task_id, root, xor);
        if (rc < 0) {
            if (edges != few)
                PyMem_Free(edges);
            return -1;
        }
    }
    else if ((tree || !self->reliable) && spout && tup_id != Py_None) {
        /* at most once heronpy acks at once; at least once with no consumer the
         * tree is complete already */
        if (PyList_Append(self->immediate, tup_id) < 0)
            return -1;
    }
    Py_ssize_t total = 0;
    int rc = 0;
    for (Py_ssize_t i = 0; rc == 0 && i < copies; i++) {
        char triple[TRIPLE];
        const char *ap = NULL;
        Py_ssize_t al = 0;
        if (tree) {
            ack_put_u64le(triple, self->task_id);
            ack_put_u64le(triple + 8, root);
            ack_put_u64le(triple + 16, edges[i]);
            ap = triple;
            al = TRIPLE;
        }
        else if (anchored) {
            if (anchor_copy(self, anchors) < 0) {
                rc = -1;
                break;
            }
            ap = self->anchors.data;
            al = self->anchors.len;
            size = entry_size(self, s, al);
            if (size > s->max_entry)
                rc = refuse_size(self, s, size);
            settle_pending(self, rc == 0); /* a refused copy leaves its inputs untouched */
            if (rc < 0)
                break;
        }
        BatchObject *b = (BatchObject *)Py_NewRef(self->chosen[i]);
        rc = append_entry(self, b, s, ap, al, size);
        Py_DECREF(b);
        total += size;
    }
    /* a huge tuple's buffers are not kept */
    buf_reset(&self->scratch);
    buf_reset(&self->anchors);
    if (edges != few)
        PyMem_Free(edges);
    if (rc < 0)
        return -1;
    s->count++;
    self->count++;
    self->pending_bytes += total;
    if (self->pending_bytes > self->batch_max_bytes) {
        PyObject *r = PyObject_CallNoArgs(self->flush_all);
        if (r == NULL)
            return -1;
        Py_DECREF(r);
    }
    return 0;
}

/* emitter_send_values, marked busy: a route, a packer or a flush that runs Python
 * code and emits again goes to the general path instead of into this state. */
static int
emitter_send(EmitterObject *self, StreamOut *s, Values *v, PyObject *tup_id, PyObject *anchors)
{
    self->busy = 1;
    int rc = emitter_send_values(self, s, v, tup_id, anchors);
    self->busy = 0;
    return rc;
}

enum { A_TUP_ID, A_STREAM, A_DIRECT_TASK, A_NEED_TASK_IDS, A_ANCHORS, A_COUNT };

static int
keyword_slot(PyObject *k)
{
    PyObject *names[A_COUNT] = {s_tup_id, s_stream, s_direct_task, s_need_task_ids, s_anchors};
    for (int i = 0; i < A_COUNT; i++)
        if (k == names[i])
            return i;
    for (int i = 0; i < A_COUNT; i++)
        if (PyUnicode_Compare(k, names[i]) == 0)
            return i;
    PyErr_Clear();
    return -1;
}

static PyObject *
tasks_of_chosen(EmitterObject *self)
{
    PyObject *tasks = PyList_New(self->nchosen);
    if (tasks == NULL)
        return NULL;
    for (Py_ssize_t i = 0; i < self->nchosen; i++)
        PyList_SET_ITEM(tasks, i, Py_NewRef(self->chosen[i]->task));
    return tasks;
}

static PyObject *
Emitter_vectorcall(PyObject *op, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    static const int spout_order[] = {A_TUP_ID, A_STREAM, A_DIRECT_TASK, A_NEED_TASK_IDS,
                                      A_ANCHORS};
    static const int bolt_order[] = {A_STREAM, A_ANCHORS, A_DIRECT_TASK, A_NEED_TASK_IDS,
                                     A_TUP_ID};
    EmitterObject *self = (EmitterObject *)op;
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    PyObject *a[A_COUNT] = {Py_None, s_default, Py_None, Py_False, Py_None};
    int seen = 0;
    if (nargs < 1 || nargs > 1 + A_COUNT || self->busy || self->streams == NULL)
        goto general;
    const int *order = self->bolt ? bolt_order : spout_order;
    for (Py_ssize_t i = 1; i < nargs; i++) {
        a[order[i - 1]] = args[i];
        seen |= 1 << order[i - 1];
    }
    if (kwnames != NULL) {
        for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(kwnames); i++) {
            int slot = keyword_slot(PyTuple_GET_ITEM(kwnames, i));
            if (slot < 0 || seen & (1 << slot))
                goto general; /* Python raises the right TypeError */
            a[slot] = args[nargs + i];
            seen |= 1 << slot;
        }
    }
    PyObject *tup = args[0];
    StreamOut *s = find_stream(self, a[A_STREAM]);
    if (s == NULL || s->nroutes < 0 || a[A_DIRECT_TASK] != Py_None ||
        !(PyList_CheckExact(tup) || PyTuple_CheckExact(tup)))
        goto general;
    if (self->reliable && !self->immediate && a[A_ANCHORS] != Py_None &&
        !PyList_CheckExact(a[A_ANCHORS]) && !PyTuple_CheckExact(a[A_ANCHORS]))
        goto general;
    Py_ssize_t size = Py_SIZE(tup);
    if (size != s->arity)
        return emit_error("%U emits %zd values on stream %R, which declares %zd fields",
                          self->component, size, s->name, s->arity);
    int need = PyObject_IsTrue(a[A_NEED_TASK_IDS]);
    if (need < 0)
        return NULL;
    Values v;
    if (values_take(&v, tup) < 0)
        return NULL;
    PyObject *result = NULL;
    self->nchosen = 0;
    for (Py_ssize_t i = 0; i < s->nroutes; i++) {
        Route *r = &s->routes[i];
        int rc = 0;
        switch (r->kind) {
        case R_ONE:
            rc = choose_add(self, r->batches[0]);
            break;
        case R_SHUFFLE:
            rc = choose_add(self, r->batches[r->next]);
            r->next = r->next + 1 < r->n ? r->next + 1 : 0;
            break;
        case R_ALL:
            for (Py_ssize_t k = 0; rc == 0 && k < r->n; k++)
                rc = choose_add(self, r->batches[k]);
            break;
        default:
            self->busy = 1;
            rc = choose_by_fields(self, r, tup, &v);
            self->busy = 0;
        }
        if (rc < 0)
            goto done;
    }
    PyObject *tasks = need ? tasks_of_chosen(self) : NULL;
    if (need && tasks == NULL)
        goto done;
    int rc = emitter_send(self, s, &v, a[A_TUP_ID], a[A_ANCHORS]);
    if (rc < 0)
        Py_XDECREF(tasks);
    else
        result = need ? tasks : Py_NewRef(Py_None);
done:
    values_release(&v);
    return result;

general:
    if (self->general == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "Emitter is not initialized");
        return NULL;
    }
    return PyObject_Vectorcall(self->general, args, nargsf, kwnames);
}

static PyObject *
Emitter_send(EmitterObject *self, PyObject *args)
{
    PyObject *stream, *tup, *batches, *tup_id, *anchors;
    if (!PyArg_ParseTuple(args, "UOO!OO:send", &stream, &tup, &PyList_Type, &batches, &tup_id,
                          &anchors))
        return NULL;
    StreamOut *s = find_stream(self, stream);
    if (s == NULL)
        return PyErr_Format(PyExc_KeyError, "%R", stream);
    if (!(PyList_CheckExact(tup) || PyTuple_CheckExact(tup)) || Py_SIZE(tup) != s->arity) {
        PyErr_SetString(PyExc_ValueError, "send() takes a list or tuple of the stream's arity");
        return NULL;
    }
    if (self->busy) {
        PyErr_SetString(PyExc_RuntimeError, "emit called while an emit is in progress");
        return NULL;
    }
    self->nchosen = 0;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(batches); i++) {
        PyObject *b = PyList_GET_ITEM(batches, i);
        if (!Py_IS_TYPE(b, &Batch_Type)) {
            PyErr_SetString(PyExc_TypeError, "send() takes _cpath.Batch objects");
            return NULL;
        }
        if (choose_add(self, (BatchObject *)b) < 0)
            return NULL;
    }
    /* the batches are borrowed from the list, which the caller keeps alive */
    Values v;
    if (values_take(&v, tup) < 0)
        return NULL;
    int rc = emitter_send(self, s, &v, tup_id, anchors);
    values_release(&v);
    if (rc < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *
Emitter_counts(EmitterObject *self, PyObject *unused)
{
    PyObject *d = PyDict_New();
    for (Py_ssize_t i = 0; d != NULL && i < self->nstreams; i++) {
        StreamOut *s = &self->streams[i];
        if (!s->count)
            continue;
        PyObject *n = PyLong_FromLongLong(s->count);
        if (n == NULL || PyDict_SetItem(d, s->name, n) < 0)
            Py_CLEAR(d);
        Py_XDECREF(n);
    }
    return d;
}

static PyObject *
Emitter_get(EmitterObject *self, void *which)
{
    switch ((intptr_t)which) {
    case 0:
        return PyLong_FromLongLong(self->count);
    case 1:
        return PyLong_FromLongLong(self->rejected);
    default:
        return PyLong_FromSsize_t(self->pending_bytes);
    }
}

static int
Emitter_set_pending(EmitterObject *self, PyObject *v, void *unused)
{
    Py_ssize_t n = v ? PyLong_AsSsize_t(v) : -1;
    if (n == -1 && (v == NULL || PyErr_Occurred())) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_AttributeError, "cannot delete pending_bytes");
        return -1;
    }
    self->pending_bytes = n;
    return 0;
}

static PyMethodDef Emitter_methods[] = {
    {"send", (PyCFunction)Emitter_send, METH_VARARGS,
     "send(stream, tup, batches, tup_id, anchors): pack tup into each of batches"},
    {"counts", (PyCFunction)Emitter_counts, METH_NOARGS, "Tuples emitted by stream."},
    {NULL},
};

static PyGetSetDef Emitter_getset[] = {
    {"count", (getter)Emitter_get, NULL, "tuples emitted", (void *)0},
    {"rejected", (getter)Emitter_get, NULL, "emits rejected for their values", (void *)1},
    {"pending_bytes", (getter)Emitter_get, (setter)Emitter_set_pending,
     "bytes added to open batches since the host last flushed them all", (void *)2},
    {NULL},
};

static PyTypeObject Emitter_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "heronpy_lite.instance._cpath.Emitter",
    .tp_basicsize = sizeof(EmitterObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_doc = "A task's emit (see _pypath.Emitter).",
    .tp_new = Emitter_new,
    .tp_init = (initproc)Emitter_init,
    .tp_traverse = (traverseproc)Emitter_traverse,
    .tp_clear = (inquiry)Emitter_clear,
    .tp_dealloc = (destructor)Emitter_dealloc,
    .tp_call = PyVectorcall_Call,
    .tp_vectorcall_offset = offsetof(EmitterObject, vectorcall),
    .tp_methods = Emitter_methods,
    .tp_getset = Emitter_getset,
};

/* ------------------------------------------------------------ deliver */

static PyObject *
heron_tuple(PyObject *id, PyObject *component, PyObject *stream, PyObject *task,
            PyObject *values, PyObject *now, PyObject *roots)
{
    /* what tuple.__new__(HeronTuple, (...)) does, without the argument tuple */
    PyObject *t = HeronTuple_type->tp_alloc(HeronTuple_type, 7);
    if (t == NULL)
        return NULL;
    PyObject *items[7] = {id, component, stream, task, values, now, roots};
    for (int i = 0; i < 7; i++)
        PyTuple_SET_ITEM(t, i, Py_NewRef(items[i]));
    return t;
}

/* process(tup); an Exception goes to on_error(exc, tup); anything else stops. */
static int
call_process(PyObject *process, PyObject *tup, PyObject *on_error)
{
    PyObject *r = PyObject_CallOneArg(process, tup);
    if (r != NULL) {
        Py_DECREF(r);
        return 0;
    }
    if (!PyErr_ExceptionMatches(PyExc_Exception))
        return -1;
    PyObject *exc = take_exception();
    r = PyObject_CallFunctionObjArgs(on_error, exc, tup, NULL);
    Py_XDECREF(exc);
    if (r == NULL)
        return -1;
    Py_DECREF(r);
    return 0;
}

static int
parse_deliver(PyObject *args, PyObject **process, PyObject **tuples, PyObject **component,
              PyObject **stream, PyObject **task, PyObject **now, PyObject **on_error)
{
    if (check_configured() < 0)
        return -1;
    return PyArg_ParseTuple(args, "OO!UUO!O!O", process, &PyList_Type, tuples, component,
                            stream, &PyLong_Type, task, &PyFloat_Type, now, on_error)
               ? 0
               : -1;
}

/* The HeronTuple for the next tuple of a batch: `reuse` again if process()
 * kept no reference to it (as zip() reuses its result tuple), else a new one. */
static PyObject *
next_tuple(PyObject *reuse, PyObject *id, PyObject *component, PyObject *stream, PyObject *task,
           PyObject *values, PyObject *now, PyObject *roots)
{
    if (reuse == NULL || Py_REFCNT(reuse) != 1) {
        Py_XDECREF(reuse);
        return heron_tuple(id, component, stream, task, values, now, roots);
    }
    PyObject *fresh[3] = {id, values, roots}, *old[3];
    const int at[3] = {0, 4, 6};
    for (int i = 0; i < 3; i++) {
        old[i] = PyTuple_GET_ITEM(reuse, at[i]);
        PyTuple_SET_ITEM(reuse, at[i], Py_NewRef(fresh[i]));
    }
    for (int i = 0; i < 3; i++)
        Py_DECREF(old[i]);
    if (!PyObject_GC_IsTracked(reuse))
        PyObject_GC_Track(reuse); /* the collector untracks tuples of atoms */
    return reuse;
}

static PyObject *
cpath_deliver(PyObject *module, PyObject *args)
{
    PyObject *process, *tuples, *component, *stream, *task, *now, *on_error;
    if (parse_deliver(args, &process, &tuples, &component, &stream, &task, &now, &on_error) < 0)
        return NULL;
    Py_INCREF(tuples);
    PyObject *tup = NULL;
    int rc = 0;
    for (Py_ssize_t i = 0; rc == 0 && i < PyList_GET_SIZE(tuples); i++) {
        tup = next_tuple(tup, Py_None, component, stream, task, PyList_GET_ITEM(tuples, i), now,
                         Py_None);
        rc = tup ? call_process(process, tup, on_error) : -1;
    }
    Py_XDECREF(tup);
    Py_DECREF(tuples);
    if (rc < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *
cpath_deliver_reliable(PyObject *module, PyObject *args)
{
    PyObject *process, *tuples, *component, *stream, *task, *now, *on_error;
    if (parse_deliver(args, &process, &tuples, &component, &stream, &task, &now, &on_error) < 0)
        return NULL;
    Py_ssize_t n = PyList_GET_SIZE(tuples);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *entry = PyList_GET_ITEM(tuples, i);
        if (!PyList_CheckExact(entry) || PyList_GET_SIZE(entry) == 0) {
            PyErr_SetString(RemoteProtocolError, "at-least-once entry is not a non-empty array");
            return NULL;
        }
        PyObject *flat = PyList_GET_ITEM(entry, PyList_GET_SIZE(entry) - 1);
        if (!PyBytes_CheckExact(flat) || PyBytes_GET_SIZE(flat) % TRIPLE) {
            PyErr_SetString(RemoteProtocolError, "at-least-once entry without valid anchors");
            return NULL;
        }
    }
    Py_INCREF(tuples);
    PyObject *tup = NULL;
    int rc = 0;
    for (Py_ssize_t i = 0; rc == 0 && i < PyList_GET_SIZE(tuples); i++) {
        PyObject *entry = PyList_GET_ITEM(tuples, i);
        /* checked above, but process() runs between: look again */
        if (!PyList_CheckExact(entry) || PyList_GET_SIZE(entry) == 0)
            continue;
        Py_ssize_t last = PyList_GET_SIZE(entry) - 1;
        PyObject *flat = Py_NewRef(PyList_GET_ITEM(entry, last));
        if (!PyBytes_CheckExact(flat) || PyBytes_GET_SIZE(flat) % TRIPLE ||
            PyList_SetSlice(entry, last, last + 1, NULL) < 0) {
            Py_DECREF(flat);
            continue;
        }
        PyObject *id = Py_NewRef(Py_None), *roots = Py_NewRef(Py_None);
        if (PyBytes_GET_SIZE(flat)) {
            Py_SETREF(id, PyLong_FromUnsignedLongLong(ack_get_u64le(PyBytes_AS_STRING(flat) + 16)));
            Py_SETREF(roots, id ? (PyObject *)anchors_new(flat) : NULL);
        }
        if (roots == NULL)
            Py_CLEAR(tup);
        else
            tup = next_tuple(tup, id, component, stream, task, entry, now, roots);
        Py_XDECREF(id);
        Py_XDECREF(roots);
        Py_DECREF(flat);
        rc = tup ? call_process(process, tup, on_error) : -1;
    }
    Py_XDECREF(tup);
    Py_DECREF(tuples);
    if (rc < 0)
        return NULL;
    Py_RETURN_NONE;
}

/* ------------------------------------------------------------ unpacking */

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

static PyObject *
cpath_unpack(PyObject *module, PyObject *arg)
{
    if (check_configured() < 0)
        return NULL;
    Py_buffer body;
    if (PyObject_GetBuffer(arg, &body, PyBUF_SIMPLE) < 0)
        return NULL;
    Reader r = {body.buf, (const unsigned char *)body.buf + body.len};
    PyObject *result = NULL;
    if (body.len && ((r.p[0] & 0xf0) == 0x90 || r.p[0] == 0xdc || r.p[0] == 0xdd)) {
        result = unpack_obj(&r, 0);
        if (result != NULL && r.p != r.end)
            Py_CLEAR(result);
    }
    PyBuffer_Release(&body);
    if (result != NULL)
        return result;
    PyErr_Clear(); /* whatever went wrong, unpack_batch says it its own way */
    return PyObject_CallOneArg(fallback_unpack, arg);
}

/* ------------------------------------------------------------ spout calls */

/* Call fn() up to `times` times; stop after a call that raises an Exception
 * (returned, not raised) or once in_flight (if not None) holds max_pending
 * entries. Returns (calls made, exception or None). */
static PyObject *
cpath_call_repeatedly(PyObject *module, PyObject *args)
{
    PyObject *fn, *in_flight;
    Py_ssize_t times, max_pending;
    if (!PyArg_ParseTuple(args, "OnOn:call_repeatedly", &fn, &times, &in_flight, &max_pending))
        return NULL;
    if (in_flight != Py_None && !Py_IS_TYPE(in_flight, &InFlight_Type)) {
        PyErr_SetString(PyExc_TypeError, "in_flight is an InFlight or None");
        return NULL;
    }
    int watch = in_flight != Py_None;
    Py_ssize_t calls = 0;
    while (calls < times) {
        PyObject *r = PyObject_CallNoArgs(fn);
        calls++;
        if (r == NULL) {
            if (!PyErr_ExceptionMatches(PyExc_Exception))
                return NULL;
            return Py_BuildValue("(nN)", calls, take_exception());
        }
        Py_DECREF(r);
        if (watch && (Py_ssize_t)((InFlightObject *)in_flight)->table.len >= max_pending)
            break;
    }
    return Py_BuildValue("(nO)", calls, Py_None);
}

/* ------------------------------------------------------------ module */

static PyObject *
cpath_configure(PyObject *module, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"heron_tuple", "emit_error", "protocol_error", "fallback_pack",
                             "fallback_unpack", "nest_limit", NULL};
    PyObject *ht, *ee, *pe, *fp, *fu;
    int limit;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O!OOOOi", kwlist, &PyType_Type, &ht, &ee, &pe,
                                     &fp, &fu, &limit))
        return NULL;
    Py_XSETREF(fallback_unpack, Py_NewRef(fu));
    nest_limit = limit;
    if (!PyType_IsSubtype((PyTypeObject *)ht, &PyTuple_Type)) {
        PyErr_SetString(PyExc_TypeError, "heron_tuple must be a tuple subclass");
        return NULL;
    }
    Py_XSETREF(HeronTuple_type, (PyTypeObject *)Py_NewRef(ht));
    Py_XSETREF(EmitError, Py_NewRef(ee));
    Py_XSETREF(RemoteProtocolError, Py_NewRef(pe));
    Py_XSETREF(fallback_pack, Py_NewRef(fp));
    Py_RETURN_NONE;
}

static PyMethodDef cpath_methods[] = {
    {"configure", (PyCFunction)(void (*)(void))cpath_configure, METH_VARARGS | METH_KEYWORDS,
     "configure(heron_tuple, emit_error, protocol_error, fallback_pack, fallback_unpack, "
     "nest_limit)"},
    {"unpack", (PyCFunction)cpath_unpack, METH_O,
     "unpack(body) -> list: wire.tuples.unpack_batch, with recent short strings shared"},
    {"pack", (PyCFunction)cpath_pack, METH_O,
     "One value as msgpack, exactly as msgpack-python packs it."},
    {"deliver", (PyCFunction)cpath_deliver, METH_VARARGS,
     "deliver(process, tuples, component, stream, task, now, on_error)"},
    {"deliver_reliable", (PyCFunction)cpath_deliver_reliable, METH_VARARGS,
     "deliver_reliable(process, tuples, component, stream, task, now, on_error)"},
    {"call_repeatedly", (PyCFunction)cpath_call_repeatedly, METH_VARARGS,
     "call_repeatedly(fn, times, in_flight, max_pending) -> (calls, exception or None)"},
    {NULL},
};

static struct PyModuleDef cpath_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "heronpy_lite.instance._cpath",
    .m_doc = "The tuple path in C (see _pypath.py, its reference).",
    .m_size = -1,
    .m_methods = cpath_methods,
};

PyMODINIT_FUNC
PyInit__cpath(void)
{
    crc_init();
    PyTypeObject *types[] = {&Batch_Type, &Anchors_Type, &AckOut_Type, &InFlight_Type,
                             &Emitter_Type};
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
        if (PyType_Ready(types[i]) < 0)
            return NULL;
    struct {
        PyObject **slot;
        const char *text;
    } names[] = {{&s_default, "default"},         {&s_tup_id, "tup_id"},
                 {&s_stream, "stream"},           {&s_direct_task, "direct_task"},
                 {&s_need_task_ids, "need_task_ids"}, {&s_anchors, "anchors"}};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if ((*names[i].slot = PyUnicode_InternFromString(names[i].text)) == NULL)
            return NULL;
    PyObject *m = PyModule_Create(&cpath_module);
    if (m == NULL)
        return NULL;
    const char *type_names[] = {"Batch", "Anchors", "AckOut", "InFlight", "Emitter"};
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        if (PyModule_AddObjectRef(m, type_names[i], (PyObject *)types[i]) < 0) {
            Py_DECREF(m);
            return NULL;
        }
    }
    return m;
}
