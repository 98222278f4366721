"""``probe.plot(trace, view)`` and ``probe render VIEW`` draw the same figure for the same view:
the same title (the sentence on its second line for heads, the model view and links), the
same row label of a rollout strip, the same colourbar label."""

from __future__ import annotations

import matplotlib
import pytest

import probe

matplotlib.use("Agg")

TEXT = "The animal didn't cross the street because it was too tired."


@pytest.fixture(scope="module")
def minilm():
    return probe.load_model("minilm")


def _texts(fig) -> list[str]:
    """Every non-empty text of ``fig`` but tick labels, in drawing order."""
    from matplotlib.text import Text

    ticks = {id(t) for ax in fig.axes for t in [*ax.get_xticklabels(), *ax.get_yticklabels()]}
    return [t.get_text() for t in fig.findobj(Text) if t.get_text() and id(t) not in ticks]


def _render(model, tokenizer, view: str, **args):
    from probe.commands.render import RenderArgs, Session
    from probe.commands.render._figures import VIEWS

    session = Session(RenderArgs(view=view, text=TEXT, **args), model, tokenizer,
                      "minilm", "text", text=TEXT)
    ((_, fig),) = VIEWS[view](session)
    return session, fig


@pytest.mark.parametrize("view, plot_args, render_args", [
    ("rollout", {}, {}),
    ("rollout", {"fusion": "max"}, {"fusion": "max"}),
    ("links", {"layer": 2}, {"layer": 2}),
    ("heads", {"layer": 2}, {"layer": 2}),
    ("head", {"layer": 2, "head": 3}, {"layer": 2, "head": 3}),
])
def test_plot_and_render_draw_the_same_texts(minilm, view, plot_args, render_args):
    """The rollout strip had no row label from probe.plot and "rollout" from render; links
    and heads had the sentence under the title from probe.plot only."""
    model, tokenizer = minilm
    session, rendered = _render(model, tokenizer, view, **render_args)
    trace = session.trace()
    plotted = probe.plot(trace, view, **plot_args)
    assert _texts(plotted) == _texts(rendered)
    if view == "rollout":
        assert ("rollout[head_fusion=max]" if plot_args else "rollout") in _texts(plotted)
        # under the title, from both: the rows read (MiniLM is mean-pooled) and what is left out
        assert any(t.endswith("\nmean over the query rows \u00b7 [CLS], [SEP] not shown")
                   for t in _texts(rendered))
    if view in ("links", "heads"):
        assert any("\u201cThe animal didn't cross" in t for t in _texts(rendered))
