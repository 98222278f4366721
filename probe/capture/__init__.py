"""Capture: the one room that runs models. Model adapters, attention sites, the recorder,
and the frozen :class:`~probe.capture._trace.Trace` every later room reads.
"""
