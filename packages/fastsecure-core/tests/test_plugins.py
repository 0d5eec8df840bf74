import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import fastsecure
from fastsecure import (
    AuthenticationManager,
    DuplicateTypeNameError,
    PluginError,
    PluginManager,
    hookimpl,
    hookspecs,
)
from fastsecure.hookspecs import Register
from fastsecure.plugins import refresh_entry_points


def make_dist(
    root: Path, name: str, entry_points: dict[str, str], module_source: str | None = None
) -> None:
    """A real installed distribution on sys.path: dist-info metadata plus entry points."""
    info = root / f"{name.replace('-', '_')}-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    lines = ["[fastsecure]"] + [f"{k} = {v}" for k, v in entry_points.items()]
    (info / "entry_points.txt").write_text("\n".join(lines) + "\n")
    if module_source is not None:
        module = next(iter(entry_points.values()))
        (root / f"{module}.py").write_text(module_source)


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.syspath_prepend(str(tmp_path))
    refresh_entry_points()
    yield tmp_path
    refresh_entry_points()


GOOD_PLUGIN = """
from fastsecure import hookimpl
from fastsecure.strategies import AnyAuthStrategy

class Majority(AnyAuthStrategy):
    name = "majority"

@hookimpl
def fastsecure_register_strategies(register):
    register("majority", Majority)
"""


def test_builtins_registered_through_hooks() -> None:
    pm = PluginManager(autoload=False)
    assert set(pm.types("strategy")) == {"any", "all"}
    assert set(pm.types("token_store")) == {"memory"}
    builtin = pm.describe(include_builtins=True)[0]
    assert builtin.status == "builtin"
    assert {"fastsecure_register_strategies", "fastsecure_register_token_stores"} <= set(
        builtin.hooks
    )


def test_entry_point_plugin_discovered_and_used(site: Path) -> None:
    make_dist(site, "fs-majority", {"majority": "fs_majority_plugin"}, GOOD_PLUGIN)
    manager = AuthenticationManager()
    info = {i.name: i for i in manager.plugins.describe()}["majority"]
    assert info.status == "loaded" and info.distribution == "fs-majority" and info.version == "1.0"
    assert info.types == {"strategy": ["majority"]}
    assert "majority" in manager.plugins.types("strategy")


def test_broken_plugin_reported_not_raised(site: Path) -> None:
    make_dist(site, "fs-broken", {"broken": "fs_broken_missing_module"})
    pm = PluginManager()
    info = {i.name: i for i in pm.describe()}["broken"]
    assert info.status == "failed"
    assert "fs_broken_missing_module" in (info.error or "")
    assert info.distribution == "fs-broken"
    with pytest.raises(PluginError, match="fs-broken"):
        pm.get_type("provider", "broken")


@pytest.mark.parametrize(
    ("kwargs", "env", "blocked_by"),
    [
        ({"blocked": ["majority"]}, {}, "blocked=[...]"),
        ({"plugins": ["other"]}, {}, "plugins=[...]"),
        ({"autoload": False}, {}, "autoload=False"),
        ({}, {"FASTSECURE_DISABLED_PLUGINS": "majority"}, "FASTSECURE_DISABLED_PLUGINS"),
        ({}, {"FASTSECURE_PLUGINS": "jwt,session"}, "FASTSECURE_PLUGINS"),
        ({}, {"FASTSECURE_DISABLE_PLUGIN_AUTOLOAD": "1"}, "FASTSECURE_DISABLE_PLUGIN_AUTOLOAD"),
        (
            {"plugins": ["majority"]},
            {"FASTSECURE_DISABLED_PLUGINS": "majority"},
            "FASTSECURE_DISABLED_PLUGINS",
        ),
    ],
)
def test_selection_and_precedence(
    site: Path,
    monkeypatch: pytest.MonkeyPatch,
    kwargs: dict[str, Any],
    env: dict[str, str],
    blocked_by: str,
) -> None:
    make_dist(site, "fs-majority", {"majority": "fs_majority_plugin"}, GOOD_PLUGIN)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    pm = PluginManager(**kwargs)
    info = {i.name: i for i in pm.describe()}["majority"]
    assert (info.status, info.blocked_by) == ("blocked", blocked_by)
    assert "majority" not in pm.types("strategy")


