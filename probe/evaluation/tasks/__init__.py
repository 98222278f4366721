"""``probe eval``: evaluate every registered attribution method against ground truth.

Four tasks, each printing a markdown table and optionally writing a JSON file:

``faithfulness`` (vision, default model ``vit-shapes``)
    ``N`` generated shape images (:func:`probe.make_shapes`, seed ``EVAL_IMAGE_SEED + 1000 *
    --seed``: the ``vit-shapes`` recipe trains on seeds >= 1,000,000 and reports its held-out
    accuracy on seed 10,000, so these images are seen by neither). Every method of
    ``probe.list_methods("vision")`` explains the predicted class of every image (methods that
    refuse the input size, e.g. exact attention flow on 65 tokens, are listed as skipped with
    their reason), in batches of ``batch_size`` images per call. Per method:

    * **pointing game** (Zhang et al. 2016, "Top-down Neural Attention by Excitation Backprop"),
      on one common grid so methods are comparable: every map is brought to the model's patch
      grid (:func:`to_patch_grid`; pixel maps by average pooling), the top patch is the one
      with the highest raw score (ties broken uniformly at random with a fixed seed), and it
      is a hit when it contains at least one object pixel (:func:`pointing_game`). Chance level
      is the mean fraction of object patches, which is reported next to it.
    * **mass on object**: the fraction of the map's *positive* mass that lies on object patches
      (a patch containing any object pixel, :func:`object_patch_mask`); negative scores are
      ignored, maps without positive mass are left out of the mean (:func:`mass_on_object`).
      Chance level is again the mean object-patch fraction.
    * **deletion and insertion AUC** from :func:`probe.evaluation._faithfulness.faithfulness`:
      patches are removed (replaced by the image's own mean colour, ``baseline="mean"``) or revealed
      on an all-mean-colour image in order of decreasing raw score, in ``steps=16`` equal
      steps (4 of the 64 patches each); the score is the softmax probability of the class
      predicted on the clean image; AUC by the trapezoid rule over the fraction in ``[0, 1]``.
      Deletion: lower is better; insertion: higher is better.
    * **time per image**: wall-clock seconds of :func:`probe.attribute` per image (batched,
      including the method's own forward and backward passes).

    Also the model's accuracy on the images, and a comparison with the ordering Chefer et al.
    2021 report on ImageNet (:data:`PUBLISHED_REFERENCE`, :func:`chefer_ordering`).

``sanity`` (vision, default ``vit-shapes``, ``N = 16``)
    The cascading model-parameter randomisation test (Adebayo et al. 2018) of
    :func:`probe.evaluation._sanity.sanity_check` for every vision method: the rank correlation of
    each map with the original after each randomisation step, averaged over the images. Attention-
    only methods are reported like every other method, whatever they show. On a CNN
    (``cnn-shapes``, timm CNNs at their configured input size) the cascade walks the residual
    blocks, and the methods are CBAM's spatial gates (per stage and their mean, where the model
    has CBAM), GradCAM, IG, saliency, input x gradient and random.

``text`` (default ``minilm``)
    The sentence pairs shipped in ``probe/models/data/sentence_pairs.json``: for each pair the first
    sentence is explained with the target "cosine similarity of its embedding to the second
    sentence's" (:func:`probe.attribution._targets.similarity_target`). Per method: Spearman and
    Kendall agreement with Integrated Gradients over the real, non-special tokens (IG taken in
    absolute value: a strongly negative token matters as much as a strongly positive one; signed
    values are in the JSON too), and ERASER comprehensiveness/sufficiency (``[MASK]`` replacement,
    next to random orders and the ``random`` method).

``coref`` (default ``minilm``)
    Winograd-style minimal pairs shipped in ``probe/models/data/coref_pairs.json`` (or a user
    file of ``sentence|pronoun|correct|distractor`` lines, ``--data``): per head, the rollout
    and the majority of heads, the accuracy (correct antecedent weighted above the
    distractor), pair accuracy and an exact binomial p-value against 50%, with the best head
    Bonferroni-corrected and selected/scored on held-out halves of the pairs
    (:mod:`probe.evaluation.tasks._coref`).

Run time, measured on the 2-core shared CPU with ``OMP_NUM_THREADS=1`` (wall clock, including
start-up and model loading; ``"run_time_s"`` in ``benchmarks/eval-*.json`` is the evaluation
alone): ``faithfulness`` with ``N = 500`` 5 min 8 s (Integrated Gradients is 70% of it, 0.22 s
per image; 4.5 GB peak memory), ``--quick`` (``N = 48``) about 1 min; ``sanity`` (``N = 16``)
about 100 s (Integrated Gradients and flow dominate); ``text`` (25 pairs) 68 s. On a CPU shared with
other jobs, set ``OMP_NUM_THREADS=1``: these evals run many small forward passes, and two OpenMP
threads spin-waiting for each other on busy cores made them about 10x slower in our measurements.
"""

from __future__ import annotations

from probe.evaluation._geometry import (
    mass_on_object,
    object_patch_mask,
    pointing_game,
    to_patch_grid,
)
from probe.evaluation.tasks._coref import (
    coref_markdown,
    eval_coref,
    load_coref_pairs,
    parse_coref_lines,
)
from probe.evaluation.tasks._common import (
    DEFAULT_MODEL,
    DEFAULT_N,
    EVAL_IMAGE_SEED,
    MAX_IMAGE_SEED,
    QUICK_N,
)
from probe.evaluation.tasks._faithfulness import (
    CHEFER_ORDER,
    PUBLISHED_REFERENCE,
    chefer_ordering,
    eval_faithfulness,
    faithfulness_markdown,
)
from probe.evaluation.tasks._sanity import eval_sanity, sanity_markdown
from probe.evaluation.tasks._text import eval_text, load_sentence_pairs, text_markdown

__all__ = [
    "CHEFER_ORDER",
    "DEFAULT_MODEL",
    "DEFAULT_N",
    "EVAL_IMAGE_SEED",
    "MAX_IMAGE_SEED",
    "PUBLISHED_REFERENCE",
    "QUICK_N",
    "chefer_ordering",
    "coref_markdown",
    "eval_coref",
    "eval_faithfulness",
    "eval_sanity",
    "eval_text",
    "faithfulness_markdown",
    "load_coref_pairs",
    "load_sentence_pairs",
    "mass_on_object",
    "parse_coref_lines",
    "object_patch_mask",
    "pointing_game",
    "sanity_markdown",
    "text_markdown",
    "to_patch_grid",
]
