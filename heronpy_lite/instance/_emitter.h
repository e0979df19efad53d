/*
 * The emitter of a task (see _pypath.Emitter, the reference): routes, packs
 * and batches every emitted tuple, and frames full batches into its outbox.
 * Included once by _cpath.c, after its module state, _msgpack.h, _frames.h
 * and _acking.h.
 *
 * Batches are plain structs owned by the emitter, one per (stream,
 * destination task); a destination's batches share one Dest, which names the
 * one of them that may hold entries (tuples to one task leave in emit order,
 * whatever their streams). Nothing here calls Python code except what the
 * user gave: a route's choose (direct, custom, fields keys not hashed here),
 * msgpack-python for values that are not exact builtins, warn(), and a clock
 * that is not time.monotonic.
 */

/* ------------------------------------------------------------ stable hash */

/* routing.stable_hash, the definition: zlib's crc32 of a str's UTF-8 or of
 * bytes, the low 48 bits of an int. Other values go to the route's choose(). */
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

struct StreamOut;

typedef struct {
    struct StreamOut *stream;
    PyObject *task;  /* int, for need_task_ids */
    uint32_t task_id;
    Py_ssize_t dest; /* index into the emitter's dests */
    Py_ssize_t count;
    Buf buf;         /* the entries, without the array header */
} Batch;

typedef struct {
    Batch *open; /* the batch that may hold entries, or NULL */
} Dest;

/* ------------------------------------------------------------ Emitter */

enum { R_ONE, R_SHUFFLE, R_ALL, R_FIELDS, R_CHOOSE };

typedef struct {
    int kind;
    Py_ssize_t n;
    Batch **batches;  /* into the emitter's batches */
    Py_ssize_t next;  /* shuffle */
    Py_ssize_t nkeys;
    Py_ssize_t *keys; /* fields: value indexes */
    PyObject *choose; /* RouteSpec.choose: fields keys not hashed here, every choose tuple */
    uint64_t ngroups; /* fields: key groups (RouteSpec.keygroups) */
    Batch **groups;   /* fields: key group -> its owner's batch (routing.group_owner) */
} Route;

typedef struct StreamOut {
    PyObject *name;       /* str */
    const char *utf8;     /* the name's UTF-8, owned by `name` */
    Py_ssize_t utf8_len;
    Py_ssize_t arity;
    Py_ssize_t max_entry; /* the largest entry a frame of this stream carries */
    int direct;
    Py_ssize_t nroutes;
    Route *routes;
    long long count;
} StreamOut;

typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall;
    Py_ssize_t nstreams;
    StreamOut *streams;
    Py_ssize_t nbatches, ndests;
    Batch *batches;
    Dest *dests;
    PyObject *component, *warn, *clock, *monotonic;
    PyObject *immediate; /* list: spout ids to ack right after the round */
    PyObject *outbox;    /* list of finished frames */
    InFlightObject *in_flight;
    AckOutObject *acks;
    Py_ssize_t limit, batch_max_bytes, max_frame_bytes, open_bytes, outbox_bytes;
    long long count, rejected;
    int bolt, reliable, busy;
    uint32_t task_id;
    uint64_t next_root; /* roots: consecutive from a random start (see _u64_table.h) */
    Rng rng;
    Buf scratch; /* the packed values of the emit in progress */
    Buf anchors; /* the anchors of one copy */
    Buf pending; /* (Anchors *, edge) of one copy, applied once its entry fits */
    Batch **chosen;
    Py_ssize_t nchosen, chosen_cap;
} EmitterObject;

static PyTypeObject Emitter_Type;

#define ARRAY_HEADER_MAX 5 /* msgpack array32: a body is its entries plus this at most */

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
emitter_warn(EmitterObject *self, const char *message)
{
    PyObject *r = PyObject_CallFunction(self->warn, "s", message);
    Py_XDECREF(r);
    return r ? 0 : -1;
}

