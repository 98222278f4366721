"""Tables of two scores per method, each next to its random-order baseline."""

from __future__ import annotations

from typing import Any, ClassVar

import math

from probe._report import MISSING, markdown_table

__all__ = ["ScoreTable"]


class ScoreTable:
    """Mixin of the faithfulness and ERASER tables: rows, markdown, printing.

    A subclass is a dataclass with ``methods``, two ``[num_methods]`` tensors and two
    ``random_<name>`` floats named by :attr:`SCORES` (``(attribute, column header)`` pairs).
    """

    SCORES: ClassVar[tuple[tuple[str, str], tuple[str, str]]]
    methods: tuple[str, ...]

    def to_rows(self) -> list[dict[str, Any]]:
        """One dict per method: ``method``, then each score followed by ``<score>_random``."""
        rows = []
        for i, m in enumerate(self.methods):
            row: dict[str, Any] = {"method": m}
            for name, _ in self.SCORES:
                row[name] = float(getattr(self, name)[i])
                row[f"{name}_random"] = getattr(self, f"random_{name}")
            rows.append(row)
        return rows

    def to_markdown(self, digits: int = 3) -> str:
        header = ["method"]
        for _, title in self.SCORES:
            header += [title, "random"]
        rows = [
            [MISSING if k.endswith("_random") and math.isnan(v) else v for k, v in r.items()]
            for r in self.to_rows()
        ]  # no random baseline (n_random=0): a dash; a method's own nan stays visible
        return markdown_table(header, rows, digits, missing=None)

    def __str__(self) -> str:
        return self.to_markdown()
