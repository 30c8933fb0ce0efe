"""Stands in for Open WebUI (the container's or `open-webui serve`): answers GET /health on the
given host and port, and writes the environment it was given to --env-file for the tests.
Usage: open_webui_standin.py [serve] --host H --port P [--env-file F] [--crash]"""

from __future__ import annotations

import argparse
import json
import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


class Health(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        ok = self.path == "/health"
        body = json.dumps({"status": ok}).encode()
        self.send_response(200 if ok else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("serve", nargs="?")
    parser.add_argument("--host", default="0.0.0.0")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--env-file")
    parser.add_argument("--crash", action="store_true")
    args = parser.parse_args()
    print(f"open-webui stand-in starting on {args.host}:{args.port}", flush=True)
    if args.crash:
        print("ERROR: database is locked", flush=True)
        sys.exit(3)
    env_file = args.env_file or os.environ.get("STANDIN_ENV_FILE")
    if env_file:
        record = {**os.environ, "CWD": str(Path.cwd()), "ARGV": json.dumps(sys.argv[1:])}
        Path(env_file).write_text(json.dumps(record))
    ThreadingHTTPServer((args.host, args.port), Health).serve_forever()


if __name__ == "__main__":
    main()