static void
streams_clear(EmitterObject *self)
{
    for (Py_ssize_t i = 0; i < self->nstreams; i++) {
        StreamOut *s = &self->streams[i];
        for (Py_ssize_t j = 0; j < s->nroutes; j++) {
            PyMem_Free(s->routes[j].batches);
            PyMem_Free(s->routes[j].keys);
            PyMem_Free(s->routes[j].groups);
            Py_XDECREF(s->routes[j].choose);
        }
        PyMem_Free(s->routes);
        Py_XDECREF(s->name);
    }
    PyMem_Free(self->streams);
    self->streams = NULL;
    self->nstreams = 0;
    for (Py_ssize_t i = 0; i < self->nbatches; i++) {
        Py_XDECREF(self->batches[i].task);
        buf_free(&self->batches[i].buf);
    }
    PyMem_Free(self->batches);
    PyMem_Free(self->dests);
    self->batches = NULL;
    self->dests = NULL;
    self->nbatches = self->ndests = 0;
}

/* A sequence attribute of a spec object, as a new list (NULL on error). */
static PyObject *
attr_list(PyObject *spec, const char *name)
{
    PyObject *v = PyObject_GetAttrString(spec, name);
    if (v == NULL)
        return NULL;
    PyObject *list = PySequence_List(v);
    Py_DECREF(v);
    return list;
}

static Py_ssize_t
attr_ssize(PyObject *spec, const char *name)
{
    PyObject *v = PyObject_GetAttrString(spec, name);
    if (v == NULL)
        return -1;
    Py_ssize_t n = PyLong_AsSsize_t(v);
    Py_DECREF(v);
    return n;
}

/* The batch of (stream s, task), created on first sight, with its Dest; tasks
 * maps task -> its dest index. */
static Batch *
batch_for(EmitterObject *self, StreamOut *s, PyObject *task, PyObject *tasks, Py_ssize_t cap)
{
    for (Py_ssize_t i = 0; i < self->nbatches; i++)
        if (self->batches[i].stream == s &&
            PyObject_RichCompareBool(self->batches[i].task, task, Py_EQ) == 1)
            return &self->batches[i];
    if (self->nbatches == cap) {
        PyErr_SetString(PyExc_RuntimeError, "more batches than route tasks");
        return NULL;
    }
    unsigned long long id = PyLong_AsUnsignedLongLong(task);
    if (id == (unsigned long long)-1 && PyErr_Occurred())
        return NULL;
    if (id > 0xffffffffULL) {
        PyErr_SetString(PyExc_ValueError, "task ids are 32-bit");
        return NULL;
    }
    PyObject *dest = PyDict_GetItemWithError(tasks, task);
    Py_ssize_t d;
    if (dest != NULL)
        d = PyLong_AsSsize_t(dest);
    else {
        if (PyErr_Occurred())
            return NULL;
        d = self->ndests++;
        PyObject *index = PyLong_FromSsize_t(d);
        int rc = index ? PyDict_SetItem(tasks, task, index) : -1;
        Py_XDECREF(index);
        if (rc < 0)
            return NULL;
    }
    Batch *b = &self->batches[self->nbatches++];
    memset(b, 0, sizeof(*b));
    b->stream = s;
    b->task = Py_NewRef(task);
    b->task_id = (uint32_t)id;
    b->dest = d;
    return b;
}

