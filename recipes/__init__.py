"""Recipes: scripts that build probe's own artefacts (installed as ``probe.recipes``)."""
