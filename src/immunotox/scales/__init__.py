"""Grading scales: the base machinery (:mod:`._base`) and one module per source family."""
