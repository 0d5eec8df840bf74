"""The verified-token cache: a hit skips the signature and decoding, never the clock, the key
or the token store; and the standard-library HMAC path agrees with PyJWT."""

from __future__ import annotations

import asyncio
import hmac
import json
import secrets
import time
from typing import Any

import jwt
import pytest
import time_machine
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from fastsecure import AuthenticationResult, ConfigurationError, MemoryTokenStore
from fastsecure_jwt import JWTAuthenticationProvider
from fastsecure_jwt._jws import (
    SUPPORTED_ALGORITHMS,
    ClaimRules,
    HmacKey,
    Rejected,
    b64url,
    check_claims,
    json_segment,
    read_header,
    split,
    verify_hmac,
)

SECRET = "s" * 48


async def present(provider: JWTAuthenticationProvider, token: str) -> AuthenticationResult:
    return await provider.authenticate({"access_token": token})


def outcome(result: AuthenticationResult) -> tuple[Any, ...]:
    if not result.success:
        return (False, result.metadata["error"])
    return (True, result.user_id, result.scopes, result.metadata, result.expires_at)


async def issue(provider: JWTAuthenticationProvider, **credentials: Any) -> str:
    issued = await provider.authenticate({"user_id": 7, "scopes": ["read"], **credentials})
    assert issued.success, issued.metadata
    return str(issued.access_token)


async def test_a_repeated_token_is_verified_once_and_answers_the_same() -> None:
    provider = JWTAuthenticationProvider(secret_key=SECRET)
    token = await issue(provider, metadata={"team": "a"})
    first, again = await present(provider, token), await present(provider, token)
    assert first.success and outcome(first) == outcome(again)
    assert provider.verified_cache.hits == 1 and len(provider.verified_cache) == 1
    # Fresh containers per request: a strategy or an app changing one changes no other.
    again.metadata["scopes"].append("admin")
    again.metadata["claims"]["sub"] = "mallory"
    again.metadata["team"] = "b"
    third = await present(provider, token)
    assert outcome(third) == outcome(first)


async def test_a_hit_after_the_key_is_removed_fails(ec_key: ec.EllipticCurvePrivateKey) -> None:
    store = MemoryTokenStore()
    old_signer = JWTAuthenticationProvider(
        algorithm="ES256", private_key=ec_key, signing_kid="old", token_store=store
    )
    new_key = ec.generate_private_key(ec.SECP256R1())
    provider = JWTAuthenticationProvider(
        algorithm="ES256",
        private_key=new_key,
        signing_kid="new",
        public_keys={"old": ec_key.public_key()},
        token_store=store,
    )
    token = await issue(old_signer)
    assert (await present(provider, token)).success
    assert (await present(provider, token)).success
    assert provider.verified_cache.hits == 1
    assert provider.remove_key("old") == 1
    result = await present(provider, token)
    assert not result.success and result.metadata["error"] == "unknown key id"
    assert [k["kid"] for k in provider.jwks()["keys"]] == ["new"]
    assert (await present(provider, await issue(provider))).success
    with pytest.raises(ConfigurationError, match="signing key"):
        provider.remove_key("new")
    with pytest.raises(ConfigurationError, match="no verification key"):
        provider.remove_key("old")


async def test_a_key_removed_while_a_verification_awaits_the_store_is_not_cached(
    ec_key: ec.EllipticCurvePrivateKey,
) -> None:
    store = MemoryTokenStore()
    old_signer = JWTAuthenticationProvider(
        algorithm="ES256", private_key=ec_key, signing_kid="old", token_store=store
    )
    provider = JWTAuthenticationProvider(
        algorithm="ES256",
        private_key=ec.generate_private_key(ec.SECP256R1()),
        signing_kid="new",
        public_keys={"old": ec_key.public_key()},
        token_store=store,
    )
    token = await issue(old_signer)
    check_access = store.check_access

    async def removing(*args: Any) -> Any:
        provider.remove_key("old")  # lands between the signature check and the answer
        return await check_access(*args)

    store.check_access = removing  # type: ignore[method-assign,assignment]
    assert (await present(provider, token)).success  # verified before the removal
    store.check_access = check_access  # type: ignore[method-assign]
    assert len(provider.verified_cache) == 0
    assert not (await present(provider, token)).success


