"""Run every reliability test and write docs/reliability.md: each fault and bad input, its test.

    python scripts/reliability_report.py [--out docs/reliability] [--kills 20]

Runs, in one pytest session with a JUnit report: the crash-and-resume cycles
(tests/test_crash_safety.py), readers and writers at once (tests/test_concurrency.py), network
faults (tests/test_network_faults.py and the fault tests of tests/test_ingest_http.py), SSRF
(tests/test_ssrf.py), hostile input (tests/test_hostile_input.py) and the property tests
(tests/test_properties.py). Every case is listed with its test, outcome and time; the crash and
concurrency tests add their figures through $NARRATIVES_RELIABILITY_REPORT. Writes OUT.json and
OUT.md. Exits non-zero if any case failed (the document is still written, saying which).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
from report import write_report  # noqa: E402

# (category, test file, what the category proves)
CATEGORIES = [
    (
        "Crash safety",
        "test_crash_safety.py",
        "`ingest` and `tag` killed with SIGKILL at random moments, then re-run",
    ),
    ("Concurrency", "test_concurrency.py", "readers during writes; two runs of one job at once"),
    (
        "Network faults",
        "test_network_faults.py",
        "faults below and at HTTP, each a recorded error, never a hang or a crash",
    ),
    (
        "Network faults (ingest tests)",
        "test_ingest_http.py",
        "the fault cases among the HTTP ingest tests",
    ),
    ("SSRF and local files", "test_ssrf.py", "non-public destinations refused by default"),
    ("Hostile input", "test_hostile_input.py", "bad feeds, JSONL, markup, formulas and dates"),
    ("Property tests", "test_properties.py", "hypothesis: URLs, dates and ticker patterns"),
]
# The fault cases among tests/test_ingest_http.py's feature tests.
INGEST_HTTP_FAULTS = (
    "failed_page",
    "server_errors",
    "429",
    "retry_after",
    "slow",
    "redirect_loop",
    "oversized",
    "gzip_bomb",
    "malformed_feed",
    "serves_no_feed",
    "windows_1252",
    "wrongly_declared",
    "non_html",
    "only_http",
    "private_addresses",
    "dns_failure",
    "paywall",
)


def run_tests(kills: int, junit: Path, figures: Path) -> int:
    files = [str(ROOT / "tests" / name) for _, name, _ in CATEGORIES]
    env = os.environ | {
        "NARRATIVES_RELIABILITY_REPORT": str(figures),
        "NARRATIVES_CRASH_KILLS": str(kills),
    }
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *files]
    command += [f"--junitxml={junit}", "-o", "junit_family=xunit2"]
    return subprocess.run(command, cwd=ROOT, env=env, check=False).returncode


def read_cases(junit: Path) -> list[dict]:
    cases = []
    for case in ET.parse(junit).getroot().iter("testcase"):
        file = case.get("classname", "").rsplit(".", 1)[-1] + ".py"
        name = case.get("name", "")
        outcome = "passed"
        for child in case:
            if child.tag in ("failure", "error"):
                outcome = "failed"
            elif child.tag == "skipped":
                outcome = "skipped"
        if file == "test_ingest_http.py" and not any(k in name for k in INGEST_HTTP_FAULTS):
            continue
        cases.append(
            {"file": file, "test": name, "outcome": outcome, "seconds": float(case.get("time", 0))}
        )
    return cases


def describe(test: str) -> str:
    """A readable case from a test id: the parameter if there is one, else the test's name."""
    name, _, param = test.partition("[")
    words = re.sub(r"^test_", "", name).replace("_", " ")
    return f"{words}: {param.rstrip(']')}" if param else words


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "reliability")
    parser.add_argument("--kills", type=int, default=20, help="SIGKILLs per job (ingest, tag)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="narratives-reliability-") as tmp:
        junit, figures = Path(tmp) / "junit.xml", Path(tmp) / "figures.json"
        status = run_tests(args.kills, junit, figures)
        cases = read_cases(junit)
        measured = json.loads(figures.read_text()) if figures.exists() else {}
    results = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}",
        "run": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "pytest_exit": status,
        "cases": cases,
        "figures": measured,
    }
    write_report(args.out, results, markdown)
    return status


