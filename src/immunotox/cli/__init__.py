"""Command-line interface (Typer): one module per command group, registered in ``main``."""
