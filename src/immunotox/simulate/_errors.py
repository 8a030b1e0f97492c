"""The error raised for a bad argument to the simulator."""

from __future__ import annotations

from typing import Any

from ..errors import ImmunotoxError


class SimulationError(ImmunotoxError, ValueError):
    """A simulator argument that cannot be accepted; names the argument, the value and the problem.

    Examples
    --------
    >>> from immunotox.simulate import simulate_cohort
    >>> simulate_cohort(0)
    Traceback (most recent call last):
    ...
    immunotox.simulate._errors.SimulationError: n_patients = 0: must be a positive integer
    """

    def __init__(self, option: str, value: Any, problem: str) -> None:
        super().__init__(option, value, problem)
        self.option = option
        self.value = value
        self.problem = problem

    def __str__(self) -> str:
        return (
            f"{self.option} = {self.value!r}: {self.problem}"
            if isinstance(self.value, str)
            else (f"{self.option} = {self.value}: {self.problem}")
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.option, self.value, self.problem))