@pytest.mark.parametrize("leeway", [0, 5])
async def test_an_expired_cached_token_fails_at_the_exact_second(leeway: int) -> None:
    provider = JWTAuthenticationProvider(
        secret_key=SECRET, access_token_expire_minutes=1, leeway=leeway
    )
    start = int(time.time()) + 10
    with time_machine.travel(start, tick=False) as clock:
        token = await issue(provider)
        assert (await present(provider, token)).success
        clock.move_to(start + 60 + leeway - 0.001)
        assert (await present(provider, token)).success
        assert provider.verified_cache.hits == 1
        clock.move_to(start + 60 + leeway)
        result = await present(provider, token)
        assert not result.success and result.metadata["error"] == "token expired"
        assert len(provider.verified_cache) == 0


async def test_a_revoked_cached_token_fails() -> None:
    provider = JWTAuthenticationProvider(secret_key=SECRET)
    token = await issue(provider)
    other = await issue(provider)
    for t in (token, token, other, other):
        assert (await present(provider, t)).success
    assert provider.verified_cache.hits == 2
    assert await provider.revoke_access_token(token)
    assert (await present(provider, token)).metadata["error"] == "token revoked"
    assert (await present(provider, other)).success
    await provider.revoke_authentication({"access_token": other})  # the whole login
    assert (await present(provider, other)).metadata["error"] == "token revoked"
    assert len(provider.verified_cache) == 0


async def test_a_token_differing_by_one_byte_is_a_miss_verified_in_full() -> None:
    provider = JWTAuthenticationProvider(secret_key=SECRET)
    token = await issue(provider)
    assert (await present(provider, token)).success
    for index in (len(token) - 1, token.index(".") + 3, 2):
        flipped = token[:index] + ("A" if token[index] != "A" else "B") + token[index + 1 :]
        misses = provider.verified_cache.misses
        result = await present(provider, flipped)
        assert not result.success
        assert provider.verified_cache.misses == misses + 1
    assert len(provider.verified_cache) == 1  # failures are never cached


async def test_size_bound_off_switch_and_bad_sizes() -> None:
    provider = JWTAuthenticationProvider(secret_key=SECRET, verified_cache_size=2)
    tokens = [await issue(provider) for _ in range(4)]
    for token in tokens:
        assert (await present(provider, token)).success
    assert len(provider.verified_cache) == 2
    off = JWTAuthenticationProvider(secret_key=SECRET, verified_cache_size=0)
    token = await issue(off)
    for _ in range(3):
        assert (await present(off, token)).success
    assert len(off.verified_cache) == 0 and off.verified_cache.hits == 0
    for bad in (-1, 2.5, True, "10"):
        with pytest.raises(ConfigurationError):
            JWTAuthenticationProvider(secret_key=SECRET, verified_cache_size=bad)  # type: ignore[arg-type]


async def test_concurrent_presentations_agree() -> None:
    provider = JWTAuthenticationProvider(secret_key=SECRET, verified_cache_size=3)
    tokens = [await issue(provider, metadata={"n": n}) for n in range(6)]
    results = await asyncio.gather(*(present(provider, tokens[i % 6]) for i in range(300)))
    assert [r.metadata["n"] for r in results] == [i % 6 for i in range(300)]


# --- cached and uncached verification agree ---------------------------------------------

_STORE = MemoryTokenStore()
_CACHED = JWTAuthenticationProvider(secret_key=SECRET, leeway=2, token_store=_STORE)
_UNCACHED = JWTAuthenticationProvider(
    secret_key=SECRET, leeway=2, token_store=_STORE, verified_cache_size=0
)
_BASE = int(time.time()) + 1000

_time_claim = st.one_of(
    st.none(), st.integers(-6, 6), st.integers(-12, 12).map(lambda n: n / 2 + 0.25)
)


@settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    exp=_time_claim,
    nbf=_time_claim,
    iat=_time_claim,
    events=st.lists(
        st.one_of(
            st.integers(-16, 16).map(lambda n: ("at", n / 2 - 0.25)),
            st.floats(-8, 8).map(lambda t: ("at", t)),
            st.just(("revoke", 0.0)),
        ),
        min_size=1,
        max_size=6,
    ),
)
def test_cached_and_uncached_verification_always_agree(
    exp: float | None, nbf: float | None, iat: float | None, events: list[tuple[str, float]]
) -> None:
    """One token, presented to a cached and an uncached provider at the same instants."""

    async def run() -> None:
        with time_machine.travel(_BASE, tick=False) as clock:
            issued = await issue(_CACHED)
            claims = jwt.decode(issued, options={"verify_signature": False})
            for name, offset in (("exp", exp), ("nbf", nbf), ("iat", iat)):
                if offset is None:
                    claims.pop(name, None)
                else:
                    claims[name] = _BASE + offset
            token = jwt.encode(claims, SECRET, algorithm="HS256")
            for what, offset in [("at", 0.0), *events]:
                if what == "revoke":
                    await _CACHED.revoke_access_token(token)
                    continue
                clock.move_to(_BASE + offset)
                cached = await present(_CACHED, token)
                uncached = await present(_UNCACHED, token)
                assert outcome(cached) == outcome(uncached), (what, offset)

    asyncio.run(run())


