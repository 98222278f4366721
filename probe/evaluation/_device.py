"""Where ``probe eval`` (and ``probe render``) run the model: ``--device auto|cpu|cuda|cuda:N``.

:func:`resolve_device` turns the ``--device`` string into one concrete device for this
process. It is a pure function of the string, the launcher's environment (``WORLD_SIZE``,
``LOCAL_RANK``) and what CUDA reports, so every case can be tested on a machine without a GPU
by passing the environment and a device count:

============ ================================ ============================================
``--device`` one process                      a launcher rank (``WORLD_SIZE`` > 1)
============ ================================ ============================================
``auto``     ``cuda`` with CUDA, else ``cpu`` ``cuda:LOCAL_RANK`` with CUDA, else ``cpu``
``cpu``      ``cpu``                          ``cpu``
``cuda``     ``cuda`` (error without CUDA)    ``cuda:LOCAL_RANK`` (error without CUDA)
``cuda:N``   ``cuda:N`` (error if N >= count) ``cuda:N`` on every rank (the user's choice)
============ ================================ ============================================

More ranks than GPUs (``LOCAL_RANK >= device_count``) **wrap around**: rank ``r`` runs on
``cuda:(r % device_count)``, with a note for stderr, so two ranks can share one GPU. That is
safe because the ranks exchange their results over gloo (:mod:`probe.evaluation._distributed`),
as Python objects on the CPU, never over NCCL (which refuses two ranks on one GPU).

:func:`place_model` moves the model to that device once, after loading. A model dispatched
by accelerate (``from_pretrained(device_map=...)``, ``dispatch_model``, ``cpu_offload``)
is never moved: its hooks place every layer, and inputs go to its execution device.
Everything downstream follows the model: inputs go to ``adapter_for(model).device``, results
come back to the CPU (``.cpu()``, ``.tolist()``) before they are compared or gathered, and
seeded random numbers are drawn on the CPU, so a GPU run gives the CPU run's JSON to float
tolerance.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from probe._errors import ProbeError
from probe.evaluation._distributed import _env_int

if TYPE_CHECKING:
    import torch
    from torch import nn

__all__ = ["DEVICE_HELP", "DeviceChoice", "move_model", "place_model", "resolve_device"]

DEVICE_HELP = (
    "where the model runs: auto (default: cuda:LOCAL_RANK under accelerate launch/torchrun "
    "when CUDA is available, cuda in one process with CUDA, else cpu), cpu, cuda (under a "
    "launcher each rank takes cuda:LOCAL_RANK; more ranks than GPUs share them round-robin) "
    "or cuda:N. The model is moved once after loading; a model dispatched by accelerate "
    "(device_map) is never moved. Results are gathered over gloo, so ranks may share a GPU"
)


@dataclass(frozen=True)
class DeviceChoice:
    """The device of this process and, when worth saying, a one-line note for stderr.

    Attributes:
        device: ``"cpu"``, ``"cuda"`` or ``"cuda:N"`` (a string ``torch.device`` accepts).
        note: e.g. that this launcher rank shares a GPU with another rank; ``None`` if none.
    """

    device: str
    note: str | None = None


def resolve_device(
    spec: str = "auto",
    *,
    environ: Mapping[str, str] | None = None,
    cuda_available: bool | None = None,
    device_count: int | None = None,
) -> DeviceChoice:
    """The device this process runs its model on (see the module docstring for the table).

    Args:
        spec: ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"cuda:N"`` (``--device``).
        environ: the environment to read ``WORLD_SIZE`` and ``LOCAL_RANK`` from (default:
            ``os.environ``); a process is a launcher rank when ``WORLD_SIZE`` > 1.
        cuda_available: whether CUDA is usable (default: ``torch.cuda.is_available()``).
        device_count: number of CUDA devices (default: ``torch.cuda.device_count()``).

    Returns:
        The :class:`DeviceChoice`.

    Raises:
        ProbeError: a string torch does not understand, a device type other than CPU or CUDA,
            CUDA asked for where there is none, or ``cuda:N`` beyond the device count.
    """
    env = os.environ if environ is None else environ
    if not isinstance(spec, str) or not spec.strip():
        raise ProbeError(f"--device must be auto, cpu, cuda or cuda:N, got {spec!r}")
    spec = spec.strip().lower()
    if spec == "cpu":
        return DeviceChoice("cpu")  # without asking CUDA anything (probe render's default)
    if cuda_available is None or device_count is None:
        import torch

        if cuda_available is None:
            cuda_available = bool(torch.cuda.is_available())
        if device_count is None:
            device_count = int(torch.cuda.device_count()) if cuda_available else 0
    if not cuda_available:
        device_count = 0
    launched = _env_int("WORLD_SIZE", 1, env) > 1
    local = _env_int("LOCAL_RANK", 0, env)
    if spec == "auto":
        if not cuda_available or device_count < 1:
            return DeviceChoice("cpu")
        return _per_rank(local, device_count) if launched else DeviceChoice("cuda")
    device = _parse(spec)
    if device.type == "cpu":
        return DeviceChoice("cpu")
    if device.type != "cuda":
        raise ProbeError(
            f"--device {spec}: probe runs models on cpu or cuda; use auto, cpu, cuda or cuda:N"
        )
    if not cuda_available or device_count < 1:
        raise ProbeError(
            f"--device {spec} but torch sees no CUDA device here: use --device cpu (or auto)"
        )
    if device.index is None:
        return _per_rank(local, device_count) if launched else DeviceChoice("cuda")
    if device.index >= device_count:
        raise ProbeError(
            f"--device {spec} but torch sees {device_count} CUDA device(s): use cuda:0 to "
            f"cuda:{device_count - 1}, or cuda"
        )
    return DeviceChoice(f"cuda:{device.index}")


def _per_rank(local: int, count: int) -> DeviceChoice:
    """``cuda:LOCAL_RANK``, wrapping around when there are more ranks than GPUs."""
    if local < 0:
        raise ProbeError(f"environment variable LOCAL_RANK={local} must be 0 or more")
    index = local % count
    note = None
    if local >= count:
        note = (
            f"LOCAL_RANK {local} but {count} CUDA device(s): this rank shares cuda:{index} "
            "with another rank (results are gathered over gloo, so sharing is safe)"
        )
    return DeviceChoice(f"cuda:{index}", note)


def _parse(spec: str) -> torch.device:
    import torch

    try:
        return torch.device(spec)
    except (RuntimeError, ValueError, TypeError):
        raise ProbeError(
            f"--device {spec!r} is not a device torch understands: use auto, cpu, cuda or cuda:N"
        ) from None


def move_model(model: nn.Module, device: str) -> str:
    """Move ``model`` to ``device`` in place (``nn.Module.to``) unless accelerate dispatched it.

    Returns:
        The device the model computes on (for a dispatched model, its execution device).
    """
    from probe.capture import adapter_for
    from probe.capture.adapters._dispatch import is_dispatched

    if not is_dispatched(model):
        model.to(device)
    return str(adapter_for(model).device)


@contextlib.contextmanager
def place_model(model: nn.Module, device: str, *, restore: bool = False) -> Iterator[str]:
    """Run ``model`` on ``device`` for the duration; yields the device it runs on.

    A model dispatched by accelerate (any module carrying its ``_hf_hook``) is left where its
    device map put it, and the yielded device is its execution device. Otherwise the model is
    moved with ``model.to(device)`` (in place, as ``nn.Module.to`` does), and a ``cuda:N``
    device is CUDA's current device for the duration (``torch.cuda.device``). With ``restore``
    (a model the caller handed in, not one probe loaded) it goes back to the device it came
    from on exit, also when the body raises; a model spread over several devices without
    accelerate is then not moved at all (moving it back could not restore the spread).

    Args:
        model: the model.
        device: a device :func:`resolve_device` returned.
        restore: move the model back on exit.

    Yields:
        The device string the model computes on.
    """
    import torch

    from probe.capture import adapter_for
    from probe.capture.adapters._dispatch import is_dispatched

    if is_dispatched(model):
        yield str(adapter_for(model).device)
        return
    devices = {t.device for t in (*model.parameters(), *model.buffers())}
    target = torch.device(device)
    if restore and len(devices) > 1:
        yield ", ".join(sorted(str(d) for d in devices))
        return
    before = next(iter(devices), None)
    model.to(target)
    # the rank's GPU is also CUDA's current device meanwhile, so that nothing allocated on a
    # bare "cuda" (by probe, captum or torch itself) lands on GPU 0; restored on exit
    current = (
        torch.cuda.device(target) if target.type == "cuda" and target.index is not None
        else contextlib.nullcontext()
    )
    try:
        with current:
            yield str(adapter_for(model).device)
    finally:
        if restore and before is not None and before != target:
            model.to(before)
