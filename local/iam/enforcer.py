"""IAM on the emulator's side: a WSGI middleware around moto's app that judges every signed request.

moto enforces no IAM policy of this kind (its own option ignores conditions, so ``dynamodb:LeadingKeys``
would never be checked). This middleware does, on the server side, so any client code path is caught:

- It learns the sessions from the STS ``AssumeRole`` calls that pass through it: the access key id, the
  assumed-role ARN and expiry in the answer, the session tags in the request. An ``AssumeRole`` is first
  judged against the role's trust policy (and the caller's identity policies); refused, it never reaches
  moto.
- A request signed with a session's access key (SigV4 ``Credential=``) is mapped by its service's
  ``ServiceAuthorization`` to IAM authorization requests, each evaluated against the role's identity
  policies as moto holds them right now (inline and attached), with the session's tags. Any denial is
  answered as that service answers AccessDenied; moto never sees the request. Expired credentials get the
  service's expired-token error. A session calling a service no adapter maps is refused.
- Requests signed with any other key (the stack's own dummy credentials: provisioning, the authorizer's
  registry reads, the tenant API's STS calls) pass unjudged, as moto would; for ``AssumeRole`` they stand
  for the role named with ``stack_credentials_act_as`` (the tenant API's role).
"""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

from local.iam import s3, sts
from local.iam.dynamodb import DynamoDBAuthorization
from local.iam.policy import (
    Decision,
    PolicyDocument,
    Request,
    UnsupportedPolicyError,
    evaluate,
    evaluate_all,
)
from local.iam.wire import (
    Answer,
    Caller,
    ServiceAuthorization,
    SignedCall,
    StackClients,
    assumed_role_arn,
    credential_scope,
    denial_message,
    unjudged_message,
)

# IAM is global; its API is signed for us-east-1.
IAM_REGION = "us-east-1"
_IAM_READ_PREFIXES = ("Get", "List", "Simulate", "Generate")


@dataclass(frozen=True)
class RolePolicies:
    trust: PolicyDocument
    identity: tuple[PolicyDocument, ...]


def default_services(clients: StackClients) -> list[ServiceAuthorization]:
    """The services the local stack's sessions use."""
    return [DynamoDBAuthorization(clients), sts.StsAuthorization(), s3.S3Authorization()]


