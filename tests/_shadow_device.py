"""Catch device mixing on a CPU-only machine: a shadow "model device" tracked through torch calls.

On a GPU, code that feeds a CPU tensor to a model on ``cuda`` (``model(images)``), compares
model outputs with CPU labels, or draws random numbers with a CPU generator directly on the
model's device fails with "Expected all tensors to be on the same device". On a CPU machine
every tensor is on the CPU and such code passes. :class:`ShadowDevice` brings the failure to
the CPU without faking numbers: everything still computes on the CPU, but a
``TorchFunctionMode`` follows, for every torch call, which tensors would live on the model's
device and which on the CPU, and records a violation where CUDA would refuse:

* the model's parameters and buffers start "on the device"; their ``.device`` reads
  ``cpu:0`` (a device distinct from ``cpu`` that torch accepts on a CPU machine), so
  ``adapter.device``, ``x.to(model_param.device)`` and ``torch.zeros(..., device=d)`` land on
  the shadow device exactly as they would on ``cuda:0``;
* ``.to(d)``/``.cuda()`` put a tensor on the device when ``d`` is ``cpu:0`` or CUDA, and
  ``.cpu()``/``.to("cpu")`` bring it back; a tensor made by a factory without ``device=``
  is on the CPU; any other op's result is where its inputs are;
* a violation is an op whose inputs include both a device tensor and a CPU tensor (0-d
  tensors aside: CUDA accepts CPU scalars), ``.numpy()`` of a device tensor, indexing a CPU
  tensor with device indices, and a CPU ``torch.Generator`` drawing onto the device.

Tensors the mode never saw being made (created before it, or by autograd in C++, e.g. the
gradients handed to backward hooks) are "unknown" and never flagged: the check can miss
mixing that involves them, but everything it reports is mixing CUDA would reject. Moves to
the same device return a fresh alias (``detach`` or ``view_as``) so the source keeps its side.
"""

from __future__ import annotations

import contextlib
import traceback
import weakref
from collections.abc import Iterator
from typing import Any

import torch
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_flatten

SHADOW = torch.device("cpu", 0)
_CPU, _DEV = "cpu", "device"
_MOVES = {"to", "cuda", "cpu"}
_FREE = {  # no device rule: reading, converting to Python, bookkeeping
    "tolist", "item", "__bool__", "__float__", "__int__", "__index__", "__len__", "__repr__",
    "__format__", "__hash__", "dim", "size", "numel", "stride", "data_ptr", "is_floating_point",
    "is_complex", "element_size", "__reduce_ex__", "__setstate__", "storage_offset",
    "untyped_storage", "_typed_storage", "is_contiguous", "register_hook", "retain_grad",
    "requires_grad_", "backward", "__iter__", "__contains__", "get_device", "nelement",
}


