"""A small real service for supervision tests: it can start slowly, crash, ignore SIGTERM,
or leave a grandchild behind, and answers GET /health on 127.0.0.1 with its pid."""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


class Health(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = json.dumps({"pid": os.getpid()}).encode()
        self.send_response(200 if self.path == "/health" else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def spawn_grandchild(pid_file: str, detach: bool) -> None:
    """A grandchild that would live for a minute; `detach` puts it in a session of its own."""
    grandchild = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)"],
        start_new_session=detach,
    )
    temp = Path(pid_file + ".tmp")
    temp.write_text(str(grandchild.pid))
    temp.replace(pid_file)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--slow-start", type=float, default=0.0)
    parser.add_argument("--crash", action="store_true")
    parser.add_argument("--ignore-term", action="store_true")
    parser.add_argument("--grandchild", help="write the grandchild's pid to this file")
    parser.add_argument("--detach-grandchild", action="store_true")
    args = parser.parse_args()

    print(f"service {os.getpid()} starting", flush=True)
    if args.crash:
        print("boom: cannot open the model file", flush=True)
        sys.exit(3)
    if args.ignore_term:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if args.grandchild:
        spawn_grandchild(args.grandchild, args.detach_grandchild)
    time.sleep(args.slow_start)
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Health)
    print(f"service {os.getpid()} listening on {args.port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
