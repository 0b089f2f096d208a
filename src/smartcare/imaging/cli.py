"""`smartcare imaging ...` commands (thin layer over the Python API)."""

import typer

app = typer.Typer(help="imaging commands.", no_args_is_help=True)
