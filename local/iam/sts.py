"""STS on the wire: AssumeRole read from the query protocol, judged against a role's trust policy, and the
session it creates read back from the emulator's answer (its access key, ARN, expiry), plus STS's errors."""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass
from datetime import datetime
from xml.sax.saxutils import escape

from local.iam.policy import ContextValue, Request, UnsupportedPolicyError
from local.iam.wire import Answer, Caller, SignedCall

SERVICE = "sts"
ASSUME_ROLE = "AssumeRole"
# Actions any principal may call, needing no permission (as on AWS).
_UNAUTHORIZED_ACTIONS = frozenset({"GetCallerIdentity"})
# AssumeRole parameters whose effect (session policies, transitive tags) this emulation does not model.
_UNMODELLED_PARAMETERS = ("Policy", "PolicyArns.member.1.arn", "TransitiveTagKeys.member.1")
KNOWN_CONDITION_KEYS = frozenset({"aws:requesttag/*", "aws:tagkeys"})
_NAMESPACE = "https://sts.amazonaws.com/doc/2011-06-15/"


@dataclass(frozen=True)
class AssumeRoleCall:
    role_arn: str
    session_name: str
    tags: dict[str, str]


def action_of(call: SignedCall) -> str:
    return call.form().get("Action", "")


def assume_role_call(call: SignedCall) -> AssumeRoleCall:
    form = call.form()
    unmodelled = [name.split(".")[0] for name in _UNMODELLED_PARAMETERS if name in form]
    if unmodelled:
        raise UnsupportedPolicyError(f"AssumeRole with {', '.join(unmodelled)} is not emulated")
    tags: dict[str, str] = {}
    index = 1
    while f"Tags.member.{index}.Key" in form:
        tags[form[f"Tags.member.{index}.Key"]] = form.get(f"Tags.member.{index}.Value", "")
        index += 1
    if "RoleArn" not in form or "RoleSessionName" not in form:
        raise UnsupportedPolicyError("AssumeRole without RoleArn or RoleSessionName")
    return AssumeRoleCall(form["RoleArn"], form["RoleSessionName"], tags)


def assume_role_requests(assume: AssumeRoleCall, principal: str | None = None) -> list[Request]:
    """What AssumeRole needs: sts:AssumeRole on the role and, with session tags, sts:TagSession too."""
    context: dict[str, ContextValue] = {f"aws:RequestTag/{key}": value for key, value in assume.tags.items()}
    if assume.tags:
        context["aws:TagKeys"] = sorted(assume.tags)
    actions = ["sts:AssumeRole", "sts:TagSession"] if assume.tags else ["sts:AssumeRole"]
    return [
        Request(
            action, assume.role_arn, context=context, principal=principal, known_keys=KNOWN_CONDITION_KEYS
        )
        for action in actions
    ]


def trust_denial_message(caller_arn: str, role_arn: str) -> str:
    return f"User: {caller_arn} is not authorized to perform: sts:AssumeRole on resource: {role_arn}"


@dataclass(frozen=True)
class IssuedCredentials:
    access_key_id: str
    assumed_role_arn: str
    expires_at: float


def issued_credentials(response_body: bytes) -> IssuedCredentials:
    """The session in the emulator's AssumeRole answer."""
    root = ElementTree.fromstring(response_body)

    def text(path: str) -> str:
        element = root.find(f".//{{{_NAMESPACE}}}{path}")
        if element is None or element.text is None:
            raise ValueError(f"AssumeRole answer has no {path}")
        return element.text

    return IssuedCredentials(
        access_key_id=text("AccessKeyId"),
        assumed_role_arn=text(f"AssumedRoleUser/{{{_NAMESPACE}}}Arn"),
        expires_at=datetime.fromisoformat(text("Expiration")).timestamp(),
    )


class StsAuthorization:
    """STS calls made by an issued session (role chaining and the like); AssumeRole's trust policy and its
    session bookkeeping are the enforcer's."""

    service = SERVICE
    needs_body = True

    def requests(self, call: SignedCall, caller: Caller) -> list[Request]:  # noqa: ARG002 (protocol)
        action = action_of(call)
        if action in _UNAUTHORIZED_ACTIONS:
            return []
        if action == ASSUME_ROLE:
            return assume_role_requests(assume_role_call(call))
        if not action:
            raise UnsupportedPolicyError("the STS request names no Action")
        return [Request(f"sts:{action}", "*", known_keys=frozenset())]

    def observe(self, call: SignedCall) -> None:
        """Nothing to forget: STS holds no state the authorization reads."""

    def denied(self, message: str) -> Answer:
        return error_answer(403, "AccessDenied", message)

    def token_expired(self) -> Answer:
        return error_answer(400, "ExpiredToken", "The security token included in the request is expired")


def error_answer(status: int, code: str, message: str) -> Answer:
    """The query protocol's error document, as STS (and IAM) send it."""
    body = (
        f'<ErrorResponse xmlns="{_NAMESPACE}"><Error><Type>Sender</Type><Code>{escape(code)}</Code>'
        f"<Message>{escape(message)}</Message></Error></ErrorResponse>"
    )
    return Answer(status, [("Content-Type", "text/xml")], body.encode())