# --- the standard-library HMAC path agrees with PyJWT ----------------------------------

_KEY = HmacKey(SECRET.encode(), "HS256")
_RULES = ClaimRules(required=("exp", "iat", "sub"), issuer="iss-a", audience=("aud-a",), leeway=1)
_NOW = 1_900_000_000

_json_value = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=4),
    st.lists(st.text(max_size=3), max_size=2),
)
_MISSING = object()


_edge = st.one_of(st.integers(_NOW - 3, _NOW + 3), st.floats(_NOW - 3, _NOW + 3))
_valid_claims = st.fixed_dictionaries(
    {
        "exp": st.one_of(st.integers(_NOW + 2, _NOW + 99), _edge),
        "iat": st.one_of(st.integers(_NOW - 99, _NOW - 2), _edge),
        "iss": st.just("iss-a"),
        "aud": st.sampled_from(["aud-a", ["x", "aud-a"]]),
        "sub": st.just("user"),
    },
    optional={"nbf": st.one_of(st.integers(_NOW - 99, _NOW - 2), _edge), "jti": st.just("j")},
)
_perturbation = st.one_of(
    st.none(),
    st.tuples(
        st.sampled_from(["exp", "nbf", "iat", "iss", "aud", "sub", "jti"]),
        st.one_of(_json_value, st.just(_MISSING), st.sampled_from([["x"], [], "x", "ISS-A"])),
    ),
)


def _perturbed(claims: dict[str, Any], change: tuple[str, Any] | None) -> dict[str, Any]:
    if change is not None:
        name, value = change
        claims = {k: v for k, v in claims.items() if k != name}
        if value is not _MISSING:
            claims[name] = value
    return claims


def _ours(token: str) -> dict[str, Any] | None:
    try:
        head, body, _ = split(token)
        _, kid = read_header(head, ("HS256",))
        if kid is not None:
            raise Rejected("unknown key id")
        verify_hmac(token, head, body, _KEY)
        claims = json_segment(body)
        check_claims(claims, _RULES, _NOW)
    except Rejected:
        return None
    return claims


def _pyjwt(token: str) -> dict[str, Any] | None:
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            SECRET,
            algorithms=["HS256"],
            options={"require": list(_RULES.required)},
            issuer="iss-a",
            audience="aud-a",
            leeway=1,
        )
    except (jwt.PyJWTError, ValueError, TypeError, OverflowError):
        return None
    # Our one addition to PyJWT's rules: exp is a JSON number (not a numeric string).
    return claims if type(claims["exp"]) in (int, float) else None


def _craft(header: dict[str, Any], claims: dict[str, Any]) -> str:
    """A token signed with SECRET whatever its header says (PyJWT's encode would refuse some)."""
    head = b64url(json.dumps(header, separators=(",", ":")).encode())
    body = b64url(json.dumps(claims, separators=(",", ":")).encode())
    signature = hmac.digest(SECRET.encode(), f"{head}.{body}".encode(), "sha256")
    return f"{head}.{body}.{b64url(signature)}"


_GOOD = {"exp": _NOW + 60, "iat": _NOW - 5, "iss": "iss-a", "aud": "aud-a", "sub": "user"}


