"""The chat server child (`foundry-desk chat-server ...`): Chainlit, headless, on 127.0.0.1.

Chainlit reads its configuration when it is first imported, from `CHAINLIT_APP_ROOT`. The app
root is a folder of ours in the state folder, refreshed at every start from `resources/chainlit/`
(config.toml, chainlit.md, public/), so a read-only install works. The page Chainlit serves links
fonts and KaTeX CSS from CDNs; `offline_html` removes every link that leaves 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import logging
import os
import re
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from desktop.chat import deferred
from desktop.chat.history import auth_secret, create_schema
from desktop.chat.streaming import PAINTED_PATH, PaintReports
from desktop.config import Settings, coerce
from desktop.loopback import LOOPBACK_NAMES
from desktop.paths import resource_root

SETTINGS_ENV = "FOUNDRY_DESK_CHAT_SETTINGS"
"""The parent's resolved settings, as JSON, for the chat server child."""
_OUTSIDE_LINK = re.compile(r"<link[^>]*href=\"https?://[^\"]*\"[^>]*/?>\s*", re.IGNORECASE)

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class ServerOptions:
    port: int
    status_file: Path
    data_dir: Path
    app_root: Path
    settings: Settings


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
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--status-file", type=Path, required=True)
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--app-root", type=Path, required=True)
    args = parser.parse_args(argv)
    settings = settings_from_env(os.environ.get(SETTINGS_ENV))
    return ServerOptions(args.port, args.status_file, args.data_dir, args.app_root, settings)


def prepare_app_root(app_root: Path, port: int) -> None:
    """Copy Chainlit's config, chainlit.md and public assets from resources/ into `app_root`;
    only pages from the chat's own address may talk to it (CORS, socket origins)."""
    source = resource_root() / "resources" / "chainlit"
    (app_root / ".chainlit").mkdir(parents=True, exist_ok=True)
    origins = json.dumps([f"http://127.0.0.1:{port}", f"http://localhost:{port}"])
    text = (source / "config.toml").read_text(encoding="utf-8")
    text = text.replace('allow_origins = ["http://127.0.0.1"]', f"allow_origins = {origins}")
    (app_root / ".chainlit" / "config.toml").write_text(text, encoding="utf-8")
    shutil.copyfile(source / "chainlit.md", app_root / "chainlit.md")
    shutil.copytree(source / "public", app_root / "public", dirs_exist_ok=True)


def offline_html(render: Callable[[str], str]) -> Callable[[str], str]:
    """Wrap Chainlit's page renderer so the page links nothing outside 127.0.0.1."""

    def render_offline(root_path: str) -> str:
        return _OUTSIDE_LINK.sub("", render(root_path))

    return render_offline


def serve_paint_reports(app: Any, reports: PaintReports) -> None:
    """The page's reports of painted answers (see desktop/chat/streaming.py), routed ahead of
    Chainlit's catch-all page route."""
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    async def painted(request: Request) -> Response:
        reports.report((await request.body())[:64].decode("ascii", "replace"))
        return Response(status_code=204)

    app.router.routes.insert(0, Route(PAINTED_PATH, painted, methods=["POST"]))


def main(argv: Sequence[str]) -> int:
    options = parse_args(argv)
    logging.basicConfig(
        level=options.settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    options.data_dir.mkdir(parents=True, exist_ok=True)
    database = options.data_dir / "history.sqlite3"
    create_schema(database)
    prepare_app_root(options.app_root, options.port)
    os.environ["CHAINLIT_APP_ROOT"] = str(options.app_root)
    os.environ["CHAINLIT_AUTH_SECRET"] = auth_secret(options.data_dir / "auth-secret")
    os.chdir(options.app_root)
    for name in ("LITERAL_API_KEY", "LITERAL_API_URL"):  # Chainlit's cloud: nothing leaves the machine
        os.environ.pop(name, None)

    deferred.defer(deferred.CHAINLIT_UNUSED)
    import chainlit.server as chainlit_server
    import uvicorn
    from chainlit.auth import ensure_jwt_secret
    from chainlit.config import config
    from chainlit.markdown import init_markdown
    from starlette.middleware.trustedhost import TrustedHostMiddleware

    from desktop.chat.app import ChatBackend, install
    from desktop.chat.signin import SignedInPage, chainlit_sign_in

    reports = PaintReports()
    install(ChatBackend(options.settings, options.status_file, database, reports))
    config.run.host = "127.0.0.1"
    config.run.port = options.port
    config.run.headless = True
    chainlit_server.get_html_template = offline_html(chainlit_server.get_html_template)
    sign_in = chainlit_sign_in(chainlit_server._authenticate_user, config.code.header_auth_callback)
    chainlit_server.app.add_middleware(SignedInPage, sign_in=sign_in)
    # The local user is signed in without a password, so only requests addressed to loopback are
    # served: a web page cannot reach the chat through DNS rebinding. (Added last: checked first.)
    chainlit_server.app.add_middleware(TrustedHostMiddleware, allowed_hosts=sorted(LOOPBACK_NAMES))
    serve_paint_reports(chainlit_server.app, reports)
    ensure_jwt_secret()
    init_markdown(config.root)

    server = uvicorn.Server(
        uvicorn.Config(
            chainlit_server.app,
            host="127.0.0.1",
            port=options.port,
            log_level=options.settings.log_level,
            access_log=False,
            ws_per_message_deflate=False,  # loopback: compression only costs time per message
        )
    )
    asyncio.run(server.serve())
    return 0
