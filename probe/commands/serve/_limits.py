"""The client's resource limits and niceness, taken by ``probe serve``'s worker.

A shell's ``ulimit -v``, ``ulimit -n`` or ``nice -n 10 probe render ...`` applies to the
client process; the worker is a child of the server, so it would otherwise run with the
server's. The client sends every ``RLIMIT_*`` (soft and hard) and its niceness; the worker sets
them before the command runs. An unprivileged process can only lower a hard limit and only
raise its niceness, so a request whose hard limit is above the server's, or whose niceness is
below it, is refused before any worker starts and runs locally (one ``probe: note:`` line).

Not copied (fixed when the server started, or outside these calls): the default stack size of
new threads (glibc reads ``RLIMIT_STACK`` once at start-up), the memory layout an
``RLIMIT_STACK`` sets at ``exec``, CPU affinity (``taskset``), I/O priority (``ionice``),
cgroups and ``oom_score_adj``. ``RLIMIT_CPU`` counts the worker's CPU time from its fork.

Standard library only (the client imports this before anything heavy).
"""

from __future__ import annotations

import os
from typing import Any

__all__ = ["apply", "current", "refusal"]


def current() -> dict[str, Any]:
    """``{"rlimits": {name: [soft, hard]}, "nice": n}`` of the calling process."""
    import resource

    limits: dict[str, list[int]] = {}
    seen: set[int] = set()
    for name in sorted(n for n in dir(resource) if n.startswith("RLIMIT_")):
        number = getattr(resource, name)
        if number in seen:  # RLIMIT_OFILE is RLIMIT_NOFILE
            continue
        seen.add(number)
        try:
            limits[name] = list(resource.getrlimit(number))
        except (ValueError, OSError):
            continue
    return {"rlimits": limits, "nice": os.getpriority(os.PRIO_PROCESS, 0)}


def _value(limit: int) -> float:
    import resource

    return float("inf") if limit == resource.RLIM_INFINITY else float(limit)


def _text(limit: int) -> str:
    import resource

    return "unlimited" if limit == resource.RLIM_INFINITY else str(limit)


def refusal(theirs: Any) -> str | None:
    """Why this process (the server's supervisor) cannot give a worker the client's limits
    and niceness ``theirs`` (from :func:`current`), else ``None``."""
    import resource

    if not isinstance(theirs, dict):
        return "sent no resource limits (an older probe client?)"
    for name, pair in sorted((theirs.get("rlimits") or {}).items()):
        number = getattr(resource, str(name), None)
        if not isinstance(number, int) or not isinstance(pair, list) or len(pair) != 2:
            return f"cannot read the resource limit {name!r} sent"
        hard = resource.getrlimit(number)[1]
        if _value(pair[1]) > _value(hard):
            return (f"runs with a lower hard limit {name} ({_text(hard)}; yours "
                    f"{_text(pair[1])}), which its workers cannot raise")
    nice = theirs.get("nice")
    ours = os.getpriority(os.PRIO_PROCESS, 0)
    if isinstance(nice, int) and nice < ours:
        return f"runs at niceness {ours}, which its workers cannot lower to yours ({nice})"
    return None


def apply(theirs: dict[str, Any]) -> None:
    """Take the client's limits and niceness (checked by :func:`refusal` beforehand)."""
    import resource

    for name, (soft, hard) in (theirs.get("rlimits") or {}).items():
        resource.setrlimit(getattr(resource, name), (soft, hard))
    nice = theirs.get("nice")
    if isinstance(nice, int) and nice != os.getpriority(os.PRIO_PROCESS, 0):
        os.setpriority(os.PRIO_PROCESS, 0, nice)
