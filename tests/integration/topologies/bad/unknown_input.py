from heronpy_lite.api import Bolt, Grouping, Spout, Topology
from heronpy_lite.api.component.component_spec import GlobalStreamId


class S(Spout):
    outputs = ["word"]

    def next_tuple(self):
        pass


class B(Bolt):
    def process(self, tup):
        pass


class UnknownInput(Topology):
    spout = S.spec()
    bolt = B.spec(inputs={GlobalStreamId("nosuch", "default"): Grouping.SHUFFLE})


class UnknownStream(Topology):
    spout = S.spec()
    bolt = B.spec(inputs={GlobalStreamId("spout", "other"): Grouping.SHUFFLE})


class UndeclaredField(Topology):
    spout = S.spec()
    bolt = B.spec(inputs={spout: Grouping.fields("count")})


class ZeroPar(Topology):
    spout = S.spec(par=0)


not_a_topology = 42
