"""Sum a py-spy profile of apsis-sync (``sync_scale.py --profile DIR``) by component.

py-spy's ``raw`` output is one line per distinct stack, root first (``thread (tid);f (file:line);
...``) and a sample count. Two views, in milliseconds (samples x 1000 / rate) and shares:

* **self**: each sample goes to the component of its innermost frame that names one
  (asyncio, httpx, httpcore/h11/ssl, kiota + msgraph, azure-identity, python-keycloak +
  requests/urllib3, SQLite state, logging, prometheus, our ``sync``/``apsis_core`` code,
  threads/futures, other): where the CPU is spent;
* **within**: each sample counted once for every step of the daemon on its stack (the
  pipeline's ``_before``, ``_record``, Graph reads, token, ...): what a step costs with
  everything it calls.

Threads are split into the event loop (the main thread) and the worker threads (Keycloak,
the state database, ``rt.blocking``). ``--per N`` divides by N (tenants, users).

    .venv/bin/python bench/profile_split.py /tmp/prof/idle-300.txt --rate 250 --per 300
"""

from __future__ import annotations

import argparse
import json
import re
from collections import Counter
from pathlib import Path

FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^()]*?)(?::\d+)?\)$")

# innermost match wins; order matters where paths overlap
COMPONENTS: list[tuple[str, tuple[str, ...]]] = [
    ("logging", ("/logging/", "pythonjsonlogger", "/sync/logs.py", "apsis_core/logs")),
    ("prometheus", ("prometheus_client",)),
    ("state-db (sqlite)", ("/sync/state.py", "sqlite3")),
    ("python-keycloak/requests", ("/keycloak/", "/requests/", "/urllib3/", "apsis_core/keycloak")),
    ("azure-identity/msal", ("/azure/", "/msal/")),
    ("kiota/msgraph", ("kiota", "msgraph")),
    ("httpx", ("/httpx/",)),
    ("httpcore/h11/ssl", ("/httpcore/", "/h11/", "/h2/", "/anyio/", "/sniffio/", "ssl.py", "/certifi/")),
    ("opentelemetry", ("opentelemetry",)),
    ("asyncio", ("/asyncio/", "selectors.py")),
    ("threads/futures", ("threading.py", "/concurrent/", "queue.py")),
    ("json", ("/json/",)),
    ("pydantic", ("pydantic",)),
    ("apsis-sync code", ("/sync/", "apsis_core/")),
]

# (label, function name, file fragment): a sample is "within" a step when a frame matches
STEPS: list[tuple[str, str, str]] = [
    ("cycle: list accounts (managed)", "managed", "sync/accounts.py"),
    ("account: prepare (state read, secret, resume)", "prepare", "sync/pipeline.py"),
    ("account: graph_client (runtime)", "graph_client", "sync/runtime.py"),
    ("account: read_graph", "read_graph", "sync/graph_read.py"),
    ("  graph: delta_pages/_delta_page", "_delta_page", "sync/graph_client.py"),
    ("  graph: token (ensure_token/get_token)", "ensure_token", "sync/graph_client.py"),
    ("  graph: Applications.read", "read", "sync/graph_read.py"),
    ("  graph: kiota request building", "to_get_request_information", "msgraph"),
    ("  graph: request adapter send", "send_primitive_async", "kiota"),
    ("  graph: parse_delta_page", "parse_delta_page", "sync/graph_pages.py"),
    ("account: on_start/planner.start", "start", "sync/pipeline.py"),
    ("account: on_page/planner.page", "page", "sync/pipeline.py"),
    ("account: apply_round (plan, expiry)", "apply_round", "sync/pipeline.py"),
    ("  apply_round: RoundPlan.finish", "finish", "sync/pipeline.py"),
    ("  apply_round: check_expiry", "check_expiry", "sync/pipeline.py"),
    ("account: record (state write)", "record", "sync/pipeline.py"),
    ("account: log 'account synced'", "log", "logging/__init__.py"),
    ("account: metrics", "inc", "prometheus_client"),
    ("stage (SQLite)", "stage", "sync/state.py"),
    ("record_run (SQLite)", "record_run", "sync/state.py"),
    ("Keycloak HTTP (python-keycloak)", "raw_get", "keycloak/"),
    ("asyncio run_in_executor", "run_in_executor", "asyncio/"),
]


