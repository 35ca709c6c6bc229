"""Inside a warm kernel (``kernels``): ``warm_up`` once after it starts, ``fresh_start`` before each step, so
that each step finds what a fresh kernel has after the step notebooks' imports. The runner sends calls of
these as code; it never imports this module (it imports the step code)."""
from __future__ import annotations

import os
import sys

_FRESH: dict = {}


def warm_up() -> None:
    """In a new kernel: import what the step notebooks import, and remember what a fresh kernel has at that
    point (its names, torch's random state and threads). The objects made so far are frozen out of the
    garbage collector's passes (``gc.freeze``), so that ``fresh_start``'s collection is quick."""
    import gc

    import IPython.display  # noqa: F401
    import pandas  # noqa: F401
    import torch
    from IPython import get_ipython

    from .. import experiment  # noqa: F401

    _FRESH.update(names=set(get_ipython().user_ns), rng=torch.get_rng_state(), threads=torch.get_num_threads())
    gc.collect()
    gc.freeze()


def fresh_start(env: dict[str, str]) -> None:
    """In a warm kernel, before a step: what ``warm_up`` left, as a fresh kernel would have it."""
    import gc

    import torch
    from IPython import get_ipython

    from .. import timing

    ns = get_ipython().user_ns
    for name in set(ns) - _FRESH["names"]:  # the previous notebook's variables and outputs (_5, _i5, ...)
        del ns[name]
    ns["_oh"].clear()
    ns.update(_="", __="", ___="")
    if "matplotlib.pyplot" in sys.modules:
        sys.modules["matplotlib.pyplot"].close("all")
    gc.collect()
    os.environ.update(env)
    torch.set_rng_state(_FRESH["rng"])
    torch.set_num_threads(_FRESH["threads"])
    timing.reset()
