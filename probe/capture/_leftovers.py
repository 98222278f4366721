"""What a forward run by probe may leave on a model that probe did not put there: put away.

transformers 5 installs its output-capturing hooks (one forward hook per attention and layer
module, inert unless a forward asks for ``output_attentions`` / ``output_hidden_states``) the
first time a forward asks for them, marks the model ``_output_capturing_hooks_installed`` and
keeps them for good. When such a forward runs inside probe (``probe.trace(model, x,
output_attentions=True)``, ``probe.generate(..., output_hidden_states=True)``), the model would
leave probe with hooks it did not have: :func:`new_output_hooks_removed` takes them off again
(and clears the mark, so a later forward of the user's installs them as it would have).
Hooks that were there before the call are never touched (nor hooks of other code: only
the hook function transformers defines, added during the call, is removed).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["new_output_hooks_removed"]

_MARK = "_output_capturing_hooks_installed"
_HOOK = "output_capturing_hook"  # the hook's function name in transformers.utils


def _modules(model: Any) -> list[Any]:
    modules = getattr(model, "modules", None)
    if not callable(modules):
        return []
    try:
        return list(modules())
    except TypeError:
        return []


@contextmanager
def new_output_hooks_removed(model: Any) -> Iterator[None]:
    """Run the block; then remove the output-capturing hooks transformers installed during it
    on ``model`` (submodels included) and clear their mark."""
    modules = _modules(model)
    before = {id(m) for m in modules if getattr(m, _MARK, False)}
    # every forward hook there before the call, by module: those are never touched
    had = {id(m): set(getattr(m, "_forward_hooks", {})) for m in modules}
    try:
        yield
    finally:
        modules = _modules(model)
        fresh = [m for m in modules if getattr(m, _MARK, False) and id(m) not in before]
        if fresh:
            for m in modules:
                old = had.get(id(m), set())
                for key, hook in list(m._forward_hooks.items()):
                    if key not in old and getattr(hook, "__name__", "") == _HOOK and (
                        getattr(hook, "__module__", "") or ""
                    ).startswith("transformers."):
                        m._forward_hooks.pop(key, None)
                        m._forward_hooks_with_kwargs.pop(key, None)
                        m._forward_hooks_always_called.pop(key, None)
            for m in fresh:
                try:
                    delattr(m, _MARK)
                except AttributeError:
                    pass