def markdown(results: dict) -> str:
    cases = results["cases"]
    by_file: dict[str, list[dict]] = {}
    for case in cases:
        by_file.setdefault(case["file"], []).append(case)
    failed = [c for c in cases if c["outcome"] == "failed"]
    lines = [
        "# Reliability and security",
        "",
        "`python scripts/reliability_report.py` runs every test below in one pytest session and "
        f"writes this page. Run {results['run']} on {results['machine']}: **{len(cases)} cases, "
        f"{len(failed)} failed**; every test is bounded in time (pytest-timeout), so a hang "
        "fails the run instead of stalling it.",
        "",
        "## The figures",
        "",
    ]
    lines += figure_lines(results, by_file)
    for title, file, proves in CATEGORIES:
        rows = by_file.get(file, [])
        if not rows:
            continue
        passed = sum(c["outcome"] == "passed" for c in rows)
        lines += [
            "",
            f"## {title}",
            "",
            f"{proves}. `tests/{file}`: {passed} of {len(rows)} passed, longest "
            f"{max(c['seconds'] for c in rows):.1f} s.",
            "",
            "| case | test | result | s |",
            "|---|---|---|---:|",
        ]
        for c in rows:
            lines.append(
                f"| {describe(c['test'])} | `{c['test'].split('[')[0]}` | {c['outcome']} "
                f"| {c['seconds']:.1f} |"
            )
    lines.append("")
    return "\n".join(lines)


def figure_lines(results: dict, by_file: dict[str, list[dict]]) -> list[str]:
    lines = []
    crash = results["figures"].get("crash", {})
    for job, r in crash.items():
        lines.append(
            f"- **`{job}`: {r['kills']} SIGKILLs at random moments** over {r['rounds']} "
            f"round(s) ({r['mid_write']} in the middle of writing, {r['no_progress']} "
            f"before storing anything new, {r['after_last_write']} after the last write; "
            f"{r['finished_before_kill']} runs finished before their kill): **{r['lost']} lost, "
            f"{r['duplicated']} duplicated, {r['half_written']} half-written, "
            f"{r['integrity_failures']} failed integrity checks, {r['orphans']} orphaned worker "
            "processes**; after resuming, "
            f"{r['differences_from_uninterrupted']} differences from an uninterrupted run "
            f"({r['seconds']} s)."
        )
    concurrency = results["figures"].get("concurrency", {})
    if "reads_during_writes" in concurrency:
        lines.append(
            f"- **Readers during writes**: {concurrency['reads_during_writes']:,} reads "
            "(Datasette over HTTP and sqlite3) while `ingest` then `tag` wrote: "
            f"**{concurrency['read_failures']} failed or saw a lock**; the slowest answer took "
            f"{concurrency['slowest_http_answer_s']} s with both cores writing."
        )
    if "second_run" in concurrency:
        lines.append(
            "- **Two runs of one job at once** (`ingest`, `tag`): the second is "
            f"{concurrency['second_run']}; two ingests started together store every article once."
        )
    for label, files in (
        ("network fault cases", ("test_network_faults.py", "test_ingest_http.py")),
        ("SSRF cases", ("test_ssrf.py",)),
        (
            "hostile-input test cases (several inputs each: see the table)",
            ("test_hostile_input.py",),
        ),
        ("property tests (and pinned examples)", ("test_properties.py",)),
    ):
        rows = [c for f in files for c in by_file.get(f, [])]
        if rows:
            bad = sum(c["outcome"] == "failed" for c in rows)
            lines.append(
                f"- **{len(rows)} {label}** tried: {bad} failed (a crash, a hang past its "
                f"time limit, or a wrong outcome), longest {max(c['seconds'] for c in rows):.1f} s."
            )
    return lines


if __name__ == "__main__":
    sys.exit(main())
