"""Serving optuna-dashboard on a study storage (``autolr dashboard``).

What autolr *stores* for the dashboard (the recommendation as study attributes and a note) is
:mod:`autolr._dashboard`; this module only finds the server and judges the address it binds.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

#: Hosts that only this machine can reach.
LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})
INSTALL_HINT = "pip install 'autolr[dashboard]'"

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def is_loopback(host: str) -> bool:
    """True for hosts only this machine can reach (127.x, localhost, ::1)."""
    return host in LOOPBACK or host.startswith("127.")


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _Quiet(WSGIRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


def load_wsgi() -> Callable[..., WSGIApp]:
    """``optuna_dashboard.wsgi``; ImportError naming the extra when it is missing."""
    try:
        from optuna_dashboard import wsgi  # optional, and about 3 s to import
    except ImportError:
        raise ImportError(f"autolr dashboard needs optuna-dashboard: {INSTALL_HINT}") from None
    return wsgi  # type: ignore[no-any-return]


def guarded_app(storage: object, *, host: str, port: int) -> HostGuard:
    """optuna-dashboard's WSGI app on ``storage`` behind a :class:`HostGuard` for ``host:port``."""
    return HostGuard(load_wsgi()(storage), host=host, port=port)


def serve(storage: object, *, host: str, port: int) -> None:
    """Serve the guarded dashboard on ``host:port`` until Ctrl-C (threads, quiet request log).

    Raises OSError when the address cannot be bound.
    """
    app = guarded_app(storage, host=host, port=port)
    httpd = make_server(host, port, app, server_class=_Server, handler_class=_Quiet)
    try:
        httpd.serve_forever()
    finally:
        httpd.server_close()


def allowed_hosts(host: str, port: int) -> frozenset[str]:
    """The ``Host`` headers a dashboard bound to ``host:port`` answers (lower case).

    The loopback names with the port, and the bound address itself. A page on another site that
    re-points its own domain name at 127.0.0.1 (DNS rebinding) sends its own name as ``Host``, so
    it is refused.
    """
    names = {"127.0.0.1", "localhost", "[::1]"}
    names.add(f"[{host}]" if ":" in host and not host.startswith("[") else host)
    return frozenset(f"{n.lower()}:{port}" for n in names)


def _is_ip_literal(name: str) -> bool:
    try:
        ipaddress.ip_address(name.strip("[]"))
    except ValueError:
        return False
    return True



class HostGuard:
    """WSGI middleware: answer 403 to a request whose ``Host`` is not this server's address.

    optuna-dashboard's API can delete studies (``DELETE /api/studies/<id>``) and accepts any
    ``Host``; a web page the user visits could reach a loopback server through DNS rebinding.
    When bound to every interface (``0.0.0.0``, ``::``) any IP address with the right port is
    also accepted (a rebinding page cannot send a bare IP as its own name).

    Example:
        >>> guard = HostGuard(lambda env, start: [b"ok"], host="127.0.0.1", port=8080)
        >>> guard.allows("localhost:8080"), guard.allows("evil.example:8080")
        (True, False)
    """

    def __init__(self, app: WSGIApp, *, host: str, port: int) -> None:
        self.app = app
        self.port = port
        self.hosts = allowed_hosts(host, port)
        self.any_ip = host in ("0.0.0.0", "::", "")

    def allows(self, header: str | None) -> bool:
        if not header:
            return False
        header = header.strip().lower()
        if header in self.hosts:
            return True
        name, _, port = header.rpartition(":")
        return self.any_ip and port == str(self.port) and _is_ip_literal(name)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if not self.allows(environ.get("HTTP_HOST")):
            body = b"autolr dashboard: refused a request for another host (Host header)\n"
            start_response("403 Forbidden", [("Content-Type", "text/plain"),
                                             ("Content-Length", str(len(body)))])
            return [body]
        return self.app(environ, start_response)
