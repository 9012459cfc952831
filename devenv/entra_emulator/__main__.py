"""Run the emulator as its own process.

    python -m devenv.entra_emulator --host 127.0.0.1 --port 8443 --state-dir DIR [--seed seed.json]

Prints one JSON line (url, authority, graph_base_url, ca_bundle, state_dir, seeded tenants) and
serves until SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

from .server import EntraEmulator


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m devenv.entra_emulator",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8443, help="port (default 8443; 0 picks one)")
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=None,
        help="keeps the CA, keys and state.json across restarts (default: a temp dir)",
    )
    parser.add_argument(
        "--hostname", default="localhost", help="host name in URLs and the server certificate (default localhost)"
    )
    parser.add_argument("--seed", type=Path, default=None, help="seed JSON (see README); idempotent")
    parser.add_argument("--verbose", action="store_true", help="log every request to stderr")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING, stream=sys.stderr)

    emulator = EntraEmulator(args.host, args.port, args.state_dir, hostname=args.hostname)
    try:
        seeded = emulator.load_seed(args.seed) if args.seed else {"tenants": []}
    except (OSError, ValueError, KeyError, LookupError) as exc:
        print(f"error: cannot apply seed {args.seed}: {exc}", file=sys.stderr)
        return 2
    try:
        emulator.start()
    except OSError as exc:
        print(f"error: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 2

    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    print(
        json.dumps(
            {
                "url": emulator.url,
                "authority": emulator.authority,
                "graph_base_url": emulator.graph_base_url,
                "ca_bundle": str(emulator.ca_bundle),
                "state_dir": str(emulator.state_dir),
                "tenants": seeded["tenants"],
            }
        ),
        flush=True,
    )
    while not stop.wait(0.5):
        pass
    emulator.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
