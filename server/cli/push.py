"""``vaki push``: the VAPID key pair for web push."""

from __future__ import annotations

import typer

app = typer.Typer(help="Web push notifications.", no_args_is_help=True)


@app.command("keys")
def push_keys() -> None:
    """Make a VAPID key pair for web push: put the private key in VAKI_VAPID_PRIVATE_KEY."""
    import alerts

    private_key, public_key = alerts.generate_vapid_keys()
    typer.echo(f"VAKI_VAPID_PRIVATE_KEY={private_key}")
    typer.echo(f"public key (for browsers): {public_key}")
