"""The token verifier uses PyJWT through its public API only, and reads the key id as PyJWT reads headers."""

from __future__ import annotations

import ast
import base64
import json
from pathlib import Path

import jwt
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from handlers import token_verifier
from handlers.token_verifier import TokenError, TokenVerifier

HANDLERS = Path(__file__).resolve().parents[2] / "handlers"
BASE64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def _segment(value: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


headers = st.one_of(
    st.fixed_dictionaries(
        {"alg": st.sampled_from(["RS256", "RS512", "none", "HS256"])},
        optional={
            "kid": st.one_of(st.text(max_size=8), st.integers(), st.lists(st.text(max_size=3), max_size=2)),
            "typ": st.just("JWT"),
            "crit": st.lists(st.text(max_size=4), max_size=2),
        },
    ).map(_segment),
    st.text(alphabet=BASE64URL + "=+/.", max_size=40),
    st.binary(max_size=24).map(lambda raw: base64.urlsafe_b64encode(raw).decode()),
)


def _outcome(read: object) -> str:
    try:
        return f"kid {read()!r}"  # type: ignore[operator]
    except TokenError as error:
        return error.reason


def _from_whole_token(token: str) -> str:
    """The key id as PyJWT's header of the whole token gives it, with the verifier's rules on top."""
    try:
        header = jwt.get_unverified_header(token)
    except jwt.DecodeError:
        raise token_verifier.MalformedTokenError from None
    except jwt.InvalidTokenError:
        raise token_verifier.InvalidHeaderError from None
    if header.get("alg") != "RS256":
        raise token_verifier.DisallowedAlgorithmError
    if "kid" not in header:
        raise token_verifier.MissingKidError
    if not header["kid"]:
        raise token_verifier.InvalidKidError
    return str(header["kid"])


@settings(max_examples=200, deadline=None)
@given(header=headers, payload=st.sampled_from(["", _segment({"sub": "x"})]))
@example(header=_segment({"alg": "RS256", "kid": "k1"}), payload="")
@example(header=_segment({"alg": "RS256", "kid": 7}), payload="")
@example(header="", payload="")
def test_reading_the_header_segment_alone_decides_as_the_whole_token_does(header: str, payload: str) -> None:
    # GIVEN a token whose signature segment is valid base64url (PyJWT decodes it while reading headers)
    token = f"{header}.{payload}.c2ln"

    # WHEN the verifier reads the key id from the header segment alone
    # THEN it reaches the same key id, or the same rejection, as PyJWT reading the whole token
    assert _outcome(lambda: token_verifier._key_id(token)) == _outcome(lambda: _from_whole_token(token))


def _private_references_into_jwt(source: str) -> list[str]:
    """Names starting with "_" reached from the ``jwt`` package, and classes built on its classes."""
    tree = ast.parse(source)
    jwt_names = {"jwt"}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "jwt":
            jwt_names.update(alias.asname or alias.name for alias in node.names)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr.startswith("_"):
            root = node.value
            while isinstance(root, ast.Attribute):
                root = root.value
            if isinstance(root, ast.Name) and root.id in jwt_names:
                found.append(node.attr)
        if isinstance(node, ast.ClassDef):
            for base in node.bases:
                root = base
                while isinstance(root, ast.Attribute):
                    root = root.value
                if isinstance(root, ast.Name) and root.id in jwt_names:
                    found.append(f"class {node.name}({ast.unparse(base)})")
    return found


@pytest.mark.parametrize("module", sorted(path.name for path in HANDLERS.glob("*.py")))
def test_handlers_use_pyjwt_through_its_public_api_only(module: str) -> None:
    # GIVEN the source of a handler module
    source = (HANDLERS / module).read_text()

    # THEN it neither subclasses a PyJWT class nor reaches for a private name of the package
    assert _private_references_into_jwt(source) == []


def test_the_public_api_check_can_fail() -> None:
    subclassing = (
        "import jwt\nclass Fast(jwt.PyJWS):\n    def _load(self, t):\n        return jwt.api_jws._x\n"
    )
    assert _private_references_into_jwt(subclassing) == ["class Fast(jwt.PyJWS)", "_x"]


@pytest.mark.parametrize(("issuer", "audience"), [("", "client"), ("https://issuer", "")])
def test_issuer_and_audience_are_mandatory(issuer: str, audience: str) -> None:
    with pytest.raises(ValueError, match="issuer and audience"):
        TokenVerifier(issuer=issuer, audience=audience, keys=None)  # type: ignore[arg-type]
