from heronpy_lite.api import Bolt, Topology


class B(Bolt):
    def process(self, tup):
        pass


# heronpy's metaclass refuses this as the class is created, so the file does not
# import (in heronpy too)
class NoSpout(Topology):
    bolt = B.spec(inputs=["elsewhere"])
