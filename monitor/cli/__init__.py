"""The command line: parse options, call one function, print. No logic here.

Each area registers its commands from its own module; none of them imports spaCy or
scikit-learn at module level, so `--help` stays fast.
"""

from __future__ import annotations

import logging
import os
import sys

import click

from monitor.errors import MonitorError


class AppContext:
    """Loads settings on first use (so `--help` never touches the config file)."""

    def __init__(self, config: str | None):
        self._config = config
        self._app = None

    @property
    def app(self):
        if self._app is None:
            from monitor.app import App
            from monitor.settings import config_path, load_settings

            self._app = App(load_settings(config_path(self._config, os.environ)))
        return self._app

    @property
    def settings(self):
        return self.app.settings


pass_ctx = click.make_pass_decorator(AppContext)


def _cores() -> int:
    from monitor.tagpool import default_processes

    return default_processes()


processes_option = click.option(
    "--processes", type=click.IntRange(min=1), default=_cores, show_default="the number of cores",
    help="Tag (spaCy + classifier) in this many processes, each loading the model once.")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config",
    metavar="PATH",
    help="Config file (default: $TENSION_MONITOR_CONFIG, then config/monitor.toml).",
)
@click.option("-v", "--verbose", is_flag=True, help="Debug logging.")
@click.version_option(package_name="tension-monitor")
@click.pass_context
def cli(ctx: click.Context, config: str | None, verbose: bool) -> None:
    """Tension Monitor: tag news about the Microsoft-OpenAI partnership against the tension model."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # Alembic reports every plugin and migration context at INFO on each start.
    logging.getLogger("alembic").setLevel(logging.DEBUG if verbose else logging.WARNING)
    ctx.obj = AppContext(config)
    ctx.call_on_close(lambda: ctx.obj._app.close() if ctx.obj._app else None)


def _register() -> None:
    import importlib
    import pkgutil

    for module in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{module.name}").register(cli)


def main() -> None:
    _register()
    try:
        cli.main(standalone_mode=False)
    except MonitorError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
