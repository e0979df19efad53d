/*
 * The XOR tracker in C: the same behaviour as acking.PyXorTracker, which is
 * the reference (read its docstring: entries, completion, rotating buckets).
 *
 * Why C: the stream manager hosting a spout applies one init and one update
 * per tuple at least once; in Python each costs a dict lookup, a list and
 * several int objects. Here the acking body is read as the u64 arrays it is,
 * and entries live in an open-addressing table of plain structs.
 *
 * Entries live in a u64 table per spout task (_u64_table.h).
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#include "../_buf.h"
#include "../_u64_table.h"
#include "../wire/_acking_body.h"

typedef struct {
    uint64_t root;
    uint8_t used, init;
    uint64_t xor;
    int64_t generation;
} Entry;

U64_TABLE(Trees, Entry)

typedef struct {
    uint64_t task;
    Trees trees;
} Table;

typedef struct {
    PyObject_HEAD
    Table *tables;
    Py_ssize_t ntables, tables_cap;
    int64_t generation, scanned;
    int buckets;
    double period; /* 0: no timeouts */
    double next_rotation;
    long long acked, failed, timed_out;
    PyObject *timed_out_by_task; /* {task: n} */
} TrackerObject;

static PyObject *RemoteProtocolError;

static Table *
tracker_table(TrackerObject *self, uint64_t task, int create)
{
    for (Py_ssize_t i = 0; i < self->ntables; i++)
        if (self->tables[i].task == task)
            return &self->tables[i];
    if (!create)
        return NULL;
    if (self->ntables == self->tables_cap) {
        Py_ssize_t cap = self->tables_cap ? self->tables_cap * 2 : 4;
        Table *p = PyMem_Realloc(self->tables, cap * sizeof(Table));
        if (p == NULL) {
            PyErr_NoMemory();
            return NULL;
        }
        self->tables = p;
        self->tables_cap = cap;
    }
    uint64_t seed;
    if (_PyOS_URandom(&seed, sizeof(seed)) < 0)
        return NULL;
    Table *t = &self->tables[self->ntables++];
    memset(t, 0, sizeof(*t));
    t->task = task;
    Trees_seed(&t->trees, seed);
    return t;
}

/* ------------------------------------------------------------ bodies */

/* [b"", b"", b"", acked, failed] */
static PyObject *
verdict_body(Buf *acked, Buf *failed)
{
    const char *data[ACK_PARTS] = {NULL, NULL, NULL, acked->data, failed->data};
    Py_ssize_t sizes[ACK_PARTS] = {0, 0, 0, acked->len, failed->len};
    return ack_body(data, sizes, 0);
}

/* ------------------------------------------------------------ Tracker */

static void
advance(TrackerObject *self, double now)
{
    if (self->period > 0 && now >= self->next_rotation) {
        int64_t rotations = (int64_t)((now - self->next_rotation) / self->period) + 1;
        self->generation += rotations;
        self->next_rotation += rotations * self->period;
    }
}

static int
Tracker_init(TrackerObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"timeout_secs", "now", "buckets", NULL};
    PyObject *timeout;
    double now;
    int buckets = 3;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "Od|i", kwlist, &timeout, &now, &buckets))
        return -1;
    if (buckets < 2) {
        PyErr_SetString(PyExc_ValueError, "XorTracker needs at least 2 buckets");
        return -1;
    }
    double secs = 0;
    if (timeout != Py_None) {
        secs = PyFloat_AsDouble(timeout);
        if (secs == -1.0 && PyErr_Occurred())
            return -1;
    }
    self->buckets = buckets;
    self->period = secs > 0 ? secs / (buckets - 1) : 0;
    self->next_rotation = self->period > 0 ? now + self->period : 0;
    Py_XSETREF(self->timed_out_by_task, PyDict_New());
    return self->timed_out_by_task ? 0 : -1;
}

