"""`smartcare genomics ...` commands (thin layer over the Python API)."""

import typer

app = typer.Typer(help="genomics commands.", no_args_is_help=True)