def parse(path: Path) -> list[tuple[list[tuple[str, str]], int]]:
    out = []
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = []
        for part in stack.split(";"):
            m = FRAME.match(part)
            frames.append((m.group("func"), m.group("file")) if m else (part, ""))
        out.append((frames, int(count)))
    return out


# innermost frames that are a thread blocked, not computing: py-spy's own idle detection
# misses some (a pool thread blocked in ``SimpleQueue.get`` counts as active)
WAITS: list[tuple[str, str]] = [
    ("_worker", "concurrent/futures/thread.py"),
    ("wait", "threading.py"),
    ("_wait_for_tstate_lock", "threading.py"),
    ("select", "selectors.py"),
    ("recv_into", "ssl.py"),
    ("read", "ssl.py"),
    ("readinto", "socket.py"),
    ("acquire", "threading.py"),
    ("sleep", ""),
]


def is_wait(frames: list[tuple[str, str]]) -> bool:
    func, file = frames[-1]
    return any(func.endswith(f) and frag in file for f, frag in WAITS)


def component(frames: list[tuple[str, str]]) -> str:
    if is_wait(frames):
        return "waiting (blocked thread)"
    for _, file in reversed(frames):
        file = "/" + file  # py-spy gives paths relative to their sys.path entry
        for name, marks in COMPONENTS:
            if any(m in file for m in marks):
                return name
    return "other"


def thread_kind(frames: list[tuple[str, str]]) -> str:
    files = [f for _, f in frames[:4]]
    return "worker threads" if any("threading.py" in f for f in files) else "event loop (main)"


def split(path: Path, rate: int, per: int) -> dict[str, object]:
    stacks = parse(path)
    total = sum(c for _, c in stacks)
    busy = sum(c for frames, c in stacks if not is_wait(frames))
    selfs: Counter[str] = Counter()
    threads: Counter[str] = Counter()
    within: Counter[str] = Counter()
    by_thread_self: dict[str, Counter[str]] = {}
    for frames, count in stacks:
        kind = thread_kind(frames)
        comp = component(frames)
        selfs[comp] += count
        threads[kind] += count
        by_thread_self.setdefault(kind, Counter())[comp] += count
        for label, func, frag in STEPS:
            if any(f.split(".")[-1] == func and frag in file for f, file in frames):
                within[label + (" [waiting]" if is_wait(frames) else "")] += count

    def ms(n: int) -> float:
        return round(n * 1000 / rate / per, 3)

    return {
        "file": str(path),
        "samples": total,
        "ms_total": ms(total) * per,
        "per": per,
        "ms_per_unit": ms(total),
        "ms_busy_per_unit": ms(busy),
        "threads": {k: ms(v) for k, v in threads.most_common()},
        "self": {k: {"ms": ms(v), "share": round(v / total, 3)} for k, v in selfs.most_common()},
        "self_by_thread": {t: {k: ms(v) for k, v in c.most_common()} for t, c in by_thread_self.items()},
        "within": {label: {"ms": ms(n), "share": round(n / total, 3)} for label, n in sorted(within.items())},
    }


def top_leaves(path: Path, n: int) -> list[tuple[str, int]]:
    leaves: Counter[str] = Counter()
    for frames, count in parse(path):
        func, file = frames[-1]
        leaves[f"{func} ({file.split('site-packages/')[-1]})"] += count
    return leaves.most_common(n)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", type=Path, nargs="+")
    parser.add_argument("--rate", type=int, default=250, help="py-spy's sampling rate (sync_scale.py uses 250)")
    parser.add_argument("--per", type=int, default=1, help="divide by this (tenants, users)")
    parser.add_argument("--leaves", type=int, default=0, help="also list the N hottest innermost functions")
    args = parser.parse_args()
    for f in args.files:
        if not f.is_file():
            raise SystemExit(f"error: no profile at {f}")
        out = split(f, args.rate, args.per)
        if args.leaves:
            out["leaves"] = top_leaves(f, args.leaves)
        print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