static int
parse_route(EmitterObject *self, StreamOut *s, Route *r, PyObject *spec, PyObject *tasks,
            Py_ssize_t cap)
{
    PyObject *kind = PyObject_GetAttrString(spec, "kind");
    if (kind == NULL)
        return -1;
    const char *names[] = {"one", "shuffle", "all", "fields", "choose"};
    r->kind = -1;
    for (int k = 0; k < 5; k++)
        if (PyUnicode_Check(kind) && PyUnicode_CompareWithASCIIString(kind, names[k]) == 0)
            r->kind = k;
    if (r->kind < 0) {
        PyErr_Format(PyExc_ValueError, "unknown route kind %R", kind);
        Py_DECREF(kind);
        return -1;
    }
    Py_DECREF(kind);
    PyObject *route_tasks = attr_list(spec, "tasks");
    PyObject *keys = route_tasks ? attr_list(spec, "key_indexes") : NULL;
    PyObject *choose = keys ? PyObject_GetAttrString(spec, "choose") : NULL;
    int rc = -1;
    if (choose == NULL)
        goto done;
    r->choose = Py_NewRef(choose);
    r->n = PyList_GET_SIZE(route_tasks);
    r->nkeys = PyList_GET_SIZE(keys);
    if (r->n == 0 && r->kind != R_ALL && r->kind != R_CHOOSE) {
        PyErr_SetString(PyExc_ValueError, "a route needs at least one task");
        goto done;
    }
    if ((r->kind == R_FIELDS && (r->nkeys == 0 || choose == Py_None)) ||
        (r->kind == R_CHOOSE && choose == Py_None)) {
        PyErr_SetString(PyExc_ValueError, "a fields route needs key indexes and choose, "
                                          "a choose route choose");
        goto done;
    }
    r->batches = PyMem_Calloc(r->n ? r->n : 1, sizeof(Batch *));
    r->keys = PyMem_Calloc(r->nkeys ? r->nkeys : 1, sizeof(Py_ssize_t));
    if (r->batches == NULL || r->keys == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t i = 0; i < r->n; i++) {
        PyObject *task = PyList_GET_ITEM(route_tasks, i);
        if (!PyLong_CheckExact(task)) {
            PyErr_SetString(PyExc_TypeError, "route tasks are ints");
            goto done;
        }
        if ((r->batches[i] = batch_for(self, s, task, tasks, cap)) == NULL)
            goto done;
    }
    for (Py_ssize_t i = 0; i < r->nkeys; i++) {
        r->keys[i] = PyLong_AsSsize_t(PyList_GET_ITEM(keys, i));
        if (r->keys[i] == -1 && PyErr_Occurred())
            goto done;
        if (r->keys[i] < 0 || r->keys[i] >= s->arity) {
            PyErr_SetString(PyExc_ValueError, "a key index outside the stream's fields");
            goto done;
        }
    }
    if (r->kind == R_FIELDS) {
        PyObject *g = PyObject_GetAttrString(spec, "keygroups");
        long long ngroups = g ? PyLong_AsLongLong(g) : -1;
        Py_XDECREF(g);
        if (ngroups == -1 && PyErr_Occurred())
            goto done;
        if (ngroups < r->n || ngroups > (1LL << 30)) {
            PyErr_SetString(PyExc_ValueError, "a fields route needs keygroups >= its tasks");
            goto done;
        }
        r->ngroups = (uint64_t)ngroups;
        if ((r->groups = PyMem_Calloc((size_t)ngroups, sizeof(Batch *))) == NULL) {
            PyErr_NoMemory();
            goto done;
        }
        for (uint64_t k = 0; k < r->ngroups; k++)
            r->groups[k] = r->batches[k * (uint64_t)r->n / r->ngroups];
    }
    if (r->n)
        r->next = (Py_ssize_t)(rng_next(&self->rng) % (uint64_t)r->n);
    rc = 0;
done:
    Py_XDECREF(route_tasks);
    Py_XDECREF(keys);
    Py_XDECREF(choose);
    return rc;
}

