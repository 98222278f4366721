"""An option on a view that ignores it is refused naming every view that reads it, generated
from one declaration (``OPTION_VIEWS`` for ``probe render``, ``_VIEW_OPTIONS`` for
``probe.show``): the refusals named only one view, or a hand-written list that missed some
(``--layer``: "use heads, head or links", while saliency, detr, window, gates and alignment
read it too)."""

from __future__ import annotations

import re

import pytest

from probe._errors import ProbeError
from probe.commands.render._args import OPTION_VIEWS, VIEW_NAMES, RenderArgs, views_phrase

#: one value per option, as RenderArgs holds it
_GIVEN = {
    "--word": dict(word="it"), "--occurrence": dict(occurrence=1),
    "--candidate": dict(candidates=("cat",)), "--layer": dict(layer=0), "--head": dict(head=0),
    "--pair": dict(pair="A dog."), "--query": dict(queries=(0,)),
    "--method": dict(methods=("ig", "saliency")), "--fusion": dict(fusion="max"),
    "--discard": dict(discard=0.5), "--generate": dict(generate=3),
    "--stack": dict(stack="encoder"), "--max-values": dict(max_values=10, formats=("html",)),
    "--context": dict(context="all"), "--block": dict(block=0),
}


def test_the_declaration_covers_every_view_and_option():
    from probe.commands.render._command import add_parser  # registers every view
    from probe.commands.render._figures import VIEWS

    del add_parser
    assert VIEW_NAMES == tuple(VIEWS)
    assert set(_GIVEN) == set(OPTION_VIEWS)
    for views in OPTION_VIEWS.values():
        assert views and set(views) <= set(VIEW_NAMES)


@pytest.mark.parametrize("flag", sorted(OPTION_VIEWS))
def test_render_refusals_name_every_view_that_reads_the_option(flag):
    from probe.commands.render._session import _check_applicable

    readers = OPTION_VIEWS[flag]
    for view in VIEW_NAMES:
        args = dict(view=view, text="The cat saw it.", **_GIVEN[flag])
        if view == "coref" and flag != "--word" or view == "links" and flag == "--occurrence":
            args["word"] = "it"  # coref needs --word; --occurrence picks one of its repeats
        if view not in readers:
            with pytest.raises(ProbeError) as info:
                _check_applicable(RenderArgs(**args))
            message = str(info.value)
            assert message.startswith(f"{flag} does not apply to the {view} view"), message
            assert f"it is used by {views_phrase(readers)} only; drop it" in message, message
            assert "\n" not in message
        else:
            _check_applicable(RenderArgs(**args))  # taken


def test_views_phrase():
    assert views_phrase(["coref"]) == "the coref view"
    assert views_phrase(("detr", "window")) == "the detr and window views"
    assert views_phrase(["a", "b", "c"]) == "the a, b and c views"


@pytest.mark.parametrize("view, option, users", [
    ("detr", "word", "the coref view"),
    ("gates", "methods", "the tokens, image and curves views"),
    ("curves", "layer", "the detr and window views"),
    ("heads", "stage", "the gates view"),
    ("window", "heads", "the heads, cross, alignment, model, image and detr views"),
    ("curves", "target", None),  # read: no refusal
])
def test_show_refusals_name_every_view_that_reads_the_option(view, option, users):
    import probe

    if users is None:
        from probe.commands._show import _check_options

        _check_options(view, {option})
        return
    with pytest.raises(ProbeError, match=rf"^{option}= does not apply to the {view} view: it "
                       rf"is used by {re.escape(users)} only; drop it$"):
        probe.show(object(), view, **{option: 1})


def test_the_show_declaration_covers_every_view():
    from probe.commands._show import _VIEW_OPTIONS, SHOW_VIEWS

    assert set(_VIEW_OPTIONS) == set(SHOW_VIEWS)
