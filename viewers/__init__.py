"""Matplotlib viewers for probe traces and analyses (installed as ``probe.viewers``)."""
