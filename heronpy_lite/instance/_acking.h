/*
 * The at-least-once objects of a task (see _pypath.py, the reference):
 * Anchors (HeronTuple.roots of a received tuple), AckOut (a task's ack/fail
 * and its acking traffic by spout task) and InFlight (a spout's trees in
 * flight). Included once by _cpath.c, after its module state.
 */

/* ---------------------------------------------------------------- Anchors */

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

/* ----------------------------------------------------------------- AckOut */

/* the warning for a tuple acked or failed again (_pypath.TWICE) */
#define TWICE_MESSAGE "a tuple was acked or failed twice; ignoring the repeat"

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
    PyObject *warn;
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
    static char *kwlist[] = {"warn", NULL};
    PyObject *warn;
    uint64_t seed;
    if (check_configured() < 0 ||
        !PyArg_ParseTupleAndKeywords(args, kwds, "O", kwlist, &warn) ||
        _PyOS_URandom(&seed, sizeof(seed)) < 0)
        return -1;
    TaskIndex_seed(&self->index, seed);
    Py_INCREF(warn);
    Py_XSETREF(self->warn, warn);
    return 0;
}

static int
AckOut_traverse(AckOutObject *self, visitproc visit, void *arg)
{
    Py_VISIT(self->warn);
    return 0;
}

static int
AckOut_clear(AckOutObject *self)
{
    Py_CLEAR(self->warn);
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

/* warn(message) of a misuse: `what` ("ack", "fail") given something that is not
 * a received tuple, or (tup NULL) a tuple acked or failed again */
static PyObject *
ackout_warn(AckOutObject *self, const char *what, PyObject *tup)
{
    PyObject *message =
        tup == NULL ? PyUnicode_FromString(TWICE_MESSAGE)
                    : PyUnicode_FromFormat("%s() takes the HeronTuple given to process(), got %.80R",
                                           what, tup);
    if (message == NULL)
        return NULL;
    PyObject *r = PyObject_CallOneArg(self->warn, message);
    Py_DECREF(message);
    return r;
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
        return ackout_warn(self, failing ? "fail" : "ack", tup);
    PyObject *roots = PyTuple_GET_ITEM(tup, 6);
    if (Py_IS_TYPE(roots, &Anchors_Type)) {
        AnchorsObject *a = (AnchorsObject *)roots;
        if (a->done)
            return ackout_warn(self, "twice", NULL);
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

/* Each spout task's acking body since the last drain (acked and failed are
 * empty from a task), appended to `out`: as (task, body) pairs, or `framed`
 * as ACK frames from task `src` (their bytes added to *bytes). */
static int
ackout_drain(AckOutObject *self, PyObject *out, int framed, uint32_t src, Py_ssize_t *bytes)
{
    for (Py_ssize_t i = 0; i < self->ntargets; i++) {
        AckTarget *t = &self->targets[i];
        if (!(t->init.len || t->update.len || t->fail.len))
            continue;
        const char *data[ACK_PARTS] = {t->init.data, t->update.data, t->fail.data, NULL, NULL};
        Py_ssize_t sizes[ACK_PARTS] = {t->init.len, t->update.len, t->fail.len, 0, 0};
        PyObject *body = ack_body(data, sizes, framed ? FRAME_DATA_HEADER : 0);
        if (body == NULL)
            return -1;
        PyObject *item;
        if (framed) {
            Py_ssize_t size = PyBytes_GET_SIZE(body);
            frame_put_header((unsigned char *)PyBytes_AS_STRING(body), FRAME_KIND_ACK,
                             (uint32_t)t->task, src, 0, 0, size - FRAME_DATA_HEADER);
            *bytes += size;
            item = body;
        }
        else
            item = Py_BuildValue("(KN)", (unsigned long long)t->task, body);
        if (item == NULL || PyList_Append(out, item) < 0) {
            Py_XDECREF(item);
            return -1;
        }
        Py_DECREF(item);
        buf_reset(&t->init);
        buf_reset(&t->update);
        buf_reset(&t->fail);
    }
    self->pending = 0;
    if (self->ntargets > MANY_TARGETS)
        ackout_forget_targets(self); /* a burst of spout tasks: memory follows the burst */
    return 0;
}

static PyObject *
AckOut_take(AckOutObject *self, PyObject *unused)
{
    PyObject *out = PyList_New(0);
    if (out != NULL && ackout_drain(self, out, 0, 0, NULL) < 0)
        Py_CLEAR(out);
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

/* --------------------------------------------------------------- InFlight */

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