static void
Tracker_dealloc(TrackerObject *self)
{
    for (Py_ssize_t i = 0; i < self->ntables; i++)
        Trees_free(&self->tables[i].trees);
    PyMem_Free(self->tables);
    Py_XDECREF(self->timed_out_by_task);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *
Tracker_apply_body(TrackerObject *self, PyObject *args)
{
    unsigned long long task;
    Py_buffer body;
    double now;
    if (!PyArg_ParseTuple(args, "Ky*d:apply_body", &task, &body, &now))
        return NULL;
    AckPart parts[ACK_PARTS];
    PyObject *result = NULL;
    Buf acked = {0}, failed = {0};
    if (ack_parse_body(body.buf, body.len, parts) < 0) {
        PyErr_SetString(RemoteProtocolError, "malformed acking body");
        goto done;
    }
    advance(self, now);
    Table *t = tracker_table(self, task, 1);
    if (t == NULL)
        goto done;
    int64_t generation = self->generation;
    const unsigned char *p = parts[ACK_INIT].data; /* init: (root, XOR of first edges) */
    for (Py_ssize_t i = 0; i < parts[ACK_INIT].n; i += 2, p += 16) {
        uint64_t root = ack_get_u64le(p), value = ack_get_u64le(p + 8);
        Entry *e = Trees_find(&t->trees, root, 0);
        if (e == NULL) {
            if (!value) { /* no edge left: complete already */
                if (put_u64le(&acked, root) < 0)
                    goto done;
                continue;
            }
            if ((e = Trees_find(&t->trees, root, 1)) == NULL)
                goto done;
            e->xor = value;
            e->init = 1;
            e->generation = generation;
            continue;
        }
        e->xor ^= value;
        e->init = 1;
        if (!e->xor) {
            Trees_remove(&t->trees, e);
            if (put_u64le(&acked, root) < 0)
                goto done;
        }
    }
    p = parts[ACK_UPDATE].data; /* update: (root, XOR contribution) */
    for (Py_ssize_t i = 0; i < parts[ACK_UPDATE].n; i += 2, p += 16) {
        uint64_t root = ack_get_u64le(p), value = ack_get_u64le(p + 8);
        Entry *e = Trees_find(&t->trees, root, 0);
        if (e == NULL) {
            if ((e = Trees_find(&t->trees, root, 1)) == NULL)
                goto done;
            e->xor = value;
            e->generation = generation;
            continue;
        }
        e->xor ^= value;
        if (!e->xor && e->init) {
            Trees_remove(&t->trees, e);
            if (put_u64le(&acked, root) < 0)
                goto done;
        }
    }
    p = parts[ACK_FAIL].data; /* fail: root */
    for (Py_ssize_t i = 0; i < parts[ACK_FAIL].n; i++, p += 8) {
        uint64_t root = ack_get_u64le(p);
        Entry *e = Trees_find(&t->trees, root, 0);
        if (e == NULL)
            continue;
        int init = e->init;
        Trees_remove(&t->trees, e);
        if (init && put_u64le(&failed, root) < 0)
            goto done;
    }
    self->acked += acked.len / 8;
    self->failed += failed.len / 8;
    result = acked.len || failed.len ? verdict_body(&acked, &failed) : Py_NewRef(Py_None);
done:
    buf_free(&acked);
    buf_free(&failed);
    PyBuffer_Release(&body);
    return result;
}

static PyObject *
Tracker_expire_bodies(TrackerObject *self, PyObject *arg)
{
    double now = PyFloat_AsDouble(arg);
    if (now == -1.0 && PyErr_Occurred())
        return NULL;
    PyObject *out = PyList_New(0);
    if (out == NULL)
        return NULL;
    advance(self, now);
    if (self->generation == self->scanned)
        return out;
    self->scanned = self->generation;
    int64_t oldest_alive = self->generation - self->buckets + 1;
    for (Py_ssize_t ti = 0; ti < self->ntables; ti++) {
        Table *t = &self->tables[ti];
        Buf expired = {0}, failed = {0}, none = {0};
        for (size_t i = 0; i < t->trees.cap; i++) {
            Entry *e = &t->trees.slots[i];
            if (e->used && e->generation < oldest_alive && put_u64le(&expired, e->root) < 0)
                goto error;
        }
        long long timed_out = 0;
        for (Py_ssize_t k = 0; k < expired.len; k += 8) {
            Entry *e = Trees_find(&t->trees, ack_get_u64le(expired.data + k), 0);
            if (e == NULL)
                continue;
            int init = e->init;
            uint64_t root = e->root;
            Trees_remove(&t->trees, e);
            if (init) {
                timed_out++;
                if (put_u64le(&failed, root) < 0)
                    goto error;
            }
        }
        if (timed_out) {
            self->timed_out += timed_out;
            PyObject *key = PyLong_FromUnsignedLongLong(t->task);
            PyObject *old = key ? PyDict_GetItemWithError(self->timed_out_by_task, key) : NULL;
            long long before = old ? PyLong_AsLongLong(old) : 0;
            PyObject *n = PyErr_Occurred() ? NULL : PyLong_FromLongLong(before + timed_out);
            int rc = n ? PyDict_SetItem(self->timed_out_by_task, key, n) : -1;
            PyObject *body = rc == 0 ? verdict_body(&none, &failed) : NULL;
            PyObject *item = body ? Py_BuildValue("(ON)", key, body) : NULL;
            rc = item ? PyList_Append(out, item) : -1;
            Py_XDECREF(item);
            Py_XDECREF(n);
            Py_XDECREF(key);
            if (rc < 0)
                goto error;
        }
        buf_free(&expired);
        buf_free(&failed);
        continue;
    error:
        buf_free(&expired);
        buf_free(&failed);
        Py_DECREF(out);
        return NULL;
    }
    return out;
}

static PyObject *
Tracker_drop_task(TrackerObject *self, PyObject *arg)
{
    unsigned long long task = PyLong_AsUnsignedLongLong(arg);
    if (task == (unsigned long long)-1 && PyErr_Occurred())
        return NULL;
    Table *t = tracker_table(self, task, 0);
    if (t != NULL)
        Trees_free(&t->trees);
    Py_RETURN_NONE;
}

static PyObject *
Tracker_entries(TrackerObject *self, void *unused)
{
    PyObject *d = PyDict_New();
    for (Py_ssize_t ti = 0; d != NULL && ti < self->ntables; ti++) {
        Table *t = &self->tables[ti];
        for (size_t i = 0; i < t->trees.cap; i++) {
            Entry *e = &t->trees.slots[i];
            if (!e->used)
                continue;
            PyObject *key = Py_BuildValue("(KK)", (unsigned long long)t->task,
                                          (unsigned long long)e->root);
            PyObject *value = Py_BuildValue("[KiL]", (unsigned long long)e->xor, (int)e->init,
                                            (long long)e->generation);
            if (key == NULL || value == NULL || PyDict_SetItem(d, key, value) < 0)
                Py_CLEAR(d);
            Py_XDECREF(key);
            Py_XDECREF(value);
            if (d == NULL)
                break;
        }
    }
    return d;
}

static Py_ssize_t
Tracker_len(TrackerObject *self)
{
    size_t n = 0;
    for (Py_ssize_t i = 0; i < self->ntables; i++)
        n += self->tables[i].trees.len;
    return (Py_ssize_t)n;
}

static PyObject *
Tracker_get(TrackerObject *self, void *which)
{
    switch ((intptr_t)which) {
    case 0:
        return PyLong_FromLongLong(self->acked);
    case 1:
        return PyLong_FromLongLong(self->failed);
    case 2:
        return PyLong_FromLongLong(self->timed_out);
    case 3:
        return self->timed_out_by_task ? Py_NewRef(self->timed_out_by_task) : PyDict_New();
    case 4:
        return self->period > 0 ? PyFloat_FromDouble(self->period) : Py_NewRef(Py_None);
    default:
        return PyLong_FromLongLong(self->generation);
    }
}

static PyMethodDef Tracker_methods[] = {
    {"apply_body", (PyCFunction)Tracker_apply_body, METH_VARARGS,
     "apply_body(task, body, now): the verdict body for spout task, or None"},
    {"expire_bodies", (PyCFunction)Tracker_expire_bodies, METH_O,
     "expire_bodies(now): [(spout task, verdict body)] of trees that timed out"},
    {"drop_task", (PyCFunction)Tracker_drop_task, METH_O, "Forget every tree of a task."},
    {NULL},
};

static PyGetSetDef Tracker_getset[] = {
    {"acked", (getter)Tracker_get, NULL, NULL, (void *)0},
    {"failed", (getter)Tracker_get, NULL, NULL, (void *)1},
    {"timed_out", (getter)Tracker_get, NULL, NULL, (void *)2},
    {"timed_out_by_task", (getter)Tracker_get, NULL, NULL, (void *)3},
    {"period", (getter)Tracker_get, NULL, NULL, (void *)4},
    {"generation", (getter)Tracker_get, NULL, NULL, (void *)5},
    {"entries", (getter)Tracker_entries, NULL,
     "every live tree as (task, root) -> [xor, init seen, generation]", NULL},
    {NULL},
};

static PySequenceMethods Tracker_as_sequence = {.sq_length = (lenfunc)Tracker_len};

static PyTypeObject Tracker_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "heronpy_lite.stmgr._ctracker.XorTracker",
    .tp_basicsize = sizeof(TrackerObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "The XOR tracker (see stmgr/acking.py, its reference).",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Tracker_init,
    .tp_dealloc = (destructor)Tracker_dealloc,
    .tp_methods = Tracker_methods,
    .tp_getset = Tracker_getset,
    .tp_as_sequence = &Tracker_as_sequence,
};

static PyObject *
ctracker_configure(PyObject *module, PyObject *error)
{
    Py_XSETREF(RemoteProtocolError, Py_NewRef(error));
    Py_RETURN_NONE;
}

static PyMethodDef ctracker_methods[] = {
    {"configure", (PyCFunction)ctracker_configure, METH_O,
     "configure(remote_protocol_error): the exception for a malformed body"},
    {NULL},
};

static struct PyModuleDef ctracker_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "heronpy_lite.stmgr._ctracker",
    .m_doc = "The XOR tracker in C (see stmgr/acking.py, its reference).",
    .m_size = -1,
    .m_methods = ctracker_methods,
};

PyMODINIT_FUNC
PyInit__ctracker(void)
{
    if (PyType_Ready(&Tracker_Type) < 0)
        return NULL;
    RemoteProtocolError = Py_NewRef(PyExc_ValueError);
    PyObject *m = PyModule_Create(&ctracker_module);
    if (m != NULL && PyModule_AddObjectRef(m, "XorTracker", (PyObject *)&Tracker_Type) < 0)
        Py_CLEAR(m);
    return m;
}