class IamEnforcer:
    """WSGI middleware: ``IamEnforcer(moto_app, clients)`` is a WSGI app that enforces IAM on sessions."""

    def __init__(
        self,
        app: WSGIApplication,
        clients: StackClients,
        services: Iterable[ServiceAuthorization] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._app = app
        self._clients = clients
        chosen = default_services(clients) if services is None else services
        self._services = {service.service: service for service in chosen}
        self._clock = clock
        self._sessions: dict[str, Caller] = {}
        self._roles: dict[str, RolePolicies] = {}
        self._stack_caller: Caller | None = None
        self._lock = threading.Lock()  # guards the dicts; never held across a call to the emulator

    def stack_credentials_act_as(self, role_arn: str, session_name: str) -> None:
        """In AssumeRole calls, the stack's own credentials are a session of this role (the tenant API's)."""
        self._stack_caller = Caller(assumed_role_arn(role_arn, session_name), role_arn)

    def sessions(self) -> dict[str, Caller]:
        """The sessions issued so far, by access key id."""
        with self._lock:
            return dict(self._sessions)

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        call = self._signed_call(environ)
        if call is None:
            return self._app(environ, start_response)
        service = self._services.get(call.service)
        if service is not None:
            service.observe(call)
        with self._lock:
            caller = self._sessions.get(call.access_key_id)
        if caller is not None:
            refusal = self._refusal(call, caller, service)
            if refusal is not None:
                return _send(refusal, start_response)
        if call.service == s3.SERVICE and call.method == "POST":
            # S3 checks a form upload's policy (expiry, fields, size) itself; moto does not.
            upload_refusal = s3.post_upload_refusal(call)
            if upload_refusal is not None:
                return _send(upload_refusal, start_response)
        if call.service == sts.SERVICE and sts.action_of(call) == sts.ASSUME_ROLE:
            return self._assume_role(call, caller, environ, start_response)
        answer = self._app(environ, start_response)
        if call.service == "iam" and not call.form().get("Action", "").startswith(_IAM_READ_PREFIXES):
            with self._lock:
                self._roles.clear()
        return answer

    # -----------------------------------------------------------------------------------------------------
    # Reading the request

    def _signed_call(self, environ: WSGIEnvironment) -> SignedCall | None:
        query = str(environ.get("QUERY_STRING", ""))
        scope = credential_scope(str(environ.get("HTTP_AUTHORIZATION", "")), query)
        content_type = str(environ.get("CONTENT_TYPE", ""))
        if (
            scope is None
            and environ.get("REQUEST_METHOD") == "POST"
            and content_type.startswith("multipart/")
        ):
            # A browser-style upload (presigned POST) is signed in its form fields.
            scope = s3.post_form_scope(s3.lower_fields(s3.form_fields(_buffered_body(environ), content_type)))
        if scope is None:
            return None
        access_key_id, region, service_name = scope
        service = self._services.get(service_name)
        body = b""
        if service_name == "iam" or (service is not None and service.needs_body):
            body = _buffered_body(environ)
        headers = {
            name[5:].replace("_", "-").lower(): str(value)
            for name, value in environ.items()
            if name.startswith("HTTP_")
        }
        headers["content-type"] = str(environ.get("CONTENT_TYPE", ""))
        return SignedCall(
            access_key_id=access_key_id,
            region=region,
            service=service_name,
            method=str(environ.get("REQUEST_METHOD", "")),
            path=str(environ.get("PATH_INFO", "")),
            query=query,
            headers=headers,
            body=body,
        )

    # -----------------------------------------------------------------------------------------------------
    # Judging a session's call

    def _refusal(
        self, call: SignedCall, caller: Caller, service: ServiceAuthorization | None
    ) -> Answer | None:
        if service is None:
            reason = f"no IAM mapping for the {call.service} service"
            return sts.error_answer(403, "AccessDenied", unjudged_message(caller.arn, call.service, reason))
        if self._clock() >= caller.expires_at:
            return service.token_expired()
        try:
            return self._identity_denial(caller, service.requests(call, caller), service)
        except UnsupportedPolicyError as error:
            return service.denied(unjudged_message(caller.arn, call.service, str(error)))

    def _identity_denial(
        self, caller: Caller, requests: Iterable[Request], service: ServiceAuthorization
    ) -> Answer | None:
        """The service's AccessDenied for the first request the caller's role policies do not allow."""
        policies = self._role(caller.role_arn).identity
        for request in requests:
            decision = evaluate_all(policies, request)
            if decision is not Decision.ALLOW:
                explicit = decision is Decision.EXPLICIT_DENY
                return service.denied(denial_message(caller.arn, request, explicit))
        return None

    def _assume_role(
        self,
        call: SignedCall,
        session: Caller | None,
        environ: WSGIEnvironment,
        start_response: StartResponse,
    ) -> Iterable[bytes]:
        """AssumeRole: the trust policy first, then moto, then the new session is remembered."""
        caller = session or self._stack_caller
        refusal = self._assume_role_refusal(call, caller, judge_identity=session is None)
        if refusal is not None:
            return _send(refusal, start_response)
        assume = sts.assume_role_call(call)
        captured: dict[str, Any] = {}

        def capture(
            status: str, headers: list[tuple[str, str]], exc_info: Any = None
        ) -> Callable[[bytes], object]:
            captured["status"] = status
            return start_response(status, headers, exc_info)

        body = b"".join(self._app(environ, capture))
        if str(captured.get("status", "")).startswith("200"):
            issued = sts.issued_credentials(body)
            with self._lock:
                self._sessions[issued.access_key_id] = Caller(
                    issued.assumed_role_arn, assume.role_arn, assume.tags, issued.expires_at
                )
        return [body]

    def _assume_role_refusal(
        self, call: SignedCall, caller: Caller | None, *, judge_identity: bool
    ) -> Answer | None:
        """STS's AccessDenied when the caller's role policies (for the stack's credentials; a session's
        were judged like any of its calls) or the role's trust policy do not allow this AssumeRole."""
        answers = sts.StsAuthorization()
        try:
            if caller is None:
                raise UnsupportedPolicyError(
                    "the stack has not said which role its own credentials stand for"
                )
            assume = sts.assume_role_call(call)
            if judge_identity:
                denial = self._identity_denial(caller, sts.assume_role_requests(assume), answers)
                if denial is not None:
                    return denial
            trust = self._role(assume.role_arn).trust
            for request in sts.assume_role_requests(assume, principal=caller.role_arn):
                if evaluate(trust, request) is not Decision.ALLOW:
                    return answers.denied(sts.trust_denial_message(caller.arn, assume.role_arn))
        except UnsupportedPolicyError as error:
            arn = caller.arn if caller is not None else "the stack's credentials"
            return answers.denied(unjudged_message(arn, sts.SERVICE, str(error)))
        return None

    # -----------------------------------------------------------------------------------------------------
    # Roles as moto holds them

    def _role(self, role_arn: str) -> RolePolicies:
        with self._lock:
            cached = self._roles.get(role_arn)
        if cached is not None:
            return cached
        policies = _read_role(self._clients("iam", IAM_REGION), role_arn)
        with self._lock:
            self._roles[role_arn] = policies
        return policies


def _read_role(iam: Any, role_arn: str) -> RolePolicies:
    role_name = role_arn.rpartition("/")[2]
    try:
        role = iam.get_role(RoleName=role_name)["Role"]
    except iam.exceptions.NoSuchEntityException as error:
        raise UnsupportedPolicyError(f"role {role_arn} does not exist") from error
    if "PermissionsBoundary" in role:
        raise UnsupportedPolicyError(f"role {role_name} has a permissions boundary, which is not emulated")
    inline = [
        iam.get_role_policy(RoleName=role_name, PolicyName=name)["PolicyDocument"]
        for page in iam.get_paginator("list_role_policies").paginate(RoleName=role_name)
        for name in page["PolicyNames"]
    ]
    attached = []
    for page in iam.get_paginator("list_attached_role_policies").paginate(RoleName=role_name):
        for policy in page["AttachedPolicies"]:
            version = iam.get_policy(PolicyArn=policy["PolicyArn"])["Policy"]["DefaultVersionId"]
            document = iam.get_policy_version(PolicyArn=policy["PolicyArn"], VersionId=version)
            attached.append(document["PolicyVersion"]["Document"])
    return RolePolicies(trust=role["AssumeRolePolicyDocument"], identity=(*inline, *attached))


def _buffered_body(environ: WSGIEnvironment) -> bytes:
    """Read the body once and put it back for moto (only bodies with a declared length are read)."""
    length = str(environ.get("CONTENT_LENGTH") or "0")
    if not length.isdigit() or int(length) == 0:
        return b""
    body: bytes = environ["wsgi.input"].read(int(length))
    environ["wsgi.input"] = io.BytesIO(body)
    return body


def _send(answer: Answer, start_response: StartResponse) -> Iterable[bytes]:
    answer = answer.with_request_id()
    reason = {400: "Bad Request", 403: "Forbidden", 404: "Not Found"}.get(answer.status, "Error")
    start_response(f"{answer.status} {reason}", [*answer.headers, ("Content-Length", str(len(answer.body)))])
    return [answer.body]
