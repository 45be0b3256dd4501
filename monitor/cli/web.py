"""`serve`: the web page and JSON API in one process."""

from __future__ import annotations

import ipaddress

import click

from monitor.cli import pass_ctx
from monitor.errors import ConfigError


def register(cli: click.Group) -> None:
    cli.add_command(serve)


@click.command("serve")
@click.option("--host", default=None, metavar="ADDR", help="Address to bind (default: web.host, 127.0.0.1).")
@click.option("--port", default=None, type=click.IntRange(1, 65535), help="Port (default: web.port, 8080).")
@pass_ctx
def serve(ctx, host: str | None, port: int | None) -> None:
    """Serve the paste page, article browser and JSON API (loads the model once)."""
    settings = ctx.settings
    host = host or settings.web.host
    port = port or settings.web.port
    check_bind(host, settings.web.token is not None, settings.web.token_env)
    run_server(ctx.app, host, port)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name could resolve anywhere


def check_bind(host: str, has_token: bool, token_env: str) -> None:
    """Only this machine may reach a page without a token."""
    if not is_loopback(host) and not has_token:
        raise ConfigError(f"serve --host {host}: binding beyond loopback needs an access token; set {token_env}")


def run_server(app, host: str, port: int) -> None:
    import uvicorn

    from monitor.web.app import allowed_hosts, create_app

    click.echo("loading the model...", err=True)
    app.engine, app.nlp, app.classifier  # noqa: B018 - load once now, not on the first request
    web = create_app(app, bound_host=host)
    click.echo(f"serving on http://{host}:{port}/ (Ctrl-C to stop); Host names answered: "
               f"{', '.join(allowed_hosts(app.settings.web, host))} (more in web.allowed_hosts)", err=True)
    uvicorn.run(web, host=host, port=port, log_level="info", server_header=False, proxy_headers=False)
