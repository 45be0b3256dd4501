"""`config show`: the effective config with secrets masked."""

import json

import click

from monitor.cli import pass_ctx


def register(cli: click.Group) -> None:
    cli.add_command(config_group)


@click.group("config")
def config_group() -> None:
    """Inspect the configuration."""


@config_group.command("show")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of TOML-like text.")
@pass_ctx
def show(ctx, as_json: bool) -> None:
    """Print the effective config (defaults filled in, secrets masked)."""
    from monitor.settings import settings_for_display

    data = settings_for_display(ctx.settings)
    click.echo(f"# from {ctx.settings.source_path}", err=True)
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    click.echo(_as_toml(data))


def _as_toml(data: dict) -> str:
    lines = [f"{k} = {json.dumps(v)}" for k, v in data.items() if not isinstance(v, (dict, list))]
    for key, value in data.items():
        if isinstance(value, dict):
            lines.append(f"\n[{key}]")
            lines += [f"{k} = {json.dumps(v)}" for k, v in value.items()]
        elif isinstance(value, list):
            for item in value:
                lines.append(f"\n[[{key}]]")
                lines += [f"{k} = {json.dumps(v)}" for k, v in item.items()]
    return "\n".join(lines)
