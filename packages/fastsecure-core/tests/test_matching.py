import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fastsecure.matching import PatternTable, canonical_path, normalize_pattern, split_path

PATTERNS = ["/**", "/api/**", "/api/users/*", "/api/users/me", "/api/users/{id}/posts", "/admin/**"]


def table(patterns: list[str]) -> PatternTable[str]:
    t: PatternTable[str] = PatternTable()
    for p in patterns:
        t.add(p, p)
    return t


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/api/users/me", "/api/users/me"),
        ("/api/users/42", "/api/users/*"),
        ("/api/users/42/posts", "/api/users/{id}/posts"),
        ("/api/users/42/likes", "/api/**"),
        ("/api", "/api/**"),
        ("/admin", "/admin/**"),
        ("/admin/", "/admin/**"),
        ("/admin/a/b/c", "/admin/**"),
        ("/", "/**"),
        ("/other", "/**"),
        ("/api/users/me?x=1", "/api/users/me"),
    ],
)
def test_most_specific_wins(path: str, expected: str) -> None:
    found = table(PATTERNS).match(path)
    assert found is not None and found[0] == expected


@given(st.permutations(PATTERNS))
def test_registration_order_does_not_matter(order: list[str]) -> None:
    a, b = table(PATTERNS), table(list(order))
    for path in ["/api/users/me", "/api/users/1", "/api/x", "/admin", "/z", "/api/users/1/posts"]:
        assert a.match(path) == b.match(path)


def test_star_is_exactly_one_segment() -> None:
    t = table(["/api/protected/*"])
    assert t.match("/api/protected/data") is not None
    assert t.match("/api/protected") is None
    assert t.match("/api/protected/a/b") is None
    assert t.match("/api/protected//") is None


def test_param_and_star_are_the_same_pattern_and_replace() -> None:
    t: PatternTable[int] = PatternTable()
    t.add("/u/*", 1)
    t.add("/u/{id}", 2)
    assert len(t) == 1
    assert t.match("/u/5") == ("/u/{id}", 2)


def test_remove() -> None:
    t = table(PATTERNS)
    assert t.remove("/api/users/me")
    assert not t.remove("/api/users/me")
    assert t.match("/api/users/me") == ("/api/users/*", "/api/users/*")


@pytest.mark.parametrize("bad", ["/a/**/b", "/a/x*", "/a/{id"])
def test_malformed_patterns_are_rejected(bad: str) -> None:
    with pytest.raises(ValueError):
        normalize_pattern(bad)


def test_canonical_path() -> None:
    assert canonical_path("//admin") == "/admin"
    assert canonical_path("/public/../admin/./x") == "/admin/x"
    assert canonical_path("/") == "/"
    assert split_path("/a/b/") == ["a", "b"]


def test_ten_thousand_requirements_compile_into_a_trie() -> None:
    t: PatternTable[int] = PatternTable()
    for i in range(10_000):
        t.add(f"/tenant{i}/api/*", i)
    rng = random.Random(1)
    for _ in range(200):
        i = rng.randrange(10_000)
        assert t.match(f"/tenant{i}/api/thing") == (f"/tenant{i}/api/*", i)
    assert t.match("/tenant10000/api/x") is None
    assert t.matches("/tenant5/api/x") == ["/tenant5/api/*"]


def test_matches_lists_overlaps_most_specific_first() -> None:
    assert table(PATTERNS).matches("/api/users/me") == [
        "/api/users/me",
        "/api/users/*",
        "/api/**",
        "/**",
    ]
