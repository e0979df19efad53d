"""User metrics (``heronpy.api.metrics``), registered with
``context.register_metric(name, metric, time_bucket_in_sec)``."""

from __future__ import annotations

from typing import Any


class IMetric:
    """A metric the runtime samples every time bucket."""

    def get_value_and_reset(self) -> Any:
        raise NotImplementedError


class CountMetric(IMetric):
    """A counter, reset at each sample."""

    def __init__(self) -> None:
        self.value = 0

    def incr(self, to_add: int = 1) -> None:
        self.value += to_add

    def get_value_and_reset(self) -> int:
        value, self.value = self.value, 0
        return value


class MultiCountMetric(IMetric):
    """A counter per key, each reset at each sample."""

    def __init__(self) -> None:
        self.value: dict[Any, int] = {}

    def add_key(self, key: Any) -> None:
        self.incr(key, to_add=0)

    def incr(self, key: Any, to_add: int = 1) -> None:
        self.value[key] = self.value.get(key, 0) + to_add

    def get_value_and_reset(self) -> dict[Any, int]:
        value = dict(self.value)
        for key in self.value:
            self.value[key] = 0
        return value


class IReducer:
    """Folds the values of one time bucket into one."""

    def init(self) -> Any:
        raise NotImplementedError

    def reduce(self, value: Any) -> None:
        raise NotImplementedError

    def extract(self) -> Any:
        raise NotImplementedError


class MeanReducer(IReducer):
    """The mean of a bucket's values (None when there were none)."""

    def init(self) -> None:
        self.sum = 0.0
        self.count = 0

    def reduce(self, value: Any) -> None:
        self.sum += value
        self.count += 1

    def extract(self) -> float | None:
        return self.sum / self.count if self.count else None


class ReducedMetric(IMetric):
    """Values reduced by ``reducer`` (a class, instantiated here) per bucket."""

    def __init__(self, reducer: type[IReducer]) -> None:
        self.reducer = reducer()
        self.reducer.init()

    def update(self, value: Any) -> None:
        self.reducer.reduce(value)

    def get_value_and_reset(self) -> Any:
        value = self.reducer.extract()
        self.reducer.init()
        return value


class MultiReducedMetric(IMetric):
    """A `ReducedMetric` per key."""

    def __init__(self, reducer: type[IReducer]) -> None:
        self.reducer = reducer
        self.value: dict[Any, IReducer] = {}

    def add_key(self, key: Any) -> None:
        if key not in self.value:
            reducer = self.reducer()
            reducer.init()
            self.value[key] = reducer

    def update(self, key: Any, value: Any) -> None:
        self.add_key(key)
        self.value[key].reduce(value)

    def get_value_and_reset(self) -> dict[Any, Any]:
        result = {}
        for key, reducer in self.value.items():
            result[key] = reducer.extract()
            reducer.init()
        return result


class AssignableMetrics(IMetric):
    """A gauge: the last value assigned; sampling does not reset it."""

    def __init__(self, init_val: Any) -> None:
        self.value = init_val

    def update(self, value: Any) -> None:
        self.value = value

    def get_value_and_reset(self) -> Any:
        return self.value


class MultiAssignableMetrics(IMetric):
    """A gauge per key."""

    def __init__(self) -> None:
        self.map: dict[Any, AssignableMetrics] = {}

    def update(self, key: Any, value: Any) -> None:
        self.map.setdefault(key, AssignableMetrics(value)).update(value)

    def get_value_and_reset(self) -> dict[Any, Any]:
        return {k: v.get_value_and_reset() for k, v in self.map.items()}


def MeanReducedMetric() -> ReducedMetric:
    return ReducedMetric(MeanReducer)


def MultiMeanReducedMetric() -> MultiReducedMetric:
    return MultiReducedMetric(MeanReducer)
