"""The figures of one run, as JSON and as a Markdown report, with the invariant verdicts."""

from __future__ import annotations

import json
import statistics
from collections import Counter
from pathlib import Path
from typing import Any

from .model import Model, Sample

WINDOW_GAP = 1.0  # 503s less than this apart belong to one window
MB = 1024 * 1024


def windows_503(samples: list[Sample]) -> list[dict[str, Any]]:
    """Runs of 503 answers (merged when less than :data:`WINDOW_GAP` apart)."""
    spans = sorted((s.started, s.started + s.elapsed, s.op) for s in samples if s.status == 503)
    out: list[dict[str, Any]] = []
    for start, end, op in spans:
        if out and start - out[-1]["end_s"] < WINDOW_GAP:
            window = out[-1]
            window["end_s"] = max(window["end_s"], end)
            window["count"] += 1
            window["ops"][op] = window["ops"].get(op, 0) + 1
        else:
            out.append({"start_s": start, "end_s": end, "count": 1, "ops": {op: 1}})
    for window in out:
        window["duration_s"] = round(window["end_s"] - window["start_s"], 3)
        window["start_s"] = round(window["start_s"], 3)
        window["end_s"] = round(window["end_s"], 3)
    return out


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 4)


def summarize(
    model: Model,
    config: dict[str, Any],
    *,
    store: dict[str, Any],
    sweep: dict[str, Any],
    rss: dict[str, Any],
    store_samples: list[dict[str, Any]],
    tracebacks: int,
    rss_growth_limit_mb: float,
) -> dict[str, Any]:
    """Everything the run showed, and each invariant's verdict."""
    samples = model.samples
    duration = max((s.started + s.elapsed for s in samples), default=0.0)
    by_kind = Counter(v.kind for v in model.violations)
    statuses = Counter(str(s.status) for s in samples)
    windows = windows_503(samples)
    faults = []
    for fault in model.faults:
        after = [s for s in samples if s.status == 503 and s.started >= fault.injected_at]
        cleared = fault.cleared_at
        last_end = max((s.started + s.elapsed for s in after), default=None)
        faults.append(
            {
                "name": fault.name,
                "injected_at_s": round(fault.injected_at, 3),
                "cleared_at_s": None if cleared is None else round(cleared, 3),
                "down_for_s": None if cleared is None else round(cleared - fault.injected_at, 3),
                "first_503_after_s": (
                    round(min(s.started for s in after) - fault.injected_at, 3) if after else None
                ),
                "recovered_after_clear_s": (
                    round(max(0.0, last_end - cleared), 3)
                    if last_end is not None and cleared is not None
                    else (0.0 if cleared is not None else None)
                ),
                "detail": fault.detail,
            }
        )
    latencies = [s.elapsed for s in samples if s.status == 200]
    latencies_503 = [s.elapsed for s in samples if s.status == 503]
    rss_rows = []
    for index, warm in (rss.get("warm") or {}).items():
        end = (rss.get("end") or {}).get(index)
        restarted = (rss.get("restarts") or {}).get(index, 0)
        growth = None if warm is None or end is None or restarted else (end - warm) / MB
        rss_rows.append(
            {
                "process": index,
                "warm_mb": None if warm is None else round(warm / MB, 1),
                "end_mb": None if end is None else round(end / MB, 1),
                "growth_mb": None if growth is None else round(growth, 1),
                "restarted": restarted,
            }
        )
    growths = [r["growth_mb"] for r in rss_rows if r["growth_mb"] is not None]
    logins = sum(1 for s in samples if s.op in ("login_session", "login_jwt") and s.status == 200)
    sampled = [s for s in store_samples if "error" not in s]

    def verdict(
        name: str, kinds: tuple[str, ...], extra: bool = True, note: str = ""
    ) -> dict[str, Any]:
        count = sum(by_kind[k] for k in kinds)
        return {"name": name, "passed": count == 0 and extra, "violations": count, "note": note}

    invariants = [
        verdict(
            "session limit never exceeded (sampled in the store during the run, and at the end)",
            ("session_limit_exceeded",),
            bool(sampled),
            f"{len(sampled)} store samples, "
            f"{len(store_samples) - len(sampled)} failed (store down)",
        ),
        verdict(
            "every logged-out, evicted or revoked credential refused by every process",
            ("revoked_accepted",),
            note=f"{sweep.get('dead_swept', 0)} dead credentials swept on every process at the end",
        ),
        verdict(
            "every refresh-token replay killed its family on every process",
            (),
            model.replays_accepted == 0,
            f"{model.replays} replays: {model.replays_killed_everywhere} answered 401 by every "
            f"process at once, {model.replays_accepted} accepted somewhere (the rest met a 503)",
        ),
        verdict(
            "no 5xx but 503 with Retry-After, and 503 only while a store was down",
            ("server_error", "503_without_fault", "503_without_retry_after"),
            tracebacks == 0,
            f"{tracebacks} tracebacks in the app logs",
        ),
        verdict("a valid credential was never refused", ("wrong_401", "unexpected_status")),
        verdict(
            "no dropped connection or unanswered request but to a killed process",
            ("dropped_connection", "no_answer"),
        ),
        verdict(
            "the store holds exactly the sessions the model holds",
            ("session_count_mismatch", "session_lost", "unindexed_session"),
        ),
        {
            "name": f"RSS per process flat (growth after warm-up within {rss_growth_limit_mb} MB)",
            "passed": all(g <= rss_growth_limit_mb for g in growths),
            "violations": sum(1 for g in growths if g > rss_growth_limit_mb),
            "note": f"growth {min(growths, default=0):.1f}..{max(growths, default=0):.1f} MB",
        },
    ]
    return {
        "config": config,
        "duration_s": round(duration, 3),
        "requests": len(samples),
        "requests_per_s": round(len(samples) / duration, 1) if duration else 0.0,
        "logins": logins,
        "evictions": model.evictions,
        "replays": model.replays,
        "dead_credentials": len(model.dead),
        "status_counts": dict(sorted(statuses.items())),
        "failures_by_status": {k: v for k, v in sorted(statuses.items()) if k != "200"},
        "by_operation": model.counts(),
        "latency_200_s": {
            "median": round(statistics.median(latencies), 4) if latencies else None,
            "p99": _percentile(latencies, 0.99),
            "max": round(max(latencies), 4) if latencies else None,
        },
        "latency_503_s": {
            "median": round(statistics.median(latencies_503), 4) if latencies_503 else None,
            "max": round(max(latencies_503), 4) if latencies_503 else None,
        },
        "windows_503": windows,
        "faults": faults,
        "rss": rss_rows,
        "store_samples": {
            "taken": len(sampled),
            "failed": len(store_samples) - len(sampled),
            "max_sessions_seen": max((s["max"] for s in sampled), default=0),
        },
        "store_check": store,
        "final_sweep": sweep,
        "violations_by_kind": dict(by_kind),
        "lost_by_replication": by_kind["lost_by_replication"],
        "violations": [v.as_dict() for v in model.violations[:200]],
        "invariants": invariants,
        "passed": all(i["passed"] for i in invariants),
    }


