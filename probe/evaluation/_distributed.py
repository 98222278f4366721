"""Evaluation split over processes: ``accelerate launch`` or ``torchrun``, gloo on CPU.

An evaluation task works on a list of items (images, batches of images, sentence pairs).
Under a launcher that starts ``N`` processes, each process takes one contiguous block of the
items (:func:`shard`), computes its per-item results, and :func:`gather` puts the blocks back
together in item order on every process; only the main process (:func:`is_main`) prints and
writes. Each item keeps its global index, so seeds derived from it are the same whatever the
number of processes, and concatenating the blocks in rank order gives the very lists one
process would have built: means and standard errors come out identical.

Typical use inside a task::

    for index, item in shard(list(enumerate(items))):
        results[...].append(...)          # per item, seeded by the global ``index``
    results = gather(results)             # dicts of lists concatenated, numbers summed

:func:`session` joins the process group the launcher describes (``WORLD_SIZE``, ``RANK``,
``MASTER_ADDR``, ``MASTER_PORT`` in the environment) and leaves it at the end; outside a
launcher everything is one process and the functions are identities.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from probe._errors import ProbeError

__all__ = [
    "Session", "block_range", "gather", "gather_list", "is_main", "launcher_hint", "merge",
    "rank", "session", "shard", "world_size",
]

T = TypeVar("T")


@dataclass
class Session:
    """The process group of one evaluation run.

    Attributes:
        rank: this process's index, ``0 .. world_size - 1`` (0 is the main process).
        world_size: number of processes.
        shards: how many items :func:`shard` handed to this process, one count per call.
        joined: whether this session initialised the process group (and so destroys it).
    """

    rank: int = 0
    world_size: int = 1
    shards: list[int] = field(default_factory=list)
    joined: bool = False


_CURRENT: Session | None = None


def _dist() -> Any:
    import torch.distributed as dist

    return dist


def _active() -> bool:
    """Whether a torch process group with more than one process is running."""
    if _CURRENT is not None:
        return _CURRENT.world_size > 1
    if "WORLD_SIZE" not in os.environ:
        return False  # not launched: do not import torch.distributed for nothing
    dist = _dist()
    return bool(dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1)


def rank() -> int:
    """This process's rank (0 outside a launcher)."""
    return _dist().get_rank() if _active() else 0


def world_size() -> int:
    """Number of processes (1 outside a launcher)."""
    return _dist().get_world_size() if _active() else 1


def is_main() -> bool:
    """Whether this process prints and writes the results (rank 0)."""
    return rank() == 0


def shard(items: Sequence[T]) -> list[T]:
    """This process's contiguous block of ``items``.

    Blocks differ in size by at most one item and follow rank order, so concatenating them in
    rank order (:func:`gather`) restores ``items``. Pass ``list(enumerate(items))`` to keep
    each item's global index (for seeds). Outside a launcher: all of ``items``.

    Args:
        items: the work of the whole evaluation, in order.

    Returns:
        The items of this rank: ``items[start:stop]``.
    """
    if not isinstance(items, Sequence):
        raise ProbeError(f"shard needs a sequence of items (a list), got {type(items).__name__}")
    block = list(items[block_range(len(items), rank(), world_size())])
    if _CURRENT is not None:
        _CURRENT.shards.append(len(block))
    return block


def block_range(n: int, rank: int, size: int) -> slice:
    """The slice of ``n`` items that process ``rank`` of ``size`` takes (see :func:`shard`):
    contiguous, in rank order, sizes differing by at most one."""
    if size < 1 or not 0 <= rank < size or n < 0:
        raise ProbeError(f"no block {rank} of {size} processes over {n} items")
    per, extra = divmod(n, size)
    start = rank * per + min(rank, extra)
    return slice(start, start + per + (1 if rank < extra else 0))


def merge(parts: Sequence[Any]) -> Any:
    """Combine the per-process results of :func:`gather`, in rank order.

    Lists (and tuples) are concatenated; dicts are merged key by key (recursively; a key
    present in only some parts is kept); numbers are summed; ``None`` parts are ignored; strings
    and other values must agree, except that the first non-``None`` one wins for values that
    only some processes produced (e.g. a geometry read from the first batch).

    Args:
        parts: one result per process, in rank order.

    Returns:
        The merged result.
    """
    present = [p for p in parts if p is not None]
    if not present:
        return None
    first = present[0]
    if isinstance(first, dict):
        keys = list(dict.fromkeys(k for p in present for k in p))
        return {k: merge([p.get(k) for p in present]) for k in keys}
    if isinstance(first, (list, tuple)):
        out = [x for p in present for x in p]
        return type(first)(out) if isinstance(first, tuple) else out
    if isinstance(first, bool):
        return first
    if isinstance(first, (int, float)):
        return sum(present)
    return first


