"""The JSON shapes of market answers: candle times written straight from NumPy read the
same as the strings built one by one."""

from __future__ import annotations

import numpy as np
import orjson
from hypothesis import given
from hypothesis import strategies as st

from klinewatch.services.market_shapes import iso_times, iso_times_json

# 1970 to 2100, any millisecond (close times end in .999, which second precision drops).
TIMES_MS = st.lists(st.integers(min_value=0, max_value=4_102_444_800_000), max_size=50)


@given(TIMES_MS)
def test_times_written_by_orjson_equal_the_iso_strings(times: list[int]) -> None:
    ms = np.array(times, dtype=np.int64)
    written = orjson.dumps({"t": iso_times_json(ms)})
    assert orjson.loads(written)["t"] == iso_times(ms)


def test_a_candle_time_reads_as_utc_with_a_z() -> None:
    ms = np.array([1_705_330_800_000, 1_705_334_399_999], dtype=np.int64)
    assert orjson.loads(orjson.dumps(iso_times_json(ms))) == [
        "2024-01-15T15:00:00Z",
        "2024-01-15T15:59:59Z",
    ]
