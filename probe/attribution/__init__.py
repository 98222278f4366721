"""Attribution: the method registry (one score per token or patch) with attention-based and
gradient-based methods and the targets they explain.

Importing this package registers the built-in methods: the registry (``_registry``) knows
nothing of them, the method modules import the registry, and this package sits above both.
None of these modules imports torch at import time.
"""

from probe.attribution import (  # noqa: F401  (register the built-ins)
    _attention,
    _cnn,
    _gradcam,
    _gradient,
)
