"""Moved: the observation vocabulary is :mod:`immunotox.vocabulary` (``data/observations.toml``),
shared by the service, the timeline engine and the simulator (issue 16).

This name is kept only so that code written against it on branches merged after the move still
imports; new code imports :mod:`immunotox.vocabulary`. Delete once nothing imports it.
"""

from ..vocabulary import CodeSpec, Derivation, Vocabulary, vocabulary

__all__ = ["CodeSpec", "Derivation", "Vocabulary", "vocabulary"]
