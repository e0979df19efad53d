"""Large tuples: the spout emits values of the sizes in SIZES (bytes), one
per next_tuple; the 40 MiB one is over the 32 MiB frame limit and must fail
at emit with a clear error, the others must arrive intact."""

import json
import zlib

from harness import output_path

from heronpy_lite.api import Bolt, Grouping, Spout, Topology

SIZES = [1_000, 1_000_000, 8 * 2**20, 8 * 2**20, 20 * 2**20, 40 * 2**20, 10]


class BlobSpout(Spout):
    outputs = ["seq", "blob"]

    def initialize(self, config, context):
        self.seq = 0

    def next_tuple(self):
        if self.seq < len(SIZES):
            seq = self.seq
            self.seq += 1  # before emit: an emit that raises must not be retried forever
            self.emit([seq, bytes([seq % 251]) * SIZES[seq]])


class BlobSink(Bolt):
    outputs = []

    def initialize(self, config, context):
        self.out = open(output_path(config, context), "a", buffering=1)

    def process(self, tup):
        seq, blob = tup.values
        self.out.write(json.dumps([seq, len(blob), zlib.crc32(blob)]) + "\n")


class Large(Topology):
    config = {"topology.stmgrs": 2}
    spout = BlobSpout.spec(par=1)
    sink = BlobSink.spec(par=1, inputs={spout: Grouping.SHUFFLE})
