"""Runs the tenant-tiers program under Pulumi mocks and records everything it declares.

    run = run_program(Path("tiers/dev.yaml"), config={"stageName": "prod"})
    run.of_type(API_KEY)            # RecordedResource: type, name, inputs, options
    run.outputs["tenants"]          # resolved stack outputs

The program runs exactly as `pulumi up` runs it (``infra.program.main``): the tier file
reaches it through the ``tenant-tiers:tiersFile`` stack config. A recording monitor sees
every RegisterResource request, including the resource options a mock cannot see
(protect, retain_on_delete, delete_before_replace), as the engine would receive them.
Runs are independent: each gets a fresh monitor, root stack and config, so one process
may run the program many times.
"""

from __future__ import annotations

import gc
import hashlib
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
from pulumi.runtime import rpc, settings
from pulumi.runtime.mocks import MockMonitor
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

from infra.config import CONFIG_NAMESPACE
from infra.program import main
from infra.rates import MIN_MAX_RETRIES

PROJECT = "tenant-tiers"
GET_CALLER_IDENTITY = "aws:index/getCallerIdentity:getCallerIdentity"
GET_REGION = "aws:index/getRegion:getRegion"
ACCOUNT = "123456789012"
REGION = "us-east-1"

ACCOUNT_SETTINGS = "aws:apigateway/account:Account"
API_KEY = "aws:apigateway/apiKey:ApiKey"
AUTHORIZER = "aws:apigateway/authorizer:Authorizer"
BUCKET = "aws:s3/bucket:Bucket"
BUCKET_ENCRYPTION = "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
BUCKET_POLICY = "aws:s3/bucketPolicy:BucketPolicy"
BUCKET_PUBLIC_ACCESS_BLOCK = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
BUCKET_VERSIONING = "aws:s3/bucketVersioning:BucketVersioning"
DEPLOYMENT = "aws:apigateway/deployment:Deployment"
FUNCTION = "aws:lambda/function:Function"
INTEGRATION = "aws:apigateway/integration:Integration"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
METHOD = "aws:apigateway/method:Method"
PERMISSION = "aws:lambda/permission:Permission"
RESOURCE = "aws:apigateway/resource:Resource"
REST_API = "aws:apigateway/restApi:RestApi"
ROLE = "aws:iam/role:Role"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
STAGE = "aws:apigateway/stage:Stage"
TABLE = "aws:dynamodb/table:Table"
TABLE_ITEM = "aws:dynamodb/tableItem:TableItem"
USAGE_PLAN = "aws:apigateway/usagePlan:UsagePlan"
USAGE_PLAN_KEY = "aws:apigateway/usagePlanKey:UsagePlanKey"
USER_POOL = "aws:cognito/userPool:UserPool"
USER_POOL_CLIENT = "aws:cognito/userPoolClient:UserPoolClient"


@dataclass(frozen=True)
class RecordedResource:
    urn: str
    id: str
    """Physical id the mocks gave it ("" for components)."""
    type: str
    name: str
    """Logical name."""
    parent: str
    """URN of the parent ("" under the stack)."""
    inputs: Mapping[str, Any]
    """As the engine receives them: camelCase keys, secrets unwrapped (see ``secret_inputs``)."""
    secret_inputs: frozenset[str]
    outputs: Mapping[str, Any]
    """The state the mocks returned for it."""
    custom: bool
    """False for component resources."""
    protect: bool
    retain_on_delete: bool
    delete_before_replace: bool
    additional_secret_outputs: frozenset[str]
    """Outputs the program (or the provider's SDK class) marks secret, camelCase as the engine gets them."""
    dependencies: tuple[str, ...]
    """URNs it depends on (depends_on and the resources its inputs come from)."""
    property_dependencies: Mapping[str, frozenset[str]]
    """Per input, the URNs its value comes from (depends_on alone adds none)."""
    aliases: tuple[str, ...] = ()
    """Former logical names (alias specs) or URNs (alias URNs) the resource answers to."""


@dataclass(frozen=True)
class ProgramRun:
    resources: tuple[RecordedResource, ...]
    outputs: Mapping[str, Any]
    """Stack outputs, resolved to plain values."""
    secret_outputs: frozenset[str]
    """Names of the stack outputs that are (or contain) secrets."""
    error: BaseException | None = None
    """What the program raised, when run with ``raise_errors=False``."""
    _by_name: dict[str, RecordedResource] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._by_name.update((resource.name, resource) for resource in self.resources)

    @property
    def custom_resources(self) -> list[RecordedResource]:
        return [resource for resource in self.resources if resource.custom]

    def of_type(self, type_token: str) -> list[RecordedResource]:
        return [resource for resource in self.resources if resource.type == type_token]

    def named(self, name: str) -> RecordedResource:
        return self._by_name[name]

    def one(self, type_token: str) -> RecordedResource:
        [resource] = self.of_type(type_token)
        return resource

    def by_urn(self, urn: str) -> RecordedResource:
        return next(resource for resource in self.resources if resource.urn == urn)