/* The streams (StreamSpec objects), their routes and every batch they need. */
static int
parse_streams(EmitterObject *self, PyObject *streams)
{
    Py_ssize_t n = PyList_GET_SIZE(streams), cap = 0;
    int rc = -1;
    PyObject **routes_of = PyMem_Calloc(n ? n : 1, sizeof(PyObject *));
    PyObject *tasks = PyDict_New();
    self->streams = PyMem_Calloc(n ? n : 1, sizeof(StreamOut));
    if (tasks == NULL || self->streams == NULL || routes_of == NULL) {
        if (tasks != NULL)
            PyErr_NoMemory();
        n = 0;
        goto done;
    }
    self->nstreams = n;
    for (Py_ssize_t i = 0; i < n; i++) {
        StreamOut *s = &self->streams[i];
        PyObject *spec = PyList_GET_ITEM(streams, i);
        if ((s->name = PyObject_GetAttrString(spec, "name")) == NULL)
            goto done;
        if (!PyUnicode_Check(s->name)) {
            PyErr_SetString(PyExc_TypeError, "a stream's name is a str");
            goto done;
        }
        if ((s->utf8 = PyUnicode_AsUTF8AndSize(s->name, &s->utf8_len)) == NULL)
            goto done;
        if (s->utf8_len > 0xffff) {
            PyErr_SetString(PyExc_ValueError, "stream name too long");
            goto done;
        }
        s->max_entry = self->max_frame_bytes - FRAME_DATA_HEADER + 4 - s->utf8_len -
                       ARRAY_HEADER_MAX;
        if ((s->arity = attr_ssize(spec, "arity")) < 0) {
            if (!PyErr_Occurred())
                PyErr_SetString(PyExc_ValueError, "a stream's arity is >= 0");
            goto done;
        }
        PyObject *direct = PyObject_GetAttrString(spec, "direct");
        s->direct = direct ? PyObject_IsTrue(direct) : -1;
        Py_XDECREF(direct);
        if (s->direct < 0 || (routes_of[i] = attr_list(spec, "routes")) == NULL)
            goto done;
        for (Py_ssize_t j = 0; j < PyList_GET_SIZE(routes_of[i]); j++) {
            PyObject *t = attr_list(PyList_GET_ITEM(routes_of[i], j), "tasks");
            if (t == NULL)
                goto done;
            cap += PyList_GET_SIZE(t);
            Py_DECREF(t);
        }
    }
    self->batches = PyMem_Calloc(cap ? cap : 1, sizeof(Batch));
    self->dests = PyMem_Calloc(cap ? cap : 1, sizeof(Dest));
    if (self->batches == NULL || self->dests == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        StreamOut *s = &self->streams[i];
        Py_ssize_t nr = PyList_GET_SIZE(routes_of[i]);
        if ((s->routes = PyMem_Calloc(nr ? nr : 1, sizeof(Route))) == NULL) {
            PyErr_NoMemory();
            goto done;
        }
        for (Py_ssize_t j = 0; j < nr; j++) {
            s->nroutes = j + 1;
            if (parse_route(self, s, &s->routes[j], PyList_GET_ITEM(routes_of[i], j), tasks,
                            cap) < 0)
                goto done;
        }
    }
    rc = 0;
done:
    for (Py_ssize_t i = 0; i < n; i++)
        Py_XDECREF(routes_of[i]);
    PyMem_Free(routes_of);
    Py_XDECREF(tasks);
    return rc;
}

