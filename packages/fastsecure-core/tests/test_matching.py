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


# --- the trie against a brute-force reference ------------------------------------------

_SEGMENTS = ["a", "b", "c", ""]


def _naive_rank(pattern: tuple[str, ...], path: list[str]) -> tuple[int, ...] | None:
    """Per path position (plus the end): 0 literal, 1 one-segment wildcard, 2 under '**'.

    None when the pattern does not match. The most specific pattern has the smallest
    rank, compared from the left: the module docstring's rule, spelled out naively.
    """
    tail = bool(pattern) and pattern[-1] == "**"
    fixed = pattern[:-1] if tail else pattern
    if len(path) < len(fixed) or (not tail and len(path) != len(fixed)):
        return None
    ranks = []
    for want, got in zip(fixed, path, strict=False):
        if want == "*":
            if got == "":
                return None
            ranks.append(1)
        elif want == got:
            ranks.append(0)
        else:
            return None
    ranks += [2] * (len(path) - len(fixed))
    ranks.append(2 if tail else 0)  # ending here beats '**' ending here
    return tuple(ranks)


def _naive_match(patterns: list[str], path: str) -> str | None:
    segments = split_path(path)
    best: tuple[tuple[int, ...], str] | None = None
    for pattern in patterns:
        rank = _naive_rank(normalize_pattern(pattern), segments)
        if rank is not None and (best is None or rank < best[0]):
            best = (rank, pattern)
    return best[1] if best else None


_pattern_segment = st.sampled_from(["a", "b", "c", "*", "{id}"])
_patterns = st.builds(
    lambda segs, tail: "/" + "/".join([*segs, *(["**"] if tail else [])]),
    st.lists(_pattern_segment, max_size=4),
    st.booleans(),
)
_paths = st.builds(
    lambda segs, slash: "/" + "/".join(segs) + ("/" if slash and segs else ""),
    st.lists(st.sampled_from(_SEGMENTS), max_size=5),
    st.booleans(),
)


@given(st.lists(_patterns, min_size=1, max_size=8), st.lists(_paths, min_size=1, max_size=10))
def test_trie_agrees_with_a_brute_force_most_specific_matcher(
    patterns: list[str], paths: list[str]
) -> None:
    unique = list({normalize_pattern(p): p for p in patterns}.values())  # later one replaces
    t = table(patterns)
    for path in paths:
        found = t.match(path)
        assert (found[0] if found else None) == _naive_match(unique, path), path
        # matches() lists every matching pattern, most specific first.
        every = t.matches(path)
        ranked = {p: _naive_rank(normalize_pattern(p), split_path(path)) for p in unique}
        assert every == sorted((p for p in unique if ranked[p]), key=lambda p: ranked[p] or ())


def test_cache_memory_is_bounded_by_count_and_path_length() -> None:
    t = table(PATTERNS)
    long_path = "/api/" + "x" * 10_000
    assert t.match(long_path) == ("/api/**", "/api/**")
    assert long_path not in t._cache
    for i in range(t.CACHE_SIZE + 10):
        t.match(f"/api/users/{i}")
    assert len(t._cache) <= t.CACHE_SIZE