def gather(results: T) -> T:
    """Every process's ``results``, merged in rank order (:func:`merge`), on every process.

    ``results`` must be picklable (lists, dicts, numbers, strings): tensors are gathered as
    Python objects, so convert them with ``.tolist()`` first. Outside a launcher: ``results``
    unchanged.
    """
    if not _active():
        return results
    parts: list[Any] = [None] * world_size()
    _dist().all_gather_object(parts, results)
    return merge(parts)  # type: ignore[no-any-return]


def gather_list(value: T) -> list[T]:
    """One value per process, in rank order (``[value]`` outside a launcher)."""
    if not _active():
        return [value]
    parts: list[Any] = [None] * world_size()
    _dist().all_gather_object(parts, value)
    return parts


@contextlib.contextmanager
def session(backend: str = "gloo") -> Iterator[Session]:
    """Join the process group of ``accelerate launch`` / ``torchrun`` for the duration.

    Outside a launcher (no ``WORLD_SIZE`` above 1 in the environment) this is a one-process
    session that starts nothing. The group is destroyed on exit (also when the body raises)
    if this session created it; after a body that completed, only once every process got
    there (a barrier), so no process closes its connections while another still uses them.

    Args:
        backend: torch.distributed backend; ``"gloo"`` works on CPU and carries the Python
            objects :func:`gather` sends (use it also when the models run on GPUs).

    Yields:
        The :class:`Session` (``rank``, ``world_size``, ``shards``).
    """
    global _CURRENT
    if _CURRENT is not None:
        raise ProbeError("an evaluation session is already running in this process")
    size = _env_int("WORLD_SIZE", 1)
    current = Session()
    if size > 1:
        dist = _dist()
        if not dist.is_available():
            raise ProbeError("this torch build has no torch.distributed: run one process")
        if not dist.is_initialized():
            dist.init_process_group(backend=backend)
            current.joined = True
        current.rank, current.world_size = dist.get_rank(), dist.get_world_size()
    _CURRENT = current
    try:
        yield current
        if current.joined:  # every process done before any tears its connections down
            _dist().barrier()
    finally:
        _CURRENT = None
        if current.joined:
            _dist().destroy_process_group()


def launcher_hint(environ: dict[str, str] | None = None) -> str | None:
    """Why this process is alone although a multi-process launch was asked for, or ``None``.

    ``accelerate launch --cpu --num_processes N`` (and a config with ``distributed_type:
    MULTI_CPU``) starts one process and expects an MPI launcher (``--mpirun_hostfile``) to
    start the others; without one there is a single process, recognisable by accelerate's
    ``ACCELERATE_USE_CPU`` and ``MASTER_ADDR`` (set for ``N > 1``) without ``WORLD_SIZE``.
    ``accelerate launch --multi_gpu --num_processes N`` starts ``N`` processes through
    torchrun, also on a machine without GPUs (this module joins them over gloo).
    """
    env = os.environ if environ is None else environ
    mpi = ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "MV2_COMM_WORLD_SIZE", "PMIX_RANK")
    if (
        env.get("ACCELERATE_USE_CPU", "").lower() == "true"
        and "MASTER_ADDR" in env
        and "WORLD_SIZE" not in env
        and not any(name in env for name in mpi)
    ):
        return (
            "accelerate launch --cpu started one process (its multi-CPU mode needs mpirun): "
            "for N CPU processes use 'accelerate launch --multi_gpu --num_processes N "
            "--main_process_port 0 -m probe.cli eval ...' or torchrun; running on one process"
        )
    return None


def _env_int(name: str, default: int, env: Mapping[str, str] | None = None) -> int:
    """The integer environment variable ``name`` (of ``env``, default ``os.environ``)."""
    raw = (os.environ if env is None else env).get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ProbeError(f"environment variable {name}={raw!r} must be an integer") from None