@settings(max_examples=800, deadline=None)
@example(claims={**_GOOD, "aud": ["x"]}, header={"alg": "HS256"}, cut=0, flip=1)
@example(claims={**_GOOD, "aud": "x"}, header={"alg": "HS256"}, cut=0, flip=1)
@example(claims={**_GOOD, "sub": None}, header={"alg": "HS256"}, cut=0, flip=1)
@example(claims={**_GOOD, "exp": None}, header={"alg": "HS256"}, cut=0, flip=1)
@example(claims={**_GOOD, "exp": "soon"}, header={"alg": "HS256"}, cut=0, flip=1)
@example(claims={**_GOOD, "exp": _NOW - 1}, header={"alg": "HS256"}, cut=0, flip=1)
@example(claims={**_GOOD, "exp": _NOW - 0.5}, header={"alg": "HS256"}, cut=0, flip=1)
@example(claims={**_GOOD, "nbf": _NOW + 1.5}, header={"alg": "HS256"}, cut=0, flip=1)
@example(claims={**_GOOD, "iat": _NOW + 1}, header={"alg": "HS256"}, cut=0, flip=1)
@example(claims={**_GOOD, "iat": True}, header={"alg": "HS256"}, cut=0, flip=1)
@given(
    claims=st.builds(_perturbed, _valid_claims, _perturbation),
    header=st.one_of(
        st.just({"alg": "HS256", "typ": "JWT"}),
        st.just({"alg": "HS256"}),
        st.fixed_dictionaries(
            {"alg": st.sampled_from(["HS256", "HS384", "none", "RS256", "hs256"])},
            optional={
                "typ": st.sampled_from(["JWT", "at+jwt"]),
                "kid": st.one_of(st.none(), st.integers(0, 3), st.text(max_size=2)),
            },
        ),
    ),
    cut=st.integers(0, 400),
    flip=st.integers(0, 4),
)
def test_the_hmac_path_agrees_with_pyjwt(
    claims: dict[str, Any], header: dict[str, Any], cut: int, flip: int
) -> None:
    """Generated claims and headers, one byte changed or not: both accept, or both refuse."""
    token = _craft(header, claims)
    if flip == 0:
        index = cut % len(token)
        token = token[:index] + ("B" if token[index] == "A" else "A") + token[index + 1 :]
    with time_machine.travel(_NOW, tick=False):
        ours, theirs = _ours(token), _pyjwt(token)
    if "kid" in header and header["kid"] is not None:
        assert ours is None  # our key table has no kid here; PyJWT was given the key itself
    else:
        assert ours == theirs
    event(f"accepted: {ours is not None}")


def test_where_the_hmac_path_is_stricter_than_pyjwt() -> None:
    claims = {"sub": "user", "exp": _NOW + 60, "iat": _NOW, "iss": "iss-a", "aud": "aud-a"}
    token = _craft({"alg": "HS256"}, claims)
    padded = token + "=" * (-len(token.rpartition(".")[2]) % 4)
    critical = _craft({"alg": "HS256", "crit": ["b64"], "b64": True}, claims)
    with time_machine.travel(_NOW, tick=False):
        assert _ours(token) == _pyjwt(token) == claims
        for variant in (padded, critical):
            assert _pyjwt(variant) == claims and _ours(variant) is None


def test_supported_algorithms_are_pyjwts_without_none() -> None:
    from jwt.algorithms import get_default_algorithms

    assert set(get_default_algorithms()) - {"none"} == SUPPORTED_ALGORITHMS


def test_tokens_we_sign_are_what_pyjwt_signs() -> None:
    provider = JWTAuthenticationProvider(secret_key=SECRET, signing_kid="k1")
    claims = {"sub": "1", "exp": 2_000_000_000, "scopes": ["a"], "x": {"y": [1, 2]}}
    ours = provider._jwt.encode(claims, SECRET.encode(), algorithm="HS256", headers={"kid": "k1"})
    assert ours == jwt.encode(claims, SECRET, algorithm="HS256", headers={"kid": "k1"})
    with pytest.raises(ValueError):
        provider._jwt.encode(claims, secrets.token_bytes(48), algorithm="HS256")


def test_an_asymmetric_key_is_never_an_hmac_secret(ec_key: ec.EllipticCurvePrivateKey) -> None:
    from cryptography.hazmat.primitives import serialization

    pem = ec_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    with pytest.raises(ConfigurationError, match="never an HMAC secret"):
        JWTAuthenticationProvider(secret_key=pem)


@pytest.mark.parametrize("exp", [1e300, 2**62, 10**18])
async def test_a_signed_expiry_beyond_a_datetime_is_refused_not_raised(exp: float) -> None:
    provider = JWTAuthenticationProvider(secret_key=SECRET)
    claims = jwt.decode(await issue(provider), options={"verify_signature": False})
    token = jwt.encode({**claims, "exp": exp}, SECRET, algorithm="HS256")
    result = await present(provider, token)
    assert not result.success and result.metadata["error"] == "invalid exp claim"
