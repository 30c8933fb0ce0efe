"""The chat server child (`foundry-desk chat-server ...`): Chainlit, headless, on 127.0.0.1.

Chainlit reads its configuration when it is first imported, from `CHAINLIT_APP_ROOT`. The app
root is a folder of ours in the state folder, refreshed at every start from `resources/`
(config.toml, chainlit.md, the icon), so a read-only install works.

The page is ours (`resources/chainlit/frontend`, Chainlit's "custom build"): a light client of
Chainlit's own protocol. Chainlit's page re-renders its whole app at every event it gets (30 to
40 ms each on a 2-core laptop, four of them before an answer's first words); ours draws what
changed at most once a frame, and loads nothing but its own files (85 kB instead of 1.3 MB).

Beside Chainlit's routes the server answers the page's setup view (`setup_api`: the first run,
when the runtime has no model), ahead of Chainlit's route that serves the page at any path.
Every request shows the run's secret first (`gate`), which the app gives in the environment.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import html
import json
import logging
import os
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path

from desktop.chat import chainlit_compat
from desktop.chat.history import auth_secret, create_schema
from desktop.chat.trimming import MAX_MESSAGE_CHARS
from desktop.config import Settings, coerce
from desktop.files import write_json_atomic
from desktop.loopback import LOOPBACK_NAMES
from desktop.paths import resource_root
from desktop.ports import listen_loopback
from desktop.runsecret import RunSecret
from desktop.runtime.service import RuntimeClient

SETTINGS_ENV = "FOUNDRY_DESK_CHAT_SETTINGS"
"""The parent's resolved settings, as JSON, for the chat server child."""
FRONTEND_MANIFEST = "assets/vendor/manifest.json"
"""Written by the page's build step (`npm ci && npm run build`), which copies its libraries."""
BUILD_COMMAND = "npm ci --ignore-scripts && npm run build"
MAX_SOCKET_MESSAGE = 6 * MAX_MESSAGE_CHARS + 64_000
"""Socket.IO's limit on one message from the page: room for the longest message the chat takes
however JSON escapes it (6 characters at most for one). At Socket.IO's default, 1,000,000, a
longer message closed the page's connection and was lost without a word."""

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class ServerOptions:
    port: int
    status_file: Path
    data_dir: Path
    app_root: Path
    settings: Settings
    settings_file: Path
    """Where the setup view saves the model folder the user chooses."""
    port_file: Path
    """Where the port listened on is written (`port`, or a free one when it is taken)."""
    files_index: Path | None = None
    """The index of the user's files ("Use my files"), and the app's indexer's status file."""
    files_status: Path | None = None


def settings_to_env(settings: Settings) -> str:
    return json.dumps(
        {k: (str(v) if isinstance(v, Path) else v) for k, v in dataclasses.asdict(settings).items()}
    )


def settings_from_env(text: str | None) -> Settings:
    if not text:
        return Settings()
    return Settings(**{key: coerce(key, value) for key, value in json.loads(text).items()})


def parse_args(argv: Sequence[str]) -> ServerOptions:
    parser = argparse.ArgumentParser(prog="foundry-desk chat-server")
    parser.add_argument("--port", type=int, required=True, help="the pinned port (0: a free one)")
    parser.add_argument("--port-file", type=Path, required=True, help="where the port listened on is written")
    parser.add_argument("--status-file", type=Path, required=True)
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--app-root", type=Path, required=True)
    parser.add_argument("--settings-file", type=Path, required=True)
    parser.add_argument("--files-index", type=Path, help="the index of the user's files")
    parser.add_argument("--files-status", type=Path, help="the app's indexer's status file")
    args = parser.parse_args(argv)
    settings = settings_from_env(os.environ.get(SETTINGS_ENV))
    return ServerOptions(
        args.port,
        args.status_file,
        args.data_dir,
        args.app_root,
        settings,
        args.settings_file,
        args.port_file,
        args.files_index,
        args.files_status,
    )


def frontend_dir() -> Path:
    return resource_root() / "resources" / "chainlit" / "frontend"


def prepare_app_root(app_root: Path, port: int) -> None:
    """Write Chainlit's config, chainlit.md and the page's icon from resources/ into `app_root`,
    with our page as Chainlit's frontend; only pages from the chat's own address may call it
    (CORS). Chainlit's socket does not check origins: there the gate's SameSite=Strict cookie,
    which no other site's page sends, keeps them out."""
    source = resource_root() / "resources" / "chainlit"
    (app_root / ".chainlit").mkdir(parents=True, exist_ok=True)
    origins = [f"http://127.0.0.1:{port}", f"http://localhost:{port}"]
    template = (source / "config.toml").read_text(encoding="utf-8")
    text = chainlit_compat.config_text(template, origins, frontend_dir())
    (app_root / ".chainlit" / "config.toml").write_text(text, encoding="utf-8")
    shutil.copyfile(source / "chainlit.md", app_root / "chainlit.md")
    (app_root / "public").mkdir(exist_ok=True)
    icon = resource_root() / "resources" / "icons" / "app-256.png"
    shutil.copyfile(icon, app_root / "public" / "favicon.png")