static int
Emitter_init(EmitterObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"streams", "task_id", "component", "bolt", "reliable",
                             "batch_max_tuples", "batch_max_bytes", "max_frame_bytes",
                             "in_flight", "acks", "warn", "clock", NULL};
    PyObject *streams, *component, *in_flight, *acks, *warn, *clock;
    Py_ssize_t limit, batch_max_bytes, max_frame_bytes;
    int bolt, reliable;
    unsigned long long task_id;
    if (check_configured() < 0)
        return -1;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O$KUppnnnO!O!OO", kwlist, &streams, &task_id,
                                     &component, &bolt, &reliable, &limit, &batch_max_bytes,
                                     &max_frame_bytes, &InFlight_Type, &in_flight, &AckOut_Type,
                                     &acks, &warn, &clock))
        return -1;
    if (self->outbox != NULL) {
        PyErr_SetString(PyExc_RuntimeError, "Emitter is initialized once");
        return -1;
    }
    if (limit < 1) {
        PyErr_SetString(PyExc_ValueError, "batch_max_tuples must be at least 1");
        return -1;
    }
    if (task_id > 0xffffffffULL || max_frame_bytes < 1024) {
        PyErr_SetString(PyExc_ValueError, "task ids are 32-bit, frames at least 1024 bytes");
        return -1;
    }
    self->max_frame_bytes = max_frame_bytes;
    PyObject *list = PySequence_List(streams);
    if (list == NULL)
        return -1;
    int rc = parse_streams(self, list);
    Py_DECREF(list);
    if (rc < 0) {
        streams_clear(self);
        return -1;
    }
    self->component = Py_NewRef(component);
    self->in_flight = (InFlightObject *)Py_NewRef(in_flight);
    self->acks = (AckOutObject *)Py_NewRef(acks);
    self->warn = Py_NewRef(warn);
    self->clock = Py_NewRef(clock);
    self->limit = limit;
    self->batch_max_bytes = batch_max_bytes;
    self->bolt = bolt;
    self->reliable = reliable;
    self->task_id = (uint32_t)task_id;
    self->immediate = PyList_New(0);
    self->outbox = self->immediate ? PyList_New(0) : NULL; /* set last: initialized */
    return self->outbox ? 0 : -1;
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
    for (Py_ssize_t i = 0; i < self->nstreams; i++)
        for (Py_ssize_t j = 0; j < self->streams[i].nroutes; j++)
            Py_VISIT(self->streams[i].routes[j].choose);
    Py_VISIT(self->warn);
    Py_VISIT(self->clock);
    Py_VISIT(self->immediate);
    Py_VISIT(self->outbox);
    Py_VISIT(self->in_flight);
    Py_VISIT(self->acks);
    return 0;
}

