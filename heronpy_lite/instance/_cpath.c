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
 * One file per subject, compiled as one unit:
 *   ../wire/_msgpack.h    pack (msgpack, byte for byte what msgpack-python's
 *                         Packer(use_bin_type=True) writes) and the batch decoder
 *   ../wire/_frames.h     the DATA and ACK frame header
 *   _acking.h             Anchors, AckOut (a task's ack/fail), InFlight (a
 *                         spout's trees in flight)
 *   _emitter.h            Emitter (a task's emit), its batches and routes
 *   this file             module state, deliver / deliver_reliable (a batch into
 *                         process calls), call_repeatedly (the spout loop's calls
 *                         of next_tuple), pack / unpack / stable_hash, the module
 *
 * `configure(heron_tuple, emit_error, protocol_error, fallback_pack, fallback_unpack,
 * nest_limit)` must be called once before use (tuplepath.py does).
 *
 * Every entry point holds the GIL throughout; nothing here blocks.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "../_buf.h"
#include "../_u64_table.h"
#include "../wire/_acking_body.h"
#include "../wire/_frames.h"
#include "../wire/_msgpack.h"

/* ------------------------------------------------------------ module state */

static PyTypeObject *HeronTuple_type;   /* heronpy_lite.api.tuple.HeronTuple */
static PyObject *EmitError;
static PyObject *RemoteProtocolError;
static PyObject *fallback_unpack;       /* wire.tuples.unpack_batch */

static PyObject *s_default, *s_tup_id, *s_stream, *s_direct_task, *s_need_task_ids, *s_anchors;

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


#include "_acking.h"
#include "_emitter.h"

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


/* ------------------------------------------------------------ pack, unpack, hash */

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


/* stable_hash(value) -> int, or None for a value the emitter hands to a route's
 * choose (for the tests: routing.stable_hash is the definition) */
static PyObject *
cpath_stable_hash(PyObject *module, PyObject *value)
{
    uint64_t h = 0;
    int rc = stable_hash(value, &h);
    if (rc < 0)
        return NULL;
    if (rc == 0)
        Py_RETURN_NONE;
    return PyLong_FromUnsignedLongLong(h);
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
    mp_nest_limit = limit;
    if (!PyType_IsSubtype((PyTypeObject *)ht, &PyTuple_Type)) {
        PyErr_SetString(PyExc_TypeError, "heron_tuple must be a tuple subclass");
        return NULL;
    }
    Py_XSETREF(HeronTuple_type, (PyTypeObject *)Py_NewRef(ht));
    Py_XSETREF(EmitError, Py_NewRef(ee));
    Py_XSETREF(RemoteProtocolError, Py_NewRef(pe));
    Py_XSETREF(mp_fallback_pack, Py_NewRef(fp));
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
    {"stable_hash", (PyCFunction)cpath_stable_hash, METH_O,
     "stable_hash(value) -> int, or None where a route's choose decides"},
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
    PyTypeObject *types[] = {&Anchors_Type, &AckOut_Type, &InFlight_Type, &Emitter_Type};
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
    const char *type_names[] = {"Anchors", "AckOut", "InFlight", "Emitter"};
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        if (PyModule_AddObjectRef(m, type_names[i], (PyObject *)types[i]) < 0) {
            Py_DECREF(m);
            return NULL;
        }
    }
    return m;
}