def frontend_missing(frontend: Path) -> str | None:
    """Why the page cannot work yet (its build step was not run), or None."""
    if (frontend / FRONTEND_MANIFEST).is_file():
        return None
    return (
        f"The chat page is not built yet ({FRONTEND_MANIFEST} is missing): "
        f"run `{BUILD_COMMAND}` in {frontend}, then start Foundry Desk again."
    )


def not_built_page(reason: str) -> Callable[[str], str]:
    """The page served in place of the chat's (`chainlit_compat.replace_page`): it says how to
    build the chat page."""
    body = html.escape(reason)

    def render(root_path: str) -> str:
        return (
            "<!doctype html><html lang='en'><head><meta charset='utf-8'><title>Foundry Desk</title>"
            "</head><body style='font-family: system-ui, sans-serif; margin: 3rem; max-width: 40rem'>"
            f"<h1>The chat is not ready</h1><p>{body}</p></body></html>"
        )

    return render


def main(argv: Sequence[str]) -> int:
    options = parse_args(argv)
    logging.basicConfig(
        level=options.settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    secret = RunSecret.from_env(os.environ)
    if secret is None:
        log.error("started without the run's secret: start the app instead")
        return 2
    # Bound first: the port is known from here on (the page's CORS origins), and told to the app.
    listening = listen_loopback(options.port)
    port = int(listening.getsockname()[1])
    write_json_atomic(options.port_file, {"pid": os.getpid(), "port": port})
    options.data_dir.mkdir(parents=True, exist_ok=True)
    database = options.data_dir / "history.sqlite3"
    create_schema(database)
    prepare_app_root(options.app_root, port)
    os.environ["CHAINLIT_APP_ROOT"] = str(options.app_root)
    os.environ["CHAINLIT_AUTH_SECRET"] = auth_secret(options.data_dir / "auth-secret")
    os.chdir(options.app_root)
    for name in ("LITERAL_API_KEY", "LITERAL_API_URL"):  # Chainlit's cloud: nothing leaves the machine
        os.environ.pop(name, None)

    chainlit_compat.defer_unused_imports()
    app = chainlit_compat.server_app()  # Chainlit starts: it reads the app root's config
    import uvicorn
    from starlette.middleware.trustedhost import TrustedHostMiddleware

    from desktop.chat.app import install
    from desktop.chat.conversation import ChatBackend
    from desktop.chat.files_api import files_routes
    from desktop.chat.gate import RunSecretGate
    from desktop.chat.setup import ModelSetup
    from desktop.chat.setup_api import setup_routes
    from desktop.chat.signin import SignedInPage
    from desktop.documents.library import FileLibrary
    from desktop.shell.platform import open_path

    files = (
        FileLibrary(options.files_index, options.files_status)
        if options.files_index is not None and options.files_status is not None
        else None
    )
    backend = ChatBackend(options.settings, RuntimeClient(options.status_file, secret), database, files)
    install(backend)
    chainlit_compat.limit_socket_messages(MAX_SOCKET_MESSAGE)
    setup = ModelSetup(options.settings, options.settings_file, backend.local.client)
    routes = setup_routes(setup)
    if files is not None:
        routes += files_routes(files, open_path)
    chainlit_compat.serve_first(routes)
    chainlit_compat.listen_headless("127.0.0.1", port)
    missing = frontend_missing(frontend_dir())
    if missing:
        log.error("%s", missing)
        chainlit_compat.replace_page(not_built_page(missing))
    app.add_middleware(SignedInPage, sign_in=chainlit_compat.header_sign_in())
    # Only the user's own window and browsers (and programs given the run's secret) get further.
    app.add_middleware(RunSecretGate, secret=secret)
    # The local user is signed in without a password, so only requests addressed to loopback are
    # served: a web page cannot reach the chat through DNS rebinding. (Added last: checked first.)
    app.add_middleware(TrustedHostMiddleware, allowed_hosts=sorted(LOOPBACK_NAMES))
    chainlit_compat.finish_start()

    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host="127.0.0.1",
            port=port,
            log_level=options.settings.log_level,
            access_log=False,
            ws_per_message_deflate=False,  # loopback: compression only costs time per message
        )
    )
    asyncio.run(server.serve(sockets=[listening]))
    return 0
