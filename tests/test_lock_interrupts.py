"""The model lock (probe.capture._locks.model_lock) left clean by an interrupt: a Ctrl-C
(KeyboardInterrupt) while a thread waits for the lock or while it takes a model's modules
must leave none of them held, or every other thread touching the model waits forever."""

from __future__ import annotations

import os
import signal
import sys
import threading
from typing import Any

import pytest
import torch

from probe.capture import _locks
from probe.capture._locks import model_lock


def _model() -> torch.nn.Module:
    return torch.nn.Sequential(*[torch.nn.Linear(2, 2) for _ in range(6)])


def _free_on_another_thread(model: Any) -> bool:
    got = threading.Event()

    def other() -> None:
        with model_lock(model):
            got.set()

    th = threading.Thread(target=other)
    th.start()
    th.join(timeout=10)
    return got.is_set()


def test_an_interrupt_at_any_line_of_taking_the_lock_leaves_nothing_held():
    model = _model()
    here = _locks.__file__
    raised_at = []
    for k in range(1, 500):
        count = 0

        def tracer(frame: Any, event: str, _arg: Any, k: int = k) -> Any:
            nonlocal count
            if frame.f_code.co_filename == here and event == "line":
                count += 1
                if count == k:
                    raise KeyboardInterrupt
            return tracer

        cm = model_lock(model)
        sys.settrace(tracer)
        try:
            cm.__enter__()
        except KeyboardInterrupt:
            sys.settrace(None)
            raised_at.append(k)
            del cm  # the caller's frame drops it as the exception unwinds
            assert _locks._HELD == {}, f"an interrupt at line event {k} left modules held"
            # a tracer artifact, not a signal's: the line event a ``with`` block's exit fires
            # comes before its __exit__ call, so raising there skips __exit__ (the interpreter
            # checks for signals only after calls and on loops, never at that point)
            while _locks._COND._lock._is_owned():  # type: ignore[attr-defined]
                _locks._COND.release()
            continue
        finally:
            sys.settrace(None)
        cm.__exit__(None, None, None)
        break
    assert len(raised_at) >= 5  # the tracer did hit the acquisition, line by line
    assert _locks._HELD == {}
    assert _free_on_another_thread(model)


def test_an_interrupt_while_waiting_for_the_lock_leaves_nothing_held():
    model = _model()
    holding, release = threading.Event(), threading.Event()

    def holder() -> None:
        with model_lock(model):
            holding.set()
            release.wait(timeout=20)

    th = threading.Thread(target=holder)
    th.start()
    assert holding.wait(timeout=10)
    # a real SIGINT (Ctrl-C): it wakes the blocked wait, as _thread.interrupt_main would not
    timer = threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        with model_lock(model[0]):  # waits: the holder has every module of model
            pytest.fail("took a module another thread holds")
    release.set()
    th.join(timeout=10)
    assert _locks._HELD == {}
    assert _free_on_another_thread(model)


def test_an_exception_in_the_block_releases_every_module():
    model = _model()
    with pytest.raises(RuntimeError, match="boom"):
        with model_lock(model), model_lock(model[2]):
            raise RuntimeError("boom")
    assert _locks._HELD == {}
    assert _free_on_another_thread(model)
