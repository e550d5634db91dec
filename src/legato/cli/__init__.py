"""The ``legato`` command (Typer and Rich): a thin front end over ``legato.services``."""
