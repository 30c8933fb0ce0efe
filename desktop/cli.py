"""The `foundry-desk` command: parse arguments, read settings, run the chosen mode."""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import sys
import threading
from collections.abc import Sequence
from typing import Any

from desktop import APP_NAME, __version__, compat
from desktop.config import DEFAULT_MODEL, DEFAULT_RUNTIME_PORT, SettingsError, load_settings
from desktop.files import keep_new_files_private
from desktop.paths import AppPaths, is_frozen
from desktop.runtime.status import read_status
from desktop.signals import capture_signals

INTERNAL_MODES = ("runtime-host", "chat-server", "window-host", "files-indexer")
"""Modes in which the app runs its own child processes (same executable, frozen or not)."""
VERBS = {"files": "desktop.documents.cli", "compare": "desktop.compare.cli"}
"""Commands of their own (`foundry-desk files …`), each a module with `main(argv, paths)`."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=APP_NAME,
        description="Private AI chat on your laptop, served by a local Foundry Local runtime.",
        argument_default=argparse.SUPPRESS,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument(
        "--headless", action="store_true", help="run the model runtime only, print its endpoint"
    )
    parser.add_argument(
        "--status", action="store_true", help="print the runtime's and Open WebUI's status and exit"
    )
    parser.add_argument(
        "--background", action="store_true", help="start in the tray without opening the window (at login)"
    )
    parser.add_argument(
        "--quit", action="store_true", help="ask the running Foundry Desk to quit, and wait until it has"
    )
    parser.add_argument(
        "--webgpu",
        action="store_true",
        help="serve the in-browser (WebGPU) demo page and open it in a browser",
    )
    parser.add_argument(
        "--model", help=f"catalog alias or model id to serve (env MODEL; default {DEFAULT_MODEL})"
    )
    parser.add_argument(
        "--model-path", help="a model folder of your own to serve (ONNX Runtime GenAI format)"
    )
    parser.add_argument(
        "--base-url", help="use this OpenAI-compatible endpoint instead of hosting (env BASE_URL)"
    )
    parser.add_argument("--api-key", help="key for --base-url (env API_KEY)")
    parser.add_argument(
        "--runtime-port",
        type=int,
        help=f"pinned port of the built-in runtime (default {DEFAULT_RUNTIME_PORT})",
    )
    parser.add_argument(
        "--no-download", dest="allow_download", action="store_false", help="never download a model"
    )
    parser.add_argument(
        "--offline",
        action="store_true",
        help="no network at all: no catalog, no download, no remote endpoint (env FOUNDRY_DESK_OFFLINE)",
    )
    parser.add_argument(
        "--use-foundry-service", action="store_true", help="attach to a running Foundry Local app service"
    )
    parser.add_argument("--log-level", choices=("debug", "info", "warning", "error"))
    parser.add_argument(
        "--chat",
        action="store_true",
        help="with --headless: also run the chat (Chainlit) on 127.0.0.1 and print its URL",
    )
    parser.add_argument("--chat-port", type=int, help="pinned port of the chat (default 5283)")
    parser.add_argument(
        "--routing",
        choices=("local-only", "local-first", "rules"),
        help="where chat answers are computed (default local-only)",
    )
    parser.add_argument(
        "--open-webui",
        action="store_true",
        help="with --headless: also run Open WebUI (Docker or pip) wired to the endpoint",
    )
    return parser


SETTING_ARGS = ("model", "model_path", "base_url", "api_key", "runtime_port", "allow_download",
                "offline", "use_foundry_service", "log_level", "chat_port", "routing")  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    keep_new_files_private()  # every mode: the app and each of its children
    compat.restore_library_path(os.environ, frozen=is_frozen())
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] in INTERNAL_MODES:
        return run_internal_mode(args[0], args[1:])

    paths = AppPaths.from_environment(os.environ)
    give_output_a_place(paths)
    if args and args[0] in VERBS:
        verb: Any = importlib.import_module(VERBS[args[0]])
        return int(verb.main(args[1:], paths))
    options = vars(build_parser().parse_args(args))
    answered = run_command(options, paths)
    if answered is not None:
        return answered
    cli: dict[str, Any] = {key: options[key] for key in SETTING_ARGS if key in options}
    try:
        loaded = load_settings(paths.settings_file, os.environ, cli)
    except SettingsError as error:
        print(f"{APP_NAME}: {error}", file=sys.stderr)
        return 2
    paths.create()
    logging.basicConfig(
        filename=paths.log_dir / f"{APP_NAME}.log",
        level=loaded.settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    for notice in loaded.notices:
        logging.getLogger(__name__).warning("%s", notice)
        print(f"{APP_NAME}: {notice}", file=sys.stderr)

    if "headless" not in options:
        from desktop.app import run_app

        return run_app(loaded.settings, paths, show_window="background" not in options)  # handles signals

    from desktop.headless import run_headless

    stop, restart = threading.Event(), threading.Event()
    with capture_signals(stop.set, restart.set):
        return run_headless(
            loaded.settings,
            paths,
            sys.stdout,
            stop,
            restart=restart,
            with_open_webui="open_webui" in options,
            with_chat="chat" in options,
        )


def give_output_a_place(paths: AppPaths) -> None:
    """Without a console (the windowed build on Windows, the macOS .app started from Finder) the
    standard streams are None and every print would raise: they go to `console.log` instead."""
    if sys.stdout is not None and sys.stderr is not None:
        return
    paths.log_dir.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(paths.log_dir / "console.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    stream = open(descriptor, "a", encoding="utf-8", buffering=1)  # noqa: SIM115 (for the process's life)
    sys.stdout = sys.stdout or stream
    sys.stderr = sys.stderr or stream


def run_command(options: dict[str, Any], paths: AppPaths) -> int | None:
    """The options that do one thing and exit (`--status`, `--webgpu`, `--quit`): their exit
    code, or None when the app itself is to run."""
    if options.get("status"):
        print(json.dumps(status_report(paths), indent=2))
        return 0
    if options.get("webgpu"):
        return serve_webgpu_page()
    if options.get("quit"):
        return quit_running_app(paths)
    return None


def status_report(paths: AppPaths) -> dict[str, Any]:
    """`--status`: the runtime's published status, and Open WebUI's when the running app started it."""
    from desktop.openwebui.service import recorded_status

    status = read_status(paths.runtime_status_file)
    report: dict[str, Any] = status.to_json() if status else {"state": "not running"}
    open_webui = recorded_status(paths)
    if open_webui is not None:
        report["open_webui"] = open_webui
    return report


def quit_running_app(paths: AppPaths) -> int:
    """`--quit`: the running app (of this user) quits as if Quit were chosen in its tray menu.

    Installers run this before they replace or remove the app's files. 0 once no app runs.
    """
    from desktop.app import QUIT_DEADLINE_S
    from desktop.shell import instance

    quit_ = instance.quit_running(paths.state_dir, QUIT_DEADLINE_S + 5)
    if quit_ is False:
        print(f"{APP_NAME} did not quit; see the logs in {paths.log_dir}.", file=sys.stderr)
        return 1
    print(f"{APP_NAME} is not running." if quit_ is None else f"{APP_NAME} has quit.")
    return 0


def run_internal_mode(mode: str, args: list[str]) -> int:
    """The app's own child processes: the runtime host, the chat server, the window, the indexer."""
    if mode == "chat-server":
        from desktop.chat import server

        return server.main(args)
    if mode == "files-indexer":
        from desktop.documents import indexer

        return indexer.main(args)
    if mode == "window-host":
        from desktop.shell import window

        return window.main(args)
    from desktop.runtime import host

    return host.main(args)


def serve_webgpu_page() -> int:
    """Serve the WebGPU demo on 127.0.0.1 and open it in the user's browser, until interrupted."""
    from desktop.webgpu import BUILD_COMMAND, open_in_browser, serve_webgpu

    stop = threading.Event()
    with capture_signals(stop.set), serve_webgpu() as server:
        print(f"WebGPU demo: {server.url}", flush=True)
        if not server.built:
            print(f"  not built yet: run `{BUILD_COMMAND}` in {server.root}", flush=True)
        open_in_browser(server.url)
        stop.wait()
    return 0
