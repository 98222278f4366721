"""Evaluation: agreement between methods, faithfulness curves, sanity checks and the
``probe eval`` tasks.
"""
