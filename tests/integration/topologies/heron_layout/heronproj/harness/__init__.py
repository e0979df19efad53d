"""A test harness of the shape of Heron's integration_test core: every user
spout and bolt runs inside a wrapper component that is its delegate; specs are
built from dotted class paths; the wrappers pass terminal markers downstream
on a control stream; an aggregator, itself a wrapped user bolt, writes what it
received, sorted, once every terminal has arrived."""
