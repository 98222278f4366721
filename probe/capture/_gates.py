"""The frozen container of CNN attention: :class:`GateTrace` and its :class:`Gate` s.

Convolutional networks attend through gates rather than attention matrices: a channel gate
(squeeze-and-excitation and its relatives) scales every channel of a feature map by one number
per image, a spatial gate (CBAM) scales every position, a channel-spatial gate (gather-excite
with a local extent, coordinate attention) scales every channel at every position, a branch
gate (selective kernel, split attention) mixes parallel convolution branches through a softmax
over the branches per channel, a context map (global context blocks) pools the positions
through a softmax, and a non-local block mixes positions through a full softmax attention
matrix (a bilinear one through a factorised one per channel group). A :class:`GateTrace` holds
what one forward pass of a model computed in each of these modules, with the geometry needed
to put it on the image: the stage each module belongs to, the size of the feature map it gated
and that map's stride relative to the input.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from probe._errors import ProbeError

if TYPE_CHECKING:
    import torch

__all__ = ["Gate", "GateKind", "GateSite", "GateTrace", "GATE_KINDS"]

GateKind = Literal[
    "channel", "spatial", "channel_spatial", "branch", "context", "nonlocal", "bilinear"
]
GATE_KINDS: tuple[str, ...] = (
    "channel", "spatial", "channel_spatial", "branch", "context", "nonlocal", "bilinear"
)
"""Every kind of gate, in the order :attr:`GateTrace.kinds` lists them."""


@dataclass(frozen=True)
class GateSite:
    """One gating module of a model, as an adapter finds it.

    Attributes:
        module: the module (e.g. timm ``SEModule``, CBAM's ``SpatialAttn``).
        name: its path in the model (``"layer4.0.se.spatial"``).
        kind: one of :data:`GATE_KINDS`.
        stage: index of the network stage holding it (0 = first stage), ``-1`` if unknown.
        module_type: the module's class name.
        branches: for branch gates, one label per branch (``"3x3"``, ``"3x3 dil 2 (5x5)"``).
    """

    module: Any
    name: str
    kind: GateKind
    stage: int
    module_type: str
    branches: tuple[str, ...] = ()


@dataclass(frozen=True)
class Gate:
    """What one gating module computed during the forward pass.

    Attributes:
        name: module path in the model.
        kind: one of :data:`GATE_KINDS`.
        module_type: class name of the module (``"SEModule"``, ``"SpatialAttn"``, ...).
        stage: network stage of the module (0 = first), ``-1`` if unknown.
        feature_size: ``(height, width)`` of the feature map the module gated.
        stride: ``(rows, cols)`` input pixels per feature-map cell (input size / feature size).
        values: by kind:

            * ``channel``: ``[batch, channel]``, the factor of each channel;
            * ``spatial``: ``[batch, height, width]``, the factor of each position;
            * ``channel_spatial``: ``[batch, channel, height, width]``, the factor of each
              channel at each position, at the resolution of the gated map (gather-excite's
              coarse gate as the model upsampled it; coordinate attention's ``a_h * a_w``);
            * ``branch``: ``[batch, branch, channel]``, a softmax over the branches for each
              channel (rows sum to 1 over ``branch``): the module outputs
              ``sum_b values[:, b, :, None, None] * branch_b``;
            * ``context``: ``[batch, height, width]``, the softmax over positions with which a
              global-context block pools its context vector (sums to 1 over the map);
            * ``nonlocal``: ``[batch, query, key]`` over the ``height * width`` positions
              (row-major), each row summing to 1.
            * ``bilinear``: ``[batch, group, query, key]``, the attention a bilinear non-local
              block (BAT, ``BatNonLocalAttn``) applies to the channels of each group: its
              transform ``y = P x Q`` is ``A[(i, j), (k, l)] = P[i, k] * Q[l, j]``, rows
              summing to 1.
        source: with ``requires_grad=True`` capture of a hooked gate, the tensor the model
            multiplied by, in the autograd graph (read its gradient with :meth:`gradient`).
        branches: for branch gates, one label per branch (kernel and dilation of a selective
            kernel's paths, ``"radix i"`` for split attention); empty otherwise.
    """

    name: str
    kind: GateKind
    module_type: str
    stage: int
    feature_size: tuple[int, int]
    stride: tuple[float, float]
    values: torch.Tensor
    source: torch.Tensor | None = field(default=None, repr=False, compare=False)
    branches: tuple[str, ...] = ()

    def gradient(self) -> torch.Tensor:
        """Gradient of the gate, shaped like :attr:`values`, after a backward pass.

        Raises:
            ProbeError: not captured with ``requires_grad=True``, a recomputed gate (not on
                the output's path) or no backward pass yet.
        """
        if self.source is None:
            raise ProbeError(
                f"gate {self.name!r} has no gradient: capture with trace_gates(..., "
                "requires_grad=True) (recomputed gates such as NonLocalAttn never have one)"
            )
        if self.source.grad is None:
            raise ProbeError(
                f"gate {self.name!r} has no gradient yet: call .backward() on a scalar of "
                "gate_trace.output first"
            )
        return self.source.grad.reshape(self.values.shape)


@dataclass(frozen=True)
class GateTrace:
    """Every captured gate of one forward pass, in model order.

    Attributes:
        gates: the captured :class:`Gate` s, in the order the modules ran.
        model_name: the model's name.
        image_size: ``(height, width)`` of the input.
        pixel_values: ``[batch, channel, height, width]`` copy of the input.
        output: the model's output (logits ``[batch, classes]`` for classifiers).
        skipped: names of attention-like modules probe found but does not capture (e.g.
            lambda or halo attention layers), with their class names.
    """

    gates: tuple[Gate, ...]
    model_name: str
    image_size: tuple[int, int]
    pixel_values: torch.Tensor | None = None
    output: Any = None
    skipped: tuple[str, ...] = ()

    @property
    def batch_size(self) -> int:
        return int(self.gates[0].values.shape[0])

    @property
    def stages(self) -> tuple[int, ...]:
        """Stages that hold at least one captured gate, ascending."""
        return tuple(sorted({g.stage for g in self.gates}))

    @property
    def kinds(self) -> tuple[str, ...]:
        """Kinds of gate present, in :data:`GATE_KINDS` order."""
        present = {g.kind for g in self.gates}
        return tuple(k for k in GATE_KINDS if k in present)

    def select(self, kind: GateKind | None = None, stage: int | None = None) -> tuple[Gate, ...]:
        """Gates of one kind and/or one stage (negative stages count from the last one).

        Raises:
            ProbeError: an unknown kind, or no gate matches.
        """
        if kind is not None and kind not in GATE_KINDS:
            raise ProbeError(f"gate kind must be one of {list(GATE_KINDS)}, got {kind!r}")
        gates = [g for g in self.gates if kind is None or g.kind == kind]
        if not gates:
            raise ProbeError(
                f"{self.model_name} has no {kind} gates; it has {list(self.kinds)}"
            )
        if stage is not None:
            stages = sorted({g.stage for g in gates})
            if isinstance(stage, bool) or not isinstance(stage, int) or not (
                -len(stages) <= stage < len(stages) or stage in stages
            ):
                raise ProbeError(
                    f"stage {stage!r} has no {kind or ''} gates: stages with gates are {stages}"
                )
            wanted = stage if stage in stages and stage >= 0 else stages[stage]
            gates = [g for g in gates if g.stage == wanted]
        return tuple(gates)

    def stack(self, kind: GateKind, stage: int | None = None) -> torch.Tensor:
        """The values of the selected gates stacked: ``[module, batch, ...]``.

        Channel gates give ``[module, batch, channel]``, spatial and context maps ``[module,
        batch, height, width]``, channel-spatial ``[module, batch, channel, height, width]``,
        branch gates ``[module, batch, branch, channel]``, non-local ``[module, batch, query,
        key]``, bilinear ``[module, batch, group, query, key]``.

        Raises:
            ProbeError: the selected modules have different shapes (pick one ``stage``).
        """
        import torch

        gates = self.select(kind, stage)
        shapes = {tuple(g.values.shape) for g in gates}
        if len(shapes) > 1:
            raise ProbeError(
                f"the {kind} gates have different shapes {sorted(shapes)}: pass stage= to stack "
                "the modules of one stage"
            )
        return torch.stack([g.values for g in gates])

    def __repr__(self) -> str:
        counts = ", ".join(f"{k}={len(self.select(k))}" for k in self.kinds)
        return (
            f"GateTrace(model={self.model_name!r}, batch={self.batch_size}, "
            f"image={self.image_size[0]}x{self.image_size[1]}, {counts})"
        )
