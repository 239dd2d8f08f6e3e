"""`tart serve [--host --port ...]`: the HTTP API; its options live with the service (tart.serving.cli)."""


def add_parser(subparsers) -> None:
    from tart.serving.cli import add_serve_parser  # standard library only at import time

    add_serve_parser(subparsers)