class ProgramMocks(pulumi.runtime.Mocks):
    """Plausible, deterministic outputs: the same logical name always gets the same id, ARN and key value."""

    def __init__(self) -> None:
        self._key_values: dict[str, str] = {}

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        name = args.inputs.get("name") or args.name
        resource_id = f"{args.name}-id"
        state: dict[str, Any] = {**args.inputs, "arn": _arn(args.typ, name, args.name)}
        if args.typ == REST_API:
            resource_id = _token(args.name, 10)
            state["rootResourceId"] = _token(f"{args.name}/root", 10)
            state["executionArn"] = f"arn:aws:execute-api:{REGION}:{ACCOUNT}:{resource_id}"
        elif args.typ == API_KEY:
            resource_id = _token(args.name, 10)
            # The provider marks the generated value secret (additional_secret_outputs); so do the mocks.
            value = _token(f"{args.name}/value", 40)
            self._key_values[resource_id] = value
            state["value"] = rpc.wrap_rpc_secret(value)
        elif args.typ == USAGE_PLAN_KEY:
            # Like the provider, which reads the association back (GetUsagePlanKey): it holds the key value.
            resource_id = args.inputs["keyId"]
            state["value"] = self._key_values.get(resource_id, "")
        elif args.typ == USER_POOL:
            resource_id = f"{REGION}_{_token(args.name, 9)}"
            state["endpoint"] = f"cognito-idp.{REGION}.amazonaws.com/{resource_id}"
            state["arn"] = f"arn:aws:cognito-idp:{REGION}:{ACCOUNT}:userpool/{resource_id}"
        elif args.typ == USER_POOL_CLIENT:
            resource_id = _token(args.name, 26)
        elif args.typ == BUCKET:
            resource_id = args.inputs["bucket"]
            state["arn"] = f"arn:aws:s3:::{resource_id}"
        elif args.typ == FUNCTION:
            state["invokeArn"] = (
                f"arn:aws:apigateway:{REGION}:lambda:path/2015-03-31/functions/{state['arn']}/invocations"
            )
        elif args.typ == STAGE:
            rest_api = args.inputs["restApi"]
            stage = args.inputs["stageName"]
            state["invokeUrl"] = f"https://{rest_api}.execute-api.{REGION}.amazonaws.com/{stage}"
            state["executionArn"] = f"arn:aws:execute-api:{REGION}:{ACCOUNT}:{rest_api}/{stage}"
        return resource_id, state

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
        if args.token == GET_CALLER_IDENTITY:
            return {"accountId": ACCOUNT, "arn": f"arn:aws:iam::{ACCOUNT}:user/deployer", "id": ACCOUNT}, []
        if args.token == GET_REGION:
            return {"region": REGION, "name": REGION, "id": REGION}, []
        raise AssertionError(f"the program made an unexpected provider call: {args.token}")


class RecordingMonitor(MockMonitor):
    """The mock monitor, also recording each registration with its options."""

    def __init__(self, mocks: pulumi.runtime.Mocks) -> None:
        super().__init__(mocks)
        self.recorded: list[RecordedResource] = []
        self._lock = threading.Lock()

    def RegisterResource(self, request: Any) -> Any:
        response = super().RegisterResource(request)
        if request.type == "pulumi:pulumi:Stack":
            return response
        inputs: dict[str, Any] = {}
        secret_inputs: set[str] = set()
        for key, value in rpc.deserialize_properties(request.object).items():
            if rpc.is_rpc_secret(value):
                secret_inputs.add(key)
                value = rpc.unwrap_rpc_secret(value)
            inputs[key] = value
        outputs = self.resources[response.urn].state
        record = RecordedResource(
            urn=response.urn,
            id=response.id,
            type=request.type,
            name=request.name,
            parent=request.parent,
            inputs=inputs,
            secret_inputs=frozenset(secret_inputs),
            outputs={key: rpc.unwrap_rpc_secret(value) for key, value in outputs.items()},
            custom=bool(request.custom),
            protect=bool(request.protect),
            retain_on_delete=bool(request.retainOnDelete),
            delete_before_replace=bool(request.deleteBeforeReplace),
            additional_secret_outputs=frozenset(request.additionalSecretOutputs),
            dependencies=tuple(request.dependencies),
            aliases=tuple(
                alias.spec.name if alias.HasField("spec") else alias.urn for alias in request.aliases
            ),
            property_dependencies={
                key: frozenset(urns.urns) for key, urns in request.propertyDependencies.items()
            },
        )
        with self._lock:
            self.recorded.append(record)
        return response


