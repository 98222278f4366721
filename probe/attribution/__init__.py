"""Attribution: the method registry (one score per token or patch) with attention-based and
gradient-based methods and the targets they explain.
"""
