"""`config show`: the effective config with secrets masked."""

import json

import click

from monitor.cli import AppContext, pass_ctx


def register(cli: click.Group) -> None:
    cli.add_command(config_group)


@click.group("config")
def config_group() -> None:
    """Inspect the configuration."""


@config_group.command("show")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of TOML.")
@pass_ctx
def show(ctx: AppContext, as_json: bool) -> None:
    """Print the effective config (defaults filled in, secrets masked) as TOML that
    loads back with --config."""
    from monitor.settings import settings_as_toml, settings_for_display

    source = ctx.settings.source_path or "built-in defaults (no config file found)"
    click.echo(f"# from {source}", err=True)
    if as_json:
        click.echo(json.dumps(settings_for_display(ctx.settings), indent=2))
        return
    click.echo(settings_as_toml(ctx.settings), nl=False)
