"""The command line: parse options, call one function, print. No logic here.

Each area registers its commands from its own module; none of them imports spaCy or
scikit-learn at module level, so `--help` stays fast.
"""

from __future__ import annotations

import logging
import os
import sys

from typing import TYPE_CHECKING

import click

from monitor.errors import MonitorError

if TYPE_CHECKING:
    from rich.console import Console

    from monitor.app import App
    from monitor.settings import Settings


class AppContext:
    """Loads settings on first use (so `--help` never touches the config file).

    This is the edge: the only place that hands the process environment and the current
    folder to the settings loader."""

    def __init__(self, config: str | None):
        self._config = config
        self._app: App | None = None

    @property
    def app(self) -> App:
        if self._app is None:
            from pathlib import Path

            from monitor.app import App
            from monitor.settings import default_settings, find_config, load_settings

            path = find_config(self._config, os.environ, Path.cwd())
            settings = load_settings(path, os.environ) if path else default_settings(os.environ, Path.cwd())
            self._app = App(settings)
        return self._app

    @property
    def settings(self) -> Settings:
        return self.app.settings


pass_ctx = click.make_pass_decorator(AppContext)

PIPED_WIDTH = 1000  # piped output: one table row per line, however long, for grep and cut


def make_console(compact: bool = False) -> Console:
    """A rich console for stdout. A terminal gets its own width; piped output gets
    $COLUMNS when set, else lines as long as they need (rich would fold at 80)."""
    from rich.console import Console

    piped = not sys.stdout.isatty()
    width = None if not piped or os.environ.get("COLUMNS") else PIPED_WIDTH
    return Console(highlight=False, soft_wrap=compact and width == PIPED_WIDTH, width=width)


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
    help="Config file, before or after the command (default: $TENSION_MONITOR_CONFIG, then "
    "./tension-monitor.toml, then $XDG_CONFIG_HOME/tension-monitor/config.toml, else built-in defaults).",
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
    # Libraries talk at INFO about things a user did not ask about: Alembic about every
    # migration context on each start, httpx about every request (the poll line says it
    # once per feed), APScheduler about every job run. Their warnings still show.
    for chatty in ("alembic", "httpx", "httpcore", "apscheduler"):
        logging.getLogger(chatty).setLevel(logging.DEBUG if verbose else logging.WARNING)
    ctx.obj = AppContext(config)
    ctx.call_on_close(lambda: ctx.obj._app.close() if ctx.obj._app else None)


def _register() -> None:
    import importlib
    import pkgutil

    for module in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{module.name}").register(cli)


def hoist_config_option(args: list[str]) -> list[str]:
    """Move `--config PATH` / `--config=PATH` written after the command to the front,
    where the group reads it (click only knows group options before the command)."""
    front: list[str] = []
    rest: list[str] = []
    index = 0
    while index < len(args):
        arg = args[index]
        if arg == "--":
            rest += args[index:]
            break
        if arg == "--config" and index + 1 < len(args):
            front += args[index:index + 2]
            index += 2
            continue
        if arg.startswith("--config="):
            front.append(arg)
        else:
            rest.append(arg)
        index += 1
    return front + rest


def main() -> None:
    _register()
    try:
        cli.main(args=hoist_config_option(sys.argv[1:]), standalone_mode=False)
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