static int
Emitter_clear(EmitterObject *self)
{
    streams_clear(self);
    Py_CLEAR(self->component);
    Py_CLEAR(self->warn);
    Py_CLEAR(self->clock);
    Py_CLEAR(self->immediate);
    Py_CLEAR(self->outbox);
    Py_CLEAR(self->in_flight);
    Py_CLEAR(self->acks);
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
choose_add(EmitterObject *self, Batch *b)
{
    if (self->nchosen == self->chosen_cap) {
        Py_ssize_t cap = self->chosen_cap ? self->chosen_cap * 2 : 8;
        Batch **p = PyMem_Realloc(self->chosen, cap * sizeof(Batch *));
        if (p == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        self->chosen = p;
        self->chosen_cap = cap;
    }
    self->chosen[self->nchosen++] = b;
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

/* The values as a new list (what a choose route's choose() is given). */
static PyObject *
values_list(Values *v)
{
    PyObject *list = PyList_New(v->n);
    for (Py_ssize_t i = 0; list != NULL && i < v->n; i++)
        PyList_SET_ITEM(list, i, Py_NewRef(v->items[i]));
    return list;
}

/* The route's own batches for the tasks choose() returned (a list). */
static int
choose_chosen(EmitterObject *self, Route *r, PyObject *chosen, int one)
{
    if (!PyList_Check(chosen) || (one && PyList_GET_SIZE(chosen) != 1)) {
        PyErr_SetString(PyExc_RuntimeError, one ? "fields route must choose exactly one task"
                                                : "a route's choose returned no list");
        return -1;
    }
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(chosen); i++) {
        PyObject *task = PyList_GET_ITEM(chosen, i);
        Batch *found = NULL;
        for (Py_ssize_t k = 0; found == NULL && k < r->n; k++) {
            int eq = PyObject_RichCompareBool(r->batches[k]->task, task, Py_EQ);
            if (eq < 0)
                return -1;
            if (eq)
                found = r->batches[k];
        }
        if (found == NULL) {
            PyErr_Format(PyExc_RuntimeError, "a route chose task %R, which it does not have",
                         task);
            return -1;
        }
        if (choose_add(self, found) < 0)
            return -1;
    }
    return 0;
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
        return choose_add(self, r->groups[h % r->ngroups]);
    /* a key not hashed here: the route's choose is the definition */
    PyObject *chosen = PyObject_CallFunctionObjArgs(r->choose, tup, Py_None, NULL);
    if (chosen == NULL)
        return -1;
    int rc = choose_chosen(self, r, chosen, 1);
    Py_DECREF(chosen);
    return rc;
}

static int
choose_by_route(EmitterObject *self, Route *r, Values *v, PyObject *direct_task)
{
    PyObject *values = values_list(v);
    if (values == NULL)
        return -1;
    PyObject *chosen = PyObject_CallFunctionObjArgs(r->choose, values, direct_task, NULL);
    Py_DECREF(values);
    if (chosen == NULL)
        return -1;
    int rc = choose_chosen(self, r, chosen, 0);
    Py_DECREF(chosen);
    return rc;
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
emitter_append_frame(EmitterObject *self, PyObject *frame, Py_ssize_t size)
{
    int rc = PyList_Append(self->outbox, frame);
    Py_DECREF(frame);
    if (rc == 0)
        self->outbox_bytes += size;
    return rc;
}

static int
emitter_frame_acks(EmitterObject *self)
{
    return ackout_drain(self->acks, self->outbox, 1, self->task_id, &self->outbox_bytes);
}

/* One batch -> a DATA frame in the outbox (after any acking traffic: a spout's
 * init must reach its stmgr before the tree's tuples); the batch is empty. */
static int
emitter_frame(EmitterObject *self, Batch *b)
{
    if (self->acks->pending && emitter_frame_acks(self) < 0)
        return -1;
    StreamOut *s = b->stream;
    Py_ssize_t head = array_header_size(b->count);
    Py_ssize_t rest = s->utf8_len + head + b->buf.len;
    PyObject *frame = PyBytes_FromStringAndSize(NULL, FRAME_DATA_HEADER + rest);
    if (frame == NULL)
        return -1;
    unsigned char *p = (unsigned char *)PyBytes_AS_STRING(frame);
    frame_put_header(p, FRAME_KIND_DATA, b->task_id, self->task_id, (uint32_t)b->count,
                     (uint16_t)s->utf8_len, rest);
    p += FRAME_DATA_HEADER;
    memcpy(p, s->utf8, s->utf8_len);
    p += s->utf8_len;
    Buf h = {(char *)p, 0, head}; /* the array header, written in place */
    pack_array_header(&h, b->count);
    if (b->buf.len)
        memcpy(p + head, b->buf.data, b->buf.len);
    self->open_bytes -= b->buf.len;
    b->count = 0;
    buf_reset(&b->buf);
    return emitter_append_frame(self, frame, FRAME_DATA_HEADER + rest);
}

/* Add one copy's entry, [*values] or, at least once, [*values, anchors], of
 * `size` bytes to b: the destination's other open batch is framed first (emit
 * order), and so is b if the frame would overflow; b is framed after if full. */
static int
append_entry(EmitterObject *self, Batch *b, StreamOut *s, const char *anchors, Py_ssize_t alen,
             Py_ssize_t size)
{
    Dest *d = &self->dests[b->dest];
    if (d->open != b) {
        if (d->open != NULL && d->open->count && emitter_frame(self, d->open) < 0)
            return -1;
        d->open = b;
    }
    if (b->count && b->buf.len + size > s->max_entry && emitter_frame(self, b) < 0)
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
    self->open_bytes += size;
    if (++b->count >= self->limit)
        return emitter_frame(self, b);
    return 0;
}

static int
emitter_flush(EmitterObject *self)
{
    if (self->acks->pending && emitter_frame_acks(self) < 0)
        return -1;
    for (Py_ssize_t i = 0; i < self->ndests; i++) {
        Batch *b = self->dests[i].open;
        if (b != NULL && b->count && emitter_frame(self, b) < 0)
            return -1;
    }
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
            rc = emitter_warn(self, "emit anchored to a tuple already acked or failed; "
                                    "not anchored");
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
emitter_send(EmitterObject *self, StreamOut *s, Values *v, PyObject *tup_id, PyObject *anchors)
{
    int spout = !self->bolt;
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
        /* the tree's init goes out before any of its tuples can (framing a full
         * batch below sends the acking traffic first) */
        if (copies > 8 && (edges = PyMem_Malloc(copies * sizeof(uint64_t))) == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        root = self->next_root++;
        for (Py_ssize_t i = 0; i < copies; i++)
            xor ^= (edges[i] = rng_next(&self->rng));
        int error = 0;
        double now = monotonic_now(self, &error);
        int rc = error ? -1 : inflight_add(self->in_flight, root, tup_id, now);
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
        rc = append_entry(self, self->chosen[i], s, ap, al, size);
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
    if (self->open_bytes > self->batch_max_bytes)
        return emitter_flush(self);
    return 0;
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
        if (PyUnicode_Check(k) && PyUnicode_Compare(k, names[i]) == 0)
            return i;
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

/* Choose every destination of one emit into self->chosen. */
static int
emitter_choose(EmitterObject *self, StreamOut *s, PyObject *tup, Values *v, PyObject *direct)
{
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
        case R_FIELDS:
            rc = choose_by_fields(self, r, tup, v);
            break;
        default:
            rc = choose_by_route(self, r, v, direct);
        }
        if (rc < 0)
            return -1;
    }
    return 0;
}

/* emit(tup, ...): a spout's (tup, tup_id, stream, direct_task, need_task_ids) or a
 * bolt's (tup, stream, anchors, direct_task, need_task_ids), every keyword. */
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
    if (self->outbox == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "Emitter is not initialized");
        return NULL;
    }
    if (nargs < 1 || nargs > 1 + A_COUNT)
        return PyErr_Format(PyExc_TypeError, "emit() takes from 1 to %d positional arguments",
                            1 + A_COUNT);
    const int *order = self->bolt ? bolt_order : spout_order;
    for (Py_ssize_t i = 1; i < nargs; i++) {
        a[order[i - 1]] = args[i];
        seen |= 1 << order[i - 1];
    }
    if (kwnames != NULL) {
        for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(kwnames); i++) {
            PyObject *name = PyTuple_GET_ITEM(kwnames, i);
            int slot = keyword_slot(name);
            if (slot < 0)
                return PyErr_Format(PyExc_TypeError,
                                    "emit() got an unexpected keyword argument %R", name);
            if (seen & (1 << slot))
                return PyErr_Format(PyExc_TypeError, "emit() got multiple values for argument %R",
                                    name);
            a[slot] = args[nargs + i];
            seen |= 1 << slot;
        }
    }
    if (self->busy) {
        PyErr_SetString(PyExc_RuntimeError, "emit() called while an emit is in progress");
        return NULL;
    }
    StreamOut *s = find_stream(self, a[A_STREAM]);
    if (s == NULL)
        return emit_error("%U emits on stream %R, which its outputs do not declare",
                          self->component, a[A_STREAM]);
    PyObject *tup = args[0];
    if (PyList_CheckExact(tup) || PyTuple_CheckExact(tup))
        Py_INCREF(tup);
    else if ((tup = PySequence_Tuple(tup)) == NULL)
        return NULL;
    PyObject *result = NULL, *anchors = NULL;
    Values v;
    v.held = 0;
    Py_ssize_t size = Py_SIZE(tup);
    if (size != s->arity) {
        emit_error("%U emits %zd values on stream %R, which declares %zd fields",
                   self->component, size, s->name, s->arity);
        goto out;
    }
    if (a[A_DIRECT_TASK] != Py_None && !s->direct) {
        emit_error("direct_task given, but no consumer of stream %R uses Grouping.DIRECT",
                   s->name);
        goto out;
    }
    int need = PyObject_IsTrue(a[A_NEED_TASK_IDS]);
    if (need < 0)
        goto out;
    anchors = Py_NewRef(a[A_ANCHORS]);
    if (self->reliable && self->bolt && anchors != Py_None && !PyList_CheckExact(anchors) &&
        !PyTuple_CheckExact(anchors)) {
        /* heronpy takes a list; one tuple is meant as [tuple] */
        PyObject *seq = PyObject_TypeCheck(anchors, HeronTuple_type)
                            ? PyTuple_Pack(1, anchors)
                            : PySequence_Tuple(anchors);
        Py_SETREF(anchors, seq);
        if (anchors == NULL)
            goto out;
    }
    if (values_take(&v, tup) < 0)
        goto out;
    self->busy = 1;
    int rc = emitter_choose(self, s, tup, &v, a[A_DIRECT_TASK]);
    PyObject *tasks = rc == 0 && need ? tasks_of_chosen(self) : NULL;
    if (rc == 0 && need && tasks == NULL)
        rc = -1;
    if (rc == 0)
        rc = emitter_send(self, s, &v, a[A_TUP_ID], anchors);
    self->busy = 0;
    if (rc < 0)
        Py_XDECREF(tasks);
    else
        result = need ? tasks : Py_NewRef(Py_None);
    values_release(&v);
out:
    Py_XDECREF(anchors);
    Py_DECREF(tup);
    return result;
}

static PyObject *
Emitter_flush(EmitterObject *self, PyObject *unused)
{
    if (self->outbox == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "Emitter is not initialized");
        return NULL;
    }
    if (emitter_flush(self) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *
Emitter_take(EmitterObject *self, PyObject *unused)
{
    if (self->outbox == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "Emitter is not initialized");
        return NULL;
    }
    PyObject *fresh = PyList_New(0);
    if (fresh == NULL)
        return NULL;
    PyObject *frames = self->outbox;
    self->outbox = fresh;
    self->outbox_bytes = 0;
    return frames;
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
    case 2:
        return PyLong_FromSsize_t(self->open_bytes);
    case 3:
        return PyLong_FromSsize_t(self->outbox_bytes);
    case 4:
        return PyBool_FromLong(self->open_bytes > 0 || (self->acks && self->acks->pending));
    case 5:
        return Py_NewRef(self->outbox ? self->outbox : Py_None);
    default:
        return Py_NewRef(self->immediate ? self->immediate : Py_None);
    }
}

static PyMethodDef Emitter_methods[] = {
    {"flush", (PyCFunction)Emitter_flush, METH_NOARGS,
     "Every open batch, and the acking traffic, into the outbox."},
    {"take", (PyCFunction)Emitter_take, METH_NOARGS,
     "The finished frames, in order; the outbox starts empty again."},
    {"counts", (PyCFunction)Emitter_counts, METH_NOARGS, "Tuples emitted by stream."},
    {NULL},
};

static PyGetSetDef Emitter_getset[] = {
    {"count", (getter)Emitter_get, NULL, "tuples emitted", (void *)0},
    {"rejected", (getter)Emitter_get, NULL, "emits rejected for their values", (void *)1},
    {"open_bytes", (getter)Emitter_get, NULL, "bytes of the entries in open batches", (void *)2},
    {"outbox_bytes", (getter)Emitter_get, NULL, "bytes of the frames in the outbox", (void *)3},
    {"has_pending", (getter)Emitter_get, NULL, "open batches or acking traffic wait", (void *)4},
    {"outbox", (getter)Emitter_get, NULL, "the finished frames, in order", (void *)5},
    {"immediate", (getter)Emitter_get, NULL, "spout ids to ack after the round", (void *)6},
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
