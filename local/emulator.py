"""moto's server on 127.0.0.1, every request passing through the IAM enforcer first.

moto's ``ThreadedMotoServer`` serves moto's app as it is; this serves the same app (moto's
``DomainDispatcherApplication`` and request handler, on werkzeug's threaded server, as moto does) wrapped
in ``local.iam.enforcer.IamEnforcer``.
"""

from __future__ import annotations

import threading
from typing import Any

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import BaseWSGIServer, make_server

from local.iam.enforcer import IamEnforcer
from local.provision import AwsClients


class Emulator:
    """AWS emulated by moto, with IAM enforced on the sessions it issues."""

    def __init__(self, host: str) -> None:
        self._host = host
        self._clients: dict[tuple[str, str], Any] = {}
        self._clients_lock = threading.Lock()
        self.enforcer = IamEnforcer(DomainDispatcherApplication(create_backend_app), self._stack_client)
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None
        self.endpoint = ""

    def start(self) -> str:
        """Listen on a free port of the host and serve in a background thread; the endpoint URL."""
        self._server = make_server(
            self._host, 0, self.enforcer, threaded=True, request_handler=MotoRequestHandler
        )
        self.endpoint = f"http://{self._host}:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, name="moto", daemon=True)
        self._thread.start()
        return self.endpoint

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def _stack_client(self, service: str, region: str) -> Any:
        """The enforcer's look-ups (roles, key schemas) ask the emulator, on the stack's credentials."""
        with self._clients_lock:
            client = self._clients.get((service, region))
            if client is None:
                client = AwsClients(self.endpoint, region).client(service)
                self._clients[(service, region)] = client
            return client