DEPLOY_CONFIG: dict[str, str] = {"aws:maxRetries": str(MIN_MAX_RETRIES)}
"""The provider settings the README's deploy commands set; every run gets them unless it overrides them."""


def run_program(
    tiers_file: Path,
    config: Mapping[str, str | None] | None = None,
    stack: str = "test",
    *,
    raise_errors: bool = True,
    program: Callable[[], None] = main,
    mocks: pulumi.runtime.Mocks | None = None,
    preview: bool = False,
) -> ProgramRun:
    """Run the program on ``tiers_file`` under mocks.

    ``config`` holds further stack config, keyed ``tenant-tiers`` keys without the namespace
    (``{"stageName": "prod"}``) or fully qualified keys (``{"aws:region": "eu-west-1"}``); a None
    value removes a key of ``DEPLOY_CONFIG``.
    With ``raise_errors=False`` a failing program returns a run whose ``error`` is set.
    ``program`` replaces ``infra.program.main`` (the benchmarks' floor runs through here too).
    ``mocks`` replaces ProgramMocks; ``preview=True`` runs the program as `pulumi preview` would.
    """
    stack_config = {**DEPLOY_CONFIG, f"{CONFIG_NAMESPACE}:tiersFile": str(tiers_file)}
    for key, value in (config or {}).items():
        qualified = key if ":" in key else f"{CONFIG_NAMESPACE}:{key}"
        if value is None:
            stack_config.pop(qualified, None)
        else:
            stack_config[qualified] = value

    monitor = RecordingMonitor(mocks or ProgramMocks())
    error: BaseException | None = None
    try:
        run_under_mocks(program, monitor, stack_config, stack, preview=preview)
    except Exception as raised:
        if raise_errors:
            raise
        error = raised

    root = settings.get_root_resource()
    exported: dict[str, Any] = getattr(root, "outputs", {})
    outputs: dict[str, Any] = {}
    secret_outputs: set[str] = set()
    for name, value in exported.items():
        output = pulumi.Output.from_input(value)
        outputs[name] = _sync_await(output.future())
        if _sync_await(output.is_secret()):
            secret_outputs.add(name)
    return ProgramRun(
        resources=tuple(monitor.recorded),
        outputs=outputs,
        secret_outputs=frozenset(secret_outputs),
        error=error,
    )


def run_under_mocks(
    program: Callable[[], None],
    monitor: MockMonitor,
    stack_config: Mapping[str, str],
    stack: str = "test",
    *,
    preview: bool = False,
) -> None:
    """Run ``program`` as a fresh stack against ``monitor``, with fully qualified ``stack_config`` keys.

    The layer under :func:`run_program`; the benchmarks call it with a plain, non-recording monitor.
    """
    settings.ROOT.set(None)  # a fresh root stack for every run
    pulumi.runtime.set_mocks(monitor.mocks, project=PROJECT, stack=stack, preview=preview, monitor=monitor)
    pulumi.runtime.set_all_config(dict(stack_config))
    collecting = gc.isenabled()
    try:
        _sync_await(run_pulumi_func(program))
    finally:
        # The program turns the cyclic collector off for the rest of its process; this process goes on.
        if collecting:
            gc.enable()


def _token(seed: str, length: int) -> str:
    """A random-looking but reproducible identifier."""
    alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    digest = hashlib.sha256(seed.encode()).digest() * (length // 32 + 1)
    return "".join(alphabet[byte % len(alphabet)] for byte in digest[:length])


def _arn(type_token: str, name: str, logical_name: str) -> str:
    if type_token == TABLE:
        return f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{name}"
    if type_token == ROLE:
        return f"arn:aws:iam::{ACCOUNT}:role/{name}"
    if type_token == LOG_GROUP:
        return f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{name}"
    if type_token == FUNCTION:
        return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}"
    service = type_token.split(":")[1].split("/")[0]
    return f"arn:aws:{service}:{REGION}:{ACCOUNT}:{logical_name}"
