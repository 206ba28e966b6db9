"""The local stack: moto in process, provisioned from the tier file, the real handlers behind the gateway.

One stack per process: the handler modules are imported once, after the
Lambda environment points them at this stack's emulator.
"""

from __future__ import annotations

import errno
import importlib
import logging
import os
import secrets
import shlex
import string
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from blueprint.defaults import DEFAULT_AUTHORIZER_CACHE_TTL_SECONDS, MAX_AUTHORIZER_CACHE_TTL_SECONDS
from handlers.contract import (
    AUTHORIZER_FUNCTION,
    AUTHORIZER_HANDLER,
    METRICS_NAMESPACE,
    TENANT_API_FUNCTION,
    TENANT_API_HANDLER,
    TENANT_ISOLATION_MODE,
    Env,
)
from local.emulator import Emulator
from local.gateway import Gateway, GatewaySettings, LambdaHandler
from local.isolation import TenantInstances
from local.limits import Clock, UsagePlans
from local.management import ManagementApi
from local.provision import AwsClients, DemoUser, Provisioned, provision
from local.reload import ReloadRequest, ReloadResult, RunningStack, reload_response, reload_stack
from local.server import GatewayServer
from local.settings import (
    DEFAULT_PORT,
    DEFAULT_TIERS_FILE,
    DUMMY_CREDENTIALS,
    HOST,
    NAMING,
    REGION,
    STACK,
)
from tiers.loader import load_catalog
from tiers.local_stack import INSTANCES_PATH, OUTPUTS_PATH, RELOAD_PATH, STACK_PATH, USAGE_PATH
from tiers.model import Catalog
from tiers.plan import StackNames


class StackError(Exception):
    """A problem the user can fix; its message says what, where and what to do."""


@dataclass(frozen=True)
class StackOptions:
    tiers_file: Path = DEFAULT_TIERS_FILE
    port: int = DEFAULT_PORT
    authorizer_cache_ttl: float | None = None
    """None: the Pulumi project's default."""
    clock: Clock = time.time
    access_log: bool = True
    lambda_tenant_isolation: bool = False
    """Emulate Lambda tenant isolation mode: a tenant API instance per tenant (local/isolation.py)."""


def _api_id() -> str:
    return "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(10))


def lambda_environment(provisioned: Provisioned, moto_endpoint: str) -> dict[str, str]:
    """What the program sets on both functions, pointed at moto, plus the AWS SDK's settings."""
    issuer = f"https://cognito-idp.{REGION}.amazonaws.com/{provisioned.user_pool_id}"
    return {
        Env.REGISTRY_TABLE: provisioned.registry_table,
        Env.TOKEN_ISSUER: issuer,
        Env.JWKS_URL: f"{moto_endpoint}/{provisioned.user_pool_id}/.well-known/jwks.json",
        Env.APP_CLIENT_ID: provisioned.app_client_id,
        Env.TENANT_DATA_ROLE_ARN: provisioned.tenant_data_role_arn,
        Env.PLACEMENT_TABLE: provisioned.placement_table,
        Env.METRICS_NAMESPACE: METRICS_NAMESPACE,
        "AWS_ENDPOINT_URL": moto_endpoint,
        "AWS_ACCESS_KEY_ID": DUMMY_CREDENTIALS["aws_access_key_id"],
        "AWS_SECRET_ACCESS_KEY": DUMMY_CREDENTIALS["aws_secret_access_key"],
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
    }


# The program's function names (without the stack prefix), which it also sets as each one's service name.
FUNCTIONS = ((AUTHORIZER_FUNCTION, AUTHORIZER_HANDLER), (TENANT_API_FUNCTION, TENANT_API_HANDLER))


def _import_handler(service_name: str, entry_point: str) -> LambdaHandler:
    # powertools reads the service name when the module creates its Logger and Metrics.
    os.environ[Env.SERVICE_NAME] = service_name
    module_name, _, function_name = entry_point.rpartition(".")
    handler: LambdaHandler = getattr(importlib.import_module(module_name), function_name)
    return handler


