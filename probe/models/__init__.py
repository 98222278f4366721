"""Models and data that ship with probe: the model registry behind ``probe.load_model``,
the trained ``vit-shapes`` model, generated shape images and image loading.
"""