def markdown(summary: dict[str, Any]) -> str:
    """The run as a Markdown report."""
    c = summary["config"]
    lines = [
        f"# Soak run: {c['store']}, fault {c['fault']}",
        "",
        f"{c['processes']} app processes, {c['users']} users, concurrency {c['concurrency']}, "
        f"session limit {c['limit']}, store bound {c['timeout']} s, seed {c['seed']}; "
        f"{summary['duration_s']} s.",
        "",
        "| figure | value |",
        "|---|---|",
        f"| requests | {summary['requests']} ({summary['requests_per_s']}/s) |",
        f"| logins (200) | {summary['logins']} |",
        f"| evictions by the session limit | {summary['evictions']} |",
        f"| refresh-token replays | {summary['replays']} |",
        f"| credentials that died (logout, eviction, revocation, replay) | "
        f"{summary['dead_credentials']} |",
        f"| statuses | {_inline(summary['status_counts'])} |",
        f"| latency of 200s, median / p99 / max | {summary['latency_200_s']['median']} / "
        f"{summary['latency_200_s']['p99']} / {summary['latency_200_s']['max']} s |",
        f"| 503 latency, median / max | {summary['latency_503_s']['median']} / "
        f"{summary['latency_503_s']['max']} s |",
        f"| store samples (taken / failed), most sessions seen for a user | "
        f"{summary['store_samples']['taken']} / {summary['store_samples']['failed']}, "
        f"{summary['store_samples']['max_sessions_seen']} |",
        f"| lost by replication (reported, allowed by Redis) | {summary['lost_by_replication']} |",
        "",
    ]
    if summary["faults"]:
        lines += [
            "## Faults",
            "",
            "| fault | injected at | down for | first 503 after | 503s ended after clear |",
            "|---|---|---|---|---|",
        ]
        for f in summary["faults"]:
            lines.append(
                f"| {f['name']} | {f['injected_at_s']} s | {f['down_for_s']} s | "
                f"{f['first_503_after_s']} s | {f['recovered_after_clear_s']} s |"
            )
        lines.append("")
    lines += ["## 503 windows", ""]
    if summary["windows_503"]:
        lines += ["| start | duration | 503s | operations |", "|---|---|---|---|"]
        for w in summary["windows_503"]:
            lines.append(
                f"| {w['start_s']} s | {w['duration_s']} s | {w['count']} | {_inline(w['ops'])} |"
            )
    else:
        lines.append("None.")
    lines += ["", "## RSS per process", "", "| process | warm-up | end | growth | restarted |"]
    lines.append("|---|---|---|---|---|")
    for r in summary["rss"]:
        lines.append(
            f"| {r['process']} | {r['warm_mb']} MB | {r['end_mb']} MB | {r['growth_mb']} MB | "
            f"{r['restarted']} |"
        )
    lines += ["", "## Invariants", "", "| invariant | verdict | violations | note |"]
    lines.append("|---|---|---|---|")
    for i in summary["invariants"]:
        lines.append(
            f"| {i['name']} | {'pass' if i['passed'] else 'FAIL'} | {i['violations']} | "
            f"{i['note']} |"
        )
    if summary["violations"]:
        lines += [
            "",
            "## Violations (first 20)",
            "",
            "| kind | at | op | user | process | status | detail |",
        ]
        lines.append("|---|---|---|---|---|---|---|")
        for v in summary["violations"][:20]:
            lines.append(
                f"| {v['kind']} | {v['at_s']} s | {v['op']} | {v['user']} | {v['process']} | "
                f"{v['status']} | {v['detail']} |"
            )
    return "\n".join(lines) + "\n"


def _inline(counts: dict[str, Any]) -> str:
    return ", ".join(f"{k}: {v}" for k, v in counts.items())


def write(summary: dict[str, Any], directory: Path, name: str) -> tuple[Path, Path]:
    """Write ``<name>.json`` and ``<name>.md`` into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    json_path = directory / f"{name}.json"
    md_path = directory / f"{name}.md"
    json_path.write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    md_path.write_text(markdown(summary))
    return json_path, md_path