def _cold_start(service_name: str, entry_point: str) -> LambdaHandler:
    """The handler from its module executed anew: a new container, with no state of the old one."""
    module_name, _, function_name = entry_point.rpartition(".")
    saved = os.environ.get(Env.SERVICE_NAME)
    os.environ[Env.SERVICE_NAME] = service_name
    try:
        handler: LambdaHandler = getattr(importlib.reload(sys.modules[module_name]), function_name)
    finally:
        if saved is None:
            os.environ.pop(Env.SERVICE_NAME, None)
        else:
            os.environ[Env.SERVICE_NAME] = saved
    return handler


@dataclass
class LocalStack:
    options: StackOptions = field(default_factory=StackOptions)
    catalog: Catalog | None = None
    provisioned: Provisioned | None = None
    gateway: Gateway | None = None
    management: ManagementApi | None = None
    moto_endpoint: str = ""
    _server: GatewayServer | None = None
    _moto: Emulator | None = None
    _saved_environment: dict[str, str | None] = field(default_factory=dict)
    _reload_lock: threading.Lock = field(default_factory=threading.Lock)
    _former_demo_users: dict[str, DemoUser] = field(default_factory=dict)
    tenant_instances: TenantInstances | None = None

    @property
    def api_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def port(self) -> int:
        return self._server.port if self._server is not None else self.options.port

    def start(self) -> None:
        """Load, bind, provision, serve; on failure stop what was started. Raises CatalogError, StackError."""
        ttl = self.options.authorizer_cache_ttl
        if ttl is None:
            ttl = DEFAULT_AUTHORIZER_CACHE_TTL_SECONDS
        if not 0 <= ttl <= MAX_AUTHORIZER_CACHE_TTL_SECONDS:
            raise StackError(
                f"--authorizer-cache-ttl {ttl:g}: must be 0 (no cache) to {MAX_AUTHORIZER_CACHE_TTL_SECONDS} "
                "seconds, as API Gateway allows"
            )
        self.catalog = load_catalog(self.options.tiers_file)
        self._server = self._bind()
        try:
            emulator = self._start_moto()
            self.provisioned = provision(self.catalog, NAMING, AwsClients(self.moto_endpoint))
            emulator.enforcer.stack_credentials_act_as(
                self.provisioned.tenant_api_role_arn, NAMING.function(TENANT_API_FUNCTION)
            )
            environment = lambda_environment(self.provisioned, self.moto_endpoint)
            if self.options.lambda_tenant_isolation:
                environment[Env.TENANT_ISOLATION] = TENANT_ISOLATION_MODE
            self._set_environment(environment)
            (authorizer_name, authorizer_entry), (tenant_api_name, tenant_api_entry) = FUNCTIONS
            if self.options.lambda_tenant_isolation:
                self.tenant_instances = TenantInstances(NAMING.function(tenant_api_name), tenant_api_entry)
            self.gateway = Gateway(
                authorizer=_import_handler(authorizer_name, authorizer_entry),
                tenant_api=_import_handler(tenant_api_name, tenant_api_entry),
                function_names=(NAMING.function(authorizer_name), NAMING.function(tenant_api_name)),
                plans=UsagePlans.from_catalog(
                    self.catalog,
                    {tenant_id: p.api_key for tenant_id, p in self.provisioned.tenants.items()},
                    self.options.clock,
                ),
                settings=GatewaySettings(
                    region=REGION,
                    account_id=self.provisioned.account_id,
                    api_id=_api_id(),
                    stage=STACK,
                    authorizer_cache_ttl=ttl,
                ),
                clock=self.options.clock,
                tenant_functions=None
                if self.tenant_instances is None
                else self.tenant_instances.function_for,
            )
            self.management = ManagementApi.from_catalog(
                self.catalog, NAMING, self.gateway.plans, self.options.clock
            )
            self._server.start(
                self.gateway,
                self.reserved_routes(),
                self.management.handle,
                {RELOAD_PATH: lambda body: reload_response(body, self.reload)},
            )
        except BaseException:
            self.stop()
            raise

    def _bind(self) -> GatewayServer:
        try:
            return GatewayServer((HOST, self.options.port), None, access_log=self.options.access_log)
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                raise StackError(
                    f"port {self.options.port} on {HOST} is already in use; "
                    "stop what holds it or pick another port with --port PORT"
                ) from error
            raise StackError(f"cannot listen on {HOST}:{self.options.port}: {error.strerror}") from error

    def _start_moto(self) -> Emulator:
        # werkzeug would log every emulator call to stderr.
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        self._moto = Emulator(HOST)
        self.moto_endpoint = self._moto.start()
        return self._moto

    def _set_environment(self, values: Mapping[str, str]) -> None:
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", Env.SERVICE_NAME, *values):
            self._saved_environment.setdefault(name, os.environ.get(name))
        os.environ.pop("AWS_PROFILE", None)
        os.environ.pop("AWS_SESSION_TOKEN", None)
        os.environ.update(values)

    def stop(self) -> int:
        """Stop the HTTP server (answering requests in flight), then the emulator; give the environment back.

        Returns how many connections were still busy after the server's grace period and were cut."""
        cut = 0
        if self._server is not None:
            cut = self._server.stop()
        if self._moto is not None:
            self._moto.stop()
            self._moto = None
        for name, value in self._saved_environment.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        self._saved_environment.clear()
        return cut

    def reserved_routes(self) -> dict[str, Callable[[], Any]]:
        return {
            STACK_PATH: self.describe,
            USAGE_PATH: self.usage,
            INSTANCES_PATH: self.instances,
            OUTPUTS_PATH: self.outputs,
        }

    def reload(self, request: ReloadRequest) -> ReloadResult:
        """Read the tier file again and apply the edit as `pulumi up` would (``local.reload``).

        Raises CatalogError or ReloadRefused, with nothing changed."""
        assert self.catalog is not None
        assert self.provisioned is not None
        assert self.gateway is not None
        assert self.management is not None
        with self._reload_lock:
            running = RunningStack(
                catalog=self.catalog,
                provisioned=self.provisioned,
                plans=self.gateway.plans,
                management=self.management,
                dynamodb=AwsClients(self.moto_endpoint).client("dynamodb"),
                names=StackNames(project=NAMING.project, stack=NAMING.stack, local_port=self.port),
                source=str(self.options.tiers_file),
                former_demo_users=self._former_demo_users,
                s3=AwsClients(self.moto_endpoint).client("s3"),
            )
            result = reload_stack(running, load_catalog(self.options.tiers_file), request)
            if result.applied:
                self.catalog, self.provisioned = running.catalog, running.provisioned
                print(
                    f"reloaded {self.options.tiers_file}: {len(result.plan.changes)} change(s) applied",
                    flush=True,
                )
                (authorizer_name, authorizer_entry), _ = FUNCTIONS
                self.gateway.restart_authorizer(lambda: _cold_start(authorizer_name, authorizer_entry))
            return result

    def describe(self) -> dict[str, Any]:
        """Where everything is, and the demo users' sign-in details (for `python -m local token`)."""
        assert self.provisioned is not None
        return {
            "api_url": self.api_url,
            "tiers_file": str(self.options.tiers_file),
            "moto_endpoint": self.moto_endpoint,
            "region": REGION,
            "user_pool_id": self.provisioned.user_pool_id,
            "app_client_id": self.provisioned.app_client_id,
            "registry_table": self.provisioned.registry_table,
            # Where `python -m tiers migrate|decommission --local-port PORT` finds the tables.
            "pooled_table": self.provisioned.pooled_table,
            "placement_table": self.provisioned.placement_table,
            "silo_table_prefix": NAMING.silo_table_prefix,
            "pooled_bucket": self.provisioned.buckets.pooled,
            "silo_bucket_prefix": self.provisioned.buckets.silo_prefix,
            "tenants": {
                tenant_id: {
                    "name": p.tenant.name,
                    "tier": p.tier.name,
                    "isolation": p.tier.isolation.value,
                    "table": p.table,
                    "bucket": p.bucket,
                    "suspended": p.tenant.suspended,
                    "demo_user": {"username": p.demo_user.username, "password": p.demo_user.password},
                }
                for tenant_id, p in self.provisioned.tenants.items()
            },
        }

    def outputs(self) -> dict[str, Any]:
        """The stack outputs the Pulumi program exports, with this stack's values (`pulumi stack output`)."""
        assert self.provisioned is not None
        assert self.management is not None
        return {
            "apiUrl": self.api_url,
            "userPoolId": self.provisioned.user_pool_id,
            "appClientId": self.provisioned.app_client_id,
            "registryTable": self.provisioned.registry_table,
            "pooledTable": self.provisioned.pooled_table,
            "placementTable": self.provisioned.placement_table,
            "siloTablePrefix": NAMING.silo_table_prefix,
            "pooledBucket": self.provisioned.buckets.pooled,
            "siloBucketPrefix": self.provisioned.buckets.silo_prefix,
            "plans": self.management.plan_ids(),
            "tenants": {
                tenant_id: {"apiKeyId": p.api_key.id, "table": p.table, "tier": p.tier.name}
                for tenant_id, p in self.provisioned.tenants.items()
            },
        }

    def instances(self) -> dict[str, Any]:
        """The tenant API's warm instances and the tenants their module-level client cache holds."""
        if self.tenant_instances is not None:
            return {"lambda_tenant_isolation": True, "instances": self.tenant_instances.describe()}
        module = sys.modules[TENANT_API_HANDLER.rpartition(".")[0]]
        clients = getattr(module, "data_clients", None)
        cached = clients.cached_tenants() if clients is not None else []
        return {
            "lambda_tenant_isolation": False,
            "instances": [{"tenant_id": None, "cached_tenants": cached}],
        }

    def usage(self) -> dict[str, Any]:
        assert self.gateway is not None
        return {
            "now": datetime.fromtimestamp(self.options.clock(), UTC).isoformat(),
            "tenants": [entry.as_json() for entry in self.gateway.plans.usage()],
        }

    def banner(self) -> str:
        assert self.provisioned is not None
        p = self.provisioned
        first = next(iter(p.tenants), None)
        lines = [
            f"tenant-tiers local stack from {self.options.tiers_file}",
            f"  API            {self.api_url}  (routes: GET /tenant, POST /counter, GET /items, "
            "GET|PUT|DELETE /items/{id}, GET /files, GET|PUT|DELETE /files/{name}, "
            "POST /files/{name}/upload-url, GET /files/{name}/download-url)",
            f"  AWS emulator   {self.moto_endpoint}  (moto; region {REGION}, dummy credentials; "
            "IAM enforced on tenant sessions)",
            f"  user pool      {p.user_pool_id}",
            f"  app client     {p.app_client_id}",
            f"  registry       {p.registry_table}",
            f"  stack info     {self.api_url}{STACK_PATH}   usage: {self.api_url}{USAGE_PATH}",
            "  tenants:",
        ]
        width = max((len(tenant_id) for tenant_id in p.tenants), default=0)
        for tenant_id, t in p.tenants.items():
            state = "  SUSPENDED" if t.tenant.suspended else ""
            lines.append(
                f"    {tenant_id:<{width}}  {t.tier.name} ({t.tier.isolation.value})  "
                f"table {t.table}  demo user {t.demo_user.username}{state}"
            )
        if first is not None:
            python = _python_command()
            lines += [
                "try:",
                f'  curl -H "Authorization: Bearer $({python} -m local token {first} --port {self.port})" '
                f"{self.api_url}/tenant",
                f"  {python} -m local usage --port {self.port}",
            ]
        lines.append(
            "Demo users are made in Cognito on their tenant's first `token`. Ctrl-C stops the stack."
        )
        return "\n".join(lines)


def _python_command() -> str:
    """This interpreter as the user would type it, so the printed commands work without activating a venv."""
    interpreter = Path(sys.executable)
    try:
        return shlex.quote(str(interpreter.relative_to(Path.cwd())))
    except ValueError:
        return shlex.quote(str(interpreter))