def test_naming_a_blocked_plugins_type_names_the_setting(site: Path) -> None:
    make_dist(site, "fs-majority", {"majority": "fs_majority_plugin"}, GOOD_PLUGIN)
    pm = PluginManager(blocked=["majority"])
    with pytest.raises(PluginError, match=r"installed but blocked by blocked=\[\.\.\.\]"):
        pm.get_type("strategy", "majority")


def test_constructor_allow_list_beats_environment(
    site: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_dist(site, "fs-majority", {"majority": "fs_majority_plugin"}, GOOD_PLUGIN)
    monkeypatch.setenv("FASTSECURE_PLUGINS", "nothing")
    pm = PluginManager(plugins=["majority"])
    assert "majority" in pm.types("strategy")


def test_an_entry_point_name_claimed_by_two_distributions_loads_neither(site: Path) -> None:
    """Whichever sys.path lists first used to win silently, and describe() named the other."""
    make_dist(site, "fs-majority", {"majority": "fs_majority_plugin"}, GOOD_PLUGIN)
    make_dist(site, "fs-shadow", {"majority": "fs_shadow_plugin"}, GOOD_PLUGIN)
    pm = PluginManager()
    info = {i.name: i for i in pm.describe()}["majority"]
    assert info.status == "failed" and not info.hooks
    assert "fs-majority (fs_majority_plugin)" in (info.error or "")
    assert "fs-shadow (fs_shadow_plugin)" in (info.error or "")
    assert "majority" not in pm.types("strategy")
    with pytest.raises(PluginError, match="claimed by several distributions"):
        pm.get_type("strategy", "majority")


def test_duplicate_type_names_name_both(register_plugin: Any) -> None:
    class A:
        @hookimpl
        def fastsecure_register_strategies(self, register: Register) -> None:
            register("any", object())

    pm = PluginManager(autoload=False)
    with pytest.raises(
        DuplicateTypeNameError, match=r"fastsecure\.builtins .*fastsecure-core.* and a-plugin"
    ):
        pm.register(A(), name="a-plugin")


def test_misspelled_hook_fails_loudly() -> None:
    class Typo:
        @hookimpl
        def fastsecure_register_provider(self, register: Register) -> None:  # missing 's'
            pass

    pm = PluginManager(autoload=False)
    with pytest.raises(PluginError, match="unknown hook fastsecure_register_provider"):
        pm.register(Typo(), name="typo")
    # The app's explicit registration fails loudly, and leaves nothing half-registered.
    assert set(pm.types("strategy")) == {"any", "all"}
    assert "typo" not in {i.name for i in pm.describe()}
    assert pm.unknown_hooks() == []


TYPO_PLUGIN = """
from fastsecure import hookimpl

@hookimpl
def fastsecure_register_provider(register):  # missing 's': no such hook
    register("typo", object)
"""


def test_a_misspelled_hook_skips_that_plugin_only(site: Path) -> None:
    """It used to leave an empty registry: check_pending raised after loading was marked done."""
    make_dist(site, "fs-typo", {"typo": "fs_typo_plugin"}, TYPO_PLUGIN)
    make_dist(site, "fs-majority", {"majority": "fs_majority_plugin"}, GOOD_PLUGIN)
    manager = AuthenticationManager()
    infos = {i.name: i for i in manager.plugins.describe()}
    typo = infos["typo"]
    assert typo.status == "failed" and typo.distribution == "fs-typo"
    assert "unknown hook fastsecure_register_provider" in (typo.error or "")
    assert typo.hooks == [] and typo.types == {}
    assert infos["majority"].status == "loaded"
    assert {"any", "all", "majority"} <= set(manager.plugins.types("strategy"))
    assert manager.plugins.get_type("strategy", "any").plugin == "fastsecure.builtins"
    (line,) = manager.plugins.unknown_hooks()
    assert line.startswith("typo (fs-typo): unknown hook fastsecure_register_provider")
    with pytest.raises(PluginError, match="fs-typo"):
        manager.plugins.get_type("provider", "typo")


def test_a_misspelled_hook_in_an_extra_plugin_is_reported_not_raised() -> None:
    class Typo:
        @hookimpl
        def fastsecure_register_strategie(self, register: Register) -> None:
            pass

    pm = PluginManager(autoload=False, extra_plugins=[Typo()])
    (failed,) = [i for i in pm.describe() if i.status == "failed"]
    assert "fastsecure_register_strategie" in (failed.error or "")
    assert set(pm.types("strategy")) == {"any", "all"}


def test_a_registration_that_fails_halfway_registers_nothing() -> None:
    class Half:
        @hookimpl
        def fastsecure_register_strategies(self, register: Register) -> None:
            from fastsecure.strategies import AnyAuthStrategy

            register("first", AnyAuthStrategy)
            raise RuntimeError("boom")

    pm = PluginManager(autoload=False, extra_plugins=[Half()])
    assert "first" not in pm.types("strategy")
    (failed,) = [i for i in pm.describe() if i.status == "failed"]
    assert failed.error == "RuntimeError: boom" and failed.types == {}


def test_trace_shows_the_registration_calls_that_happen(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Loading calls each registration hook implementation directly: those calls are traced."""
    monkeypatch.setenv("FASTSECURE_TRACE_PLUGINS", "1")
    caplog.set_level("INFO", logger="fastsecure")
    PluginManager(autoload=False).load()
    trace = [r.getMessage() for r in caplog.records if "fastsecure trace" in r.getMessage()]
    assert (
        "fastsecure trace: fastsecure_register_strategies -> fastsecure.builtins "
        "(arguments redacted)"
    ) in trace
    assert "fastsecure trace: fastsecure_register_strategies fastsecure.builtins ok" in trace


def test_no_trace_without_the_setting(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.delenv("FASTSECURE_TRACE_PLUGINS", raising=False)
    caplog.set_level("INFO", logger="fastsecure")
    PluginManager(autoload=False).load()
    assert "fastsecure trace" not in caplog.text


class Observers:
    """Three fastsecure_on_event implementations: sync, async, and one that fails."""

    def __init__(self) -> None:
        self.seen: list[object] = []

    @hookimpl
    def fastsecure_on_event(self, event: object) -> None:
        self.seen.append(("sync", event))


class AsyncObserver:
    def __init__(self, seen: list[object]) -> None:
        self.seen = seen

    @hookimpl
    async def fastsecure_on_event(self, event: object) -> None:
        self.seen.append(("async", event))


class FailingObserver:
    @hookimpl
    def fastsecure_on_event(self, event: object) -> None:
        raise RuntimeError(f"cannot audit {event}")


class FailingAsyncObserver:
    @hookimpl
    async def fastsecure_on_event(self, event: object) -> None:
        raise RuntimeError(f"cannot audit {event}")


@pytest.mark.parametrize("trace", [True, False])
async def test_notify_calls_every_observer_and_traces_without_arguments(
    trace: bool, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    if trace:
        monkeypatch.setenv("FASTSECURE_TRACE_PLUGINS", "1")
    else:
        monkeypatch.delenv("FASTSECURE_TRACE_PLUGINS", raising=False)
    caplog.set_level("INFO", logger="fastsecure")
    sync = Observers()
    pm = PluginManager(
        autoload=False,
        extra_plugins=[FailingObserver(), sync, FailingAsyncObserver(), AsyncObserver(sync.seen)],
    )
    await pm.notify("fastsecure_on_event", event="secret-token-value")
    assert sorted(sync.seen) == [("async", "secret-token-value"), ("sync", "secret-token-value")]
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 2 and all("RuntimeError" in e for e in errors)
    assert "secret-token-value" not in caplog.text  # neither traces nor errors quote it
    traced = [r.getMessage() for r in caplog.records if "fastsecure trace" in r.getMessage()]
    if trace:
        calls = [t for t in traced if t.startswith("fastsecure trace: fastsecure_on_event ->")]
        assert len(calls) == 4  # every implementation that was really called
        assert any(t.endswith("awaited ok") for t in traced)
        assert any("raised RuntimeError" in t for t in traced)
    else:
        assert traced == []


async def test_notify_without_observers_is_a_no_op() -> None:
    await PluginManager(autoload=False).notify("fastsecure_on_event", event="e")


def test_trace_logs_hooks_without_arguments(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("FASTSECURE_TRACE_PLUGINS", "1")
    caplog.set_level("INFO", logger="fastsecure")
    pm = PluginManager(autoload=False)
    pm.load()
    pm.hook.fastsecure_on_event(event="secret-token-value")
    assert "fastsecure_on_event" in caplog.text
    assert "secret-token-value" not in caplog.text


def test_lazy_names_resolve_or_say_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(
        fastsecure._LAZY, "NotInstalledProvider", ("fastsecure_not_installed", "fastsecure-nope")
    )
    with pytest.raises(ImportError, match="pip install fastsecure-nope"):
        fastsecure.NotInstalledProvider  # noqa: B018
    with pytest.raises(AttributeError):
        fastsecure.NoSuchThing  # noqa: B018
    assert "JWTAuthenticationProvider" in dir(fastsecure)


def test_every_hook_is_documented_and_tested() -> None:
    specs = [n for n in dir(hookspecs) if n.startswith("fastsecure_")]
    assert specs
    here = Path(__file__).parent
    tests_text = "".join(p.read_text() for p in here.glob("test_*.py"))
    for name in specs:
        doc = getattr(hookspecs, name).__doc__ or ""
        assert "Added in" in doc and "Args:" in doc, name
        assert name in tests_text, f"{name} has no test"

    # fastsecure_register_providers / _session_stores / _token_stores are exercised here:
    class Everything:
        @hookimpl
        def fastsecure_register_providers(self, register: Register) -> None:
            register("p", object)

        @hookimpl
        def fastsecure_register_session_stores(self, register: Register) -> None:
            register("s", object)

        @hookimpl
        def fastsecure_register_token_stores(self, register: Register) -> None:
            register("t", object)

    pm = PluginManager(autoload=False, extra_plugins=[Everything()])
    assert (
        "p" in pm.types("provider")
        and "s" in pm.types("session_store")
        and "t" in pm.types("token_store")
    )


def run_cli(*args: str, pythonpath: Path | None = None) -> subprocess.CompletedProcess[str]:
    import os

    env = dict(os.environ)
    if pythonpath is not None:
        env["PYTHONPATH"] = str(pythonpath)
    return subprocess.run(
        [sys.executable, "-m", "fastsecure", *args],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )


def test_cli_plugins_lists_and_checks(site: Path) -> None:
    make_dist(site, "fs-majority", {"majority": "fs_majority_plugin"}, GOOD_PLUGIN)
    out = run_cli("plugins", "--json", "--all", pythonpath=site)
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    by_name = {p["name"]: p for p in data["plugins"]}
    assert by_name["majority"]["types"] == {"strategy": ["majority"]}
    assert by_name["fastsecure.builtins"]["status"] == "builtin"
    table = run_cli("plugins", pythonpath=site)
    assert "majority" in table.stdout and "fs-majority 1.0" in table.stdout
    make_dist(site, "fs-broken", {"broken": "fs_broken_missing_module"})
    broken = run_cli("plugins", pythonpath=site)
    assert broken.returncode == 0 and "failed" in broken.stdout and "fs-broken" in broken.stdout
    checked = run_cli("plugins", "--check", pythonpath=site)
    assert checked.returncode == 1


LAZY_PLUGIN = """
from fastsecure import hookimpl

@hookimpl
def fastsecure_register_strategies(register):
    register("lazy", "fs_lazy_impl:Lazy", summary="imported on first use")

@hookimpl
def fastsecure_register_providers(register):
    register("gone", "fs_lazy_missing_module:Provider")
"""

LAZY_IMPL = """
from fastsecure.strategies import AnyAuthStrategy

class Lazy(AnyAuthStrategy):
    name = "lazy"
"""


def test_a_lazy_type_is_imported_on_first_use_only(site: Path) -> None:
    make_dist(site, "fs-lazy", {"lazy": "fs_lazy_plugin"}, LAZY_PLUGIN)
    (site / "fs_lazy_impl.py").write_text(LAZY_IMPL)
    sys.modules.pop("fs_lazy_impl", None)
    pm = PluginManager()
    info = {i.name: i for i in pm.describe()}["lazy"]
    assert info.status == "loaded"
    assert info.types == {"strategy": ["lazy"], "provider": ["gone"]}
    details = info.as_dict()["type_details"]["strategy"]
    assert details == [
        {
            "name": "lazy",
            "reference": "fs_lazy_impl:Lazy",
            "summary": "imported on first use",
            "loaded": False,
        }
    ]
    assert "fs_lazy_impl" not in sys.modules
    assert not pm.types("strategy")["lazy"].loaded

    registration = pm.get_type("strategy", "lazy")
    assert registration.loaded and "fs_lazy_impl" in sys.modules
    assert registration.factory is sys.modules["fs_lazy_impl"].Lazy
    sys.modules.pop("fs_lazy_impl", None)


def test_a_lazy_type_that_cannot_be_imported_fails_closed_like_a_broken_plugin(
    site: Path,
) -> None:
    make_dist(site, "fs-lazy", {"lazy": "fs_lazy_plugin"}, LAZY_PLUGIN)
    pm = PluginManager()
    with pytest.raises(PluginError, match="fs_lazy_missing_module") as caught:
        pm.get_type("provider", "gone")
    assert caught.value.plugin == "lazy" and caught.value.distribution == "fs-lazy"
    assert "comes from plugin 'lazy' (fs-lazy), which failed to load" in str(caught.value)
    info = {i.name: i for i in pm.describe()}["lazy"]
    assert info.status == "failed" and "ModuleNotFoundError" in (info.error or "")
    # Configuration naming it fails at start-up, not on the first request.
    with pytest.raises(PluginError, match="fs-lazy"):
        AuthenticationManager.from_config({"providers": {"gone": {"type": "gone"}}})


def test_describe_resolve_and_cli_check_import_every_lazy_type(site: Path) -> None:
    make_dist(site, "fs-lazy", {"lazy": "fs_lazy_plugin"}, LAZY_PLUGIN)
    (site / "fs_lazy_impl.py").write_text(LAZY_IMPL)
    listed = {i.name: i for i in PluginManager().describe()}["lazy"]
    assert listed.status == "loaded"  # listing imports nothing
    resolved = {i.name: i for i in PluginManager().describe(resolve=True)}["lazy"]
    assert resolved.status == "failed" and "fs_lazy_missing_module" in (resolved.error or "")
    assert run_cli("plugins", pythonpath=site).returncode == 0
    checked = run_cli("plugins", "--check", pythonpath=site)
    assert checked.returncode == 1 and "fs_lazy_missing_module" in checked.stdout
    sys.modules.pop("fs_lazy_impl", None)


def test_a_malformed_lazy_reference_fails_its_plugin_at_registration() -> None:
    class Malformed:
        @hookimpl
        def fastsecure_register_providers(self, register: Register) -> None:
            register("bad", "no colon here")

    pm = PluginManager(autoload=False, extra_plugins=[Malformed()])
    assert "bad" not in pm.types("provider")
    info = next(i for i in pm.describe() if i.status == "failed")
    assert "package.module:attribute" in (info.error or "")
