"""`init [PATH]`: write a commented starter config and say where it went."""

from __future__ import annotations

import os
from pathlib import Path

import click

from monitor.errors import InputError


def register(cli: click.Group) -> None:
    cli.add_command(init)


@click.command("init")
@click.argument("path", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
def init(path: Path | None, force: bool) -> None:
    """Write a starter config (the real feeds, every other key at its default).

    PATH defaults to $XDG_CONFIG_HOME/tension-monitor/config.toml, which every command
    then finds from any folder."""
    from monitor.settings import default_store_url, starter_config, xdg_config_file

    target = path or xdg_config_file(os.environ)
    if target.exists() and not force:
        raise InputError(f"{target}: already exists (use --force to overwrite)")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(starter_config(default_store_url(os.environ)), encoding="utf-8")
    click.echo(f"wrote {target}")
    if path is not None:
        click.echo(f"use it with: tension-monitor --config {target} status")