class ShadowDevice(TorchFunctionMode):
    """Run code with ``model`` on a shadow device (see the module docstring).

    Attributes:
        violations: one line per device mix, with the probe source line that made it.
        device_ops: how many torch calls produced a result on the shadow device (a check
            that saw none checked nothing).
    """

    def __init__(self, model: torch.nn.Module | None = None) -> None:
        super().__init__()
        self._state: dict[int, tuple[weakref.ref, str]] = {}
        self.violations: list[str] = []
        self._model = model
        self._paused = False
        self.device_ops = 0  # ops whose result sits on the shadow device: the check is not idle

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """Run without bookkeeping, e.g. model loading: transformers' loader leaves the
        non-persistent buffers of a model (BERT's ``position_ids``) uninitialised when any
        torch function mode is active while it builds the model."""
        self._paused = True
        try:
            yield
        finally:
            self._paused = False

    # ----------------------------------------------------------------- bookkeeping
    def track(self, model: torch.nn.Module) -> None:
        """Put ``model``'s parameters and buffers on the shadow device (a model loaded later)."""
        for tensor in (*model.parameters(), *model.buffers()):
            self._set(tensor, _DEV)

    def __enter__(self) -> ShadowDevice:
        if self._model is not None:
            self.track(self._model)
        # nn.Parameter builds its deep copy with _make_subclass, which no mode sees: a copy
        # of the model (the sanity check's working copy) keeps its side through this wrapper
        original = self._deepcopy = torch.nn.Parameter.__deepcopy__

        def deepcopy(param: torch.nn.Parameter, memo: dict) -> torch.nn.Parameter:
            copied = original(param, memo)
            self._set(copied, self._get(param))
            return copied

        torch.nn.Parameter.__deepcopy__ = deepcopy  # type: ignore[method-assign]
        return super().__enter__()  # type: ignore[no-any-return]

    def __exit__(self, *exc: Any) -> None:
        torch.nn.Parameter.__deepcopy__ = self._deepcopy  # type: ignore[method-assign]
        super().__exit__(*exc)

    def _get(self, tensor: torch.Tensor) -> str | None:
        entry = self._state.get(id(tensor))
        if entry is None or entry[0]() is not tensor:
            return None
        return entry[1]

    def _set(self, tensor: torch.Tensor, side: str | None) -> None:
        if side is None:
            return
        key = id(tensor)
        self._state[key] = (weakref.ref(tensor, lambda _, k=key: self._state.pop(k, None)), side)

    def _flag(self, what: str) -> None:
        ours = ("/probe/", "/viewers/", "/recipes/", "/tests/")
        frames = [f for f in traceback.extract_stack()[:-2] if any(p in f.filename for p in ours)]
        where = f"{frames[-1].filename}:{frames[-1].lineno}" if frames else "?"
        self.violations.append(f"{what} at {where}: {frames[-1].line if frames else ''}")

    @staticmethod
    def _side_of_device(device: Any) -> str | None:
        if device is None:
            return None
        try:
            d = torch.device(device) if not isinstance(device, torch.device) else device
        except (RuntimeError, TypeError):
            return None
        if d.type == "cpu":
            return _DEV if d.index is not None else _CPU
        return _DEV

    def _fresh(self, out: Any, source: torch.Tensor) -> Any:
        """A distinct tensor for a move that returned its source unchanged."""
        if out is not source:
            return out
        if source.requires_grad and source.is_leaf:
            return out  # an alias would not be a leaf; the source changes side (rare)
        return out.view_as(out) if out.requires_grad else out.detach()

    # ----------------------------------------------------------------- the rules
    def __torch_function__(self, func, types, args=(), kwargs=None):  # noqa: C901
        kwargs = kwargs or {}
        if self._paused:
            return func(*args, **kwargs)
        name = getattr(func, "__name__", "")
        owner = getattr(func, "__self__", None)
        if name == "__get__" and owner is not None:  # a property getter: t.device, t.grad, ...
            tensor = args[0] if args else None
            if getattr(owner, "__name__", "") == "device" and isinstance(tensor, torch.Tensor):
                return SHADOW if self._get(tensor) == _DEV else func(*args, **kwargs)
            out = func(*args, **kwargs)
            if isinstance(out, torch.Tensor) and isinstance(tensor, torch.Tensor):
                if self._get(out) is None:
                    self._set(out, self._get(tensor))
            return out
        if name == "__set__":
            return func(*args, **kwargs)
        flat, _ = tree_flatten((args, kwargs))
        tensors = [t for t in flat if isinstance(t, torch.Tensor)]
        if name in _FREE:
            return func(*args, **kwargs)
        if name in ("numpy", "__array__"):
            if tensors and self._get(tensors[0]) == _DEV:
                self._flag(".numpy() of a tensor on the model's device (call .cpu() first)")
            return func(*args, **kwargs)
        if name in _MOVES and tensors:
            return self._move(func, name, args, kwargs)
        if name == "copy_":  # copies between devices are allowed
            return func(*args, **kwargs)
        if name in ("__getitem__", "__setitem__"):
            return self._index(func, name, args, kwargs)
        device_kw = kwargs.get("device")
        generator = kwargs.get("generator")
        sides = {self._get(t) for t in tensors if t.dim() > 0} - {None}
        if _DEV in sides and _CPU in sides:
            shapes = [f"{self._get(t) or 'unknown'} {tuple(t.shape)}" for t in tensors]
            self._flag(f"{name} mixes the model's device and the CPU ({', '.join(shapes)})")
        out = func(*args, **kwargs)
        if device_kw is not None:
            side = self._side_of_device(device_kw)
        elif not tensors:
            side = _CPU  # a factory without device=
        elif name.endswith("_like") and tensors:
            side = self._get(tensors[0])
        else:
            side = _DEV if _DEV in sides or any(self._get(t) == _DEV for t in tensors) else (
                _CPU if _CPU in sides or any(self._get(t) == _CPU for t in tensors) else None
            )
        if isinstance(generator, torch.Generator) and side == _DEV and (
            generator.device.type == "cpu"
        ):
            self._flag(f"{name} draws with a CPU generator onto the model's device")
        self.device_ops += side == _DEV
        for t in tree_flatten(out)[0]:
            if isinstance(t, torch.Tensor) and not any(t is s for s in tensors):
                self._set(t, side)  # an input returned (in place) keeps its side
        return out

    def _move(self, func, name, args, kwargs):
        source = args[0]
        if name == "cpu":
            side = _CPU
        elif name == "cuda":
            side = _DEV
        else:
            side = None
            for value in (*args[1:], kwargs.get("device"), kwargs.get("other")):
                if isinstance(value, torch.Tensor):
                    side = self._get(value)
                    break
                if isinstance(value, (str, torch.device)):
                    side = self._side_of_device(value)
                    break
            if side is None:
                side = self._get(source)  # a dtype-only .to: stays where it is
        out = source if name == "cuda" else func(*args, **kwargs)  # no CUDA here: stay
        out = self._fresh(out, source)
        self._set(out, side)
        return out

    def _index(self, func, name, args, kwargs):
        target = args[0]
        index = tree_flatten(args[1])[0] if len(args) > 1 else []
        side = self._get(target)
        for t in index:
            if isinstance(t, torch.Tensor) and t.dim() > 0 and side == _CPU and (
                self._get(t) == _DEV
            ):
                self._flag(f"{name}: a CPU tensor indexed by indices on the model's device")
        if name == "__setitem__" and len(args) > 2 and isinstance(args[2], torch.Tensor):
            value = args[2]
            if value.dim() > 0 and {side, self._get(value)} == {_CPU, _DEV}:
                self._flag("__setitem__ mixes the model's device and the CPU")
        out = func(*args, **kwargs)
        if name == "__getitem__" and isinstance(out, torch.Tensor):
            self._set(out, side)
        return out
