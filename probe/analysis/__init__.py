"""Analysis: pure functions over attention tensors and traces (rollout, flow, relevance,
head statistics, coreference, patch maps, head fusions). Never runs a model.
"""
