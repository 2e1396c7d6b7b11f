"""Run pyHanko's synchronous API safely from any caller.

pyHanko's sync functions call ``asyncio.run``, which refuses to start inside a thread
that already runs an event loop (an ASGI view, a Playwright-driven test, a notebook).
There the call moves to a short-lived worker thread with its own loop.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable


def run_outside_event_loop(fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return fn(*args, **kwargs)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="pyhanko") as pool:
        return pool.submit(fn, *args, **kwargs).result()
