"""Stands in for Open WebUI (the container's or `open-webui serve`) where the real one (3 GB) cannot
run, behaving as Open WebUI 0.12.4 does in what Foundry Desk relies on:

- settings from the environment: `WEBUI_AUTH` (default on), `ENABLE_SIGNUP` (off when the login
  is), `WEBUI_SECRET_KEY` (else made and kept in `.webui_secret_key` in the working folder, as
  `open-webui serve` does), `JWT_EXPIRES_IN`, `CORS_ALLOW_ORIGIN` (`;`-separated, default `*`),
  `DATA_DIR` (the container's: the volume, given by the fake `docker` as `STANDIN_DATA_DIR`);
- the same FastAPI app shape: Starlette's CORSMiddleware with `allow_credentials=True`, JSON
  errors as `{"detail": ...}`;
- accounts in `webui.db` (SQLite) in the data folder: the first signup is admin and turns signup
  off; later ones are `pending`; with the login off, the first sign-in makes `admin@localhost`
  with the password `admin`, and signup is refused once anyone has an account;
- sessions are HS256 JWTs signed with the secret key, taken from `Authorization: Bearer` or the
  `token` cookie;
- its pages: `/auth` takes a session from a script-readable `token` cookie (as the real sign-in
  page does after an OAuth sign-in), checks it with `GET /api/v1/auths/` (whose answer sets the
  cookie again, HttpOnly), keeps it in localStorage and goes to `/`, which shows who is signed in
  (or goes to `/auth`).

It also writes the environment it was given to --env-file (or $STANDIN_ENV_FILE) for the tests.
Usage: open_webui_standin.py [serve] --host H --port P [--env-file F] [--crash]
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import re
import secrets
import sqlite3
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import jwt
import uvicorn
from fastapi import FastAPI, HTTPException, Request, Response
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import HTMLResponse
from pydantic import BaseModel

INVALID_CRED = "The email or password provided is incorrect. Please check for typos and try logging in again."
ACCESS_PROHIBITED = (
    "You do not have permission to access this resource. Please contact your administrator for assistance."
)
EXISTING_USERS = "You can't turn off authentication because there are existing users."
EMAIL_TAKEN = "Uh-oh! This email is already registered."
INCORRECT_PASSWORD = "The password provided is incorrect. Please check for typos and try again."
DURATION = re.compile(r"^(-?\d+(?:\.\d+)?)(ms|s|m|h|d|w)$")
SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def flag(name: str, default: str) -> bool:
    return os.environ.get(name, default).lower() == "true"


def secret_key() -> str:
    """As `open-webui serve` does: the environment's, else one kept in the working folder."""
    if os.environ.get("WEBUI_SECRET_KEY"):
        return os.environ["WEBUI_SECRET_KEY"]
    key_file = Path.cwd() / ".webui_secret_key"
    if not key_file.exists():
        key_file.write_text(base64.b64encode(secrets.token_bytes(24)).decode())
    return key_file.read_text()


def expiry_s(text: str) -> float | None:
    match = DURATION.match(text)
    if text in ("-1", "0") or not match:
        return None
    return float(match.group(1)) * SECONDS[match.group(2)]


class Users:
    """Accounts in the data folder's `webui.db`, as Open WebUI keeps them there."""

    def __init__(self, data_dir: Path) -> None:
        data_dir.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(data_dir / "webui.db", check_same_thread=False, isolation_level=None)
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS user (id TEXT PRIMARY KEY, email TEXT UNIQUE, name TEXT, "
            "role TEXT, password TEXT, created_at INTEGER)"
        )

    def count(self) -> int:
        return int(self.db.execute("SELECT count(*) FROM user").fetchone()[0])

    def by_email(self, email: str) -> dict[str, Any] | None:
        return self._one("SELECT * FROM user WHERE email = ?", email.lower())

    def by_id(self, user_id: str) -> dict[str, Any] | None:
        return self._one("SELECT * FROM user WHERE id = ?", user_id)

    def add(self, email: str, password: str, name: str, role: str) -> dict[str, Any]:
        user_id = str(uuid.uuid4())
        self.db.execute(
            "INSERT INTO user VALUES (?, ?, ?, ?, ?, ?)",
            (user_id, email.lower(), name, role, hash_password(password), int(time.time())),
        )
        user = self.by_id(user_id)
        assert user is not None
        return user

    def set_password(self, user_id: str, password: str) -> None:
        self.db.execute("UPDATE user SET password = ? WHERE id = ?", (hash_password(password), user_id))

    def authenticate(self, email: str, password: str) -> dict[str, Any] | None:
        user = self.by_email(email)
        return user if user is not None and check_password(password, user["password"]) else None

    def _one(self, query: str, *args: str) -> dict[str, Any] | None:
        cursor = self.db.execute(query, args)
        row = cursor.fetchone()
        return dict(zip([c[0] for c in cursor.description], row, strict=True)) if row else None


def hash_password(password: str, salt: str | None = None) -> str:
    salt = salt or secrets.token_hex(8)
    return f"{salt}${hashlib.pbkdf2_hmac('sha256', password.encode(), salt.encode(), 1000).hex()}"


def check_password(password: str, stored: str) -> bool:
    salt, _, _ = stored.partition("$")
    return secrets.compare_digest(hash_password(password, salt), stored)


class SigninForm(BaseModel):
    email: str
    password: str


class SignupForm(BaseModel):
    name: str
    email: str
    password: str


class UpdatePasswordForm(BaseModel):
    password: str
    new_password: str


AUTH_PAGE = """<!doctype html><meta charset="utf-8"><title>Open WebUI (stand-in): sign in</title>
<body data-state="loading"><p id="state">Signing in…</p>
<script>
function cookie(name) {
  const match = document.cookie.match(new RegExp("(?:^|; )" + name + "=([^;]*)"));
  return match ? decodeURIComponent(match[1]) : null;
}
const session = (token) => fetch("/api/v1/auths/", {headers: {Authorization: `Bearer ${token}`}});
(async () => {
  const config = await (await fetch("/api/config")).json();
  if (localStorage.token && (await session(localStorage.token)).ok) { location.replace("/"); return; }
  const token = cookie("token");
  if (token && (await session(token)).ok) { localStorage.token = token; location.replace("/"); return; }
  if (config.features.auth === false) {
    const answer = await fetch("/api/v1/auths/signin", {method: "POST",
      headers: {"Content-Type": "application/json"}, body: JSON.stringify({email: "", password: ""})});
    if (answer.ok) { localStorage.token = (await answer.json()).token; location.replace("/"); return; }
  }
  document.body.dataset.state = "sign-in form";
  document.getElementById("state").textContent = "Sign in to Open WebUI (email and password)";
})();
</script>"""

HOME_PAGE = """<!doctype html><meta charset="utf-8"><title>Open WebUI (stand-in)</title>
<body data-state="loading"><p id="user">…</p>
<script>
(async () => {
  if (!localStorage.token) { location.replace("/auth"); return; }
  const answer = await fetch("/api/v1/auths/", {headers: {Authorization: `Bearer ${localStorage.token}`}});
  if (!answer.ok) { localStorage.removeItem("token"); location.replace("/auth"); return; }
  const user = await answer.json();
  document.getElementById("user").textContent = `Signed in as ${user.name} (${user.email}, ${user.role})`;
  document.body.dataset.state = "signed in";
})();
</script>"""


def create_app(data_dir: Path) -> FastAPI:  # noqa: PLR0915 (one app, its routes inside)
    auth = flag("WEBUI_AUTH", "True")
    key = secret_key()
    expires = expiry_s(os.environ.get("JWT_EXPIRES_IN", "4w"))
    settings = {"enable_signup": auth and flag("ENABLE_SIGNUP", "True")}
    users = Users(data_dir)
    app = FastAPI()
    origins = os.environ.get("CORS_ALLOW_ORIGIN", "*").split(";")
    if origins == ["*"]:
        print("WARNING: CORS_ALLOW_ORIGIN IS SET TO '*' - NOT RECOMMENDED FOR PRODUCTION.", flush=True)
    app.add_middleware(  # as Open WebUI's main.py has it
        CORSMiddleware,
        allow_origins=origins,
        allow_credentials=True,
        allow_methods=["*"],
        allow_headers=["*"],
    )

    def signed_in(user: dict[str, Any], response: Response) -> dict[str, Any]:
        expires_at = int(time.time() + expires) if expires else None
        claims: dict[str, Any] = {"id": user["id"], **({"exp": expires_at} if expires_at else {})}
        token = jwt.encode(claims, key, algorithm="HS256")
        response.set_cookie("token", token, httponly=True, samesite="lax")
        return {"token": token, "token_type": "Bearer", "expires_at": expires_at, **public(user)}

    def current_user(request: Request) -> dict[str, Any]:
        header = request.headers.get("authorization", "")
        token = header[7:] if header.lower().startswith("bearer ") else request.cookies.get("token")
        if not token:
            raise HTTPException(401, "Not authenticated")
        try:
            claims = jwt.decode(token, key, algorithms=["HS256"])
        except jwt.PyJWTError:
            raise HTTPException(401, "Invalid token") from None
        user = users.by_id(str(claims.get("id")))
        if user is None:
            raise HTTPException(401, "Your session has expired or the token is invalid.")
        return user

    @app.get("/health")
    def health() -> dict[str, bool]:
        return {"status": True}

    @app.get("/api/config")
    def config(request: Request) -> dict[str, Any]:
        try:
            user: dict[str, Any] | None = current_user(request)
        except HTTPException:
            user = None
        features = {"auth": auth, "enable_signup": settings["enable_signup"], "enable_login_form": True}
        onboarding = user is None and users.count() == 0
        return {**({"onboarding": True} if onboarding else {}), "status": True, "name": "Open WebUI",
                "version": "0.12.4 (stand-in)", "features": features}  # fmt: skip

    @app.post("/api/v1/auths/signin")
    def signin(form: SigninForm, response: Response) -> dict[str, Any]:
        if not auth:
            if users.by_email("admin@localhost") is None:
                if users.count():
                    raise HTTPException(400, EXISTING_USERS)
                users.add("admin@localhost", "admin", "User", "admin")
            user = users.authenticate("admin@localhost", "admin")
        else:
            user = users.authenticate(form.email, form.password)
        if user is None:
            raise HTTPException(400, INVALID_CRED)
        return signed_in(user, response)

    @app.post("/api/v1/auths/signup")
    def signup(form: SignupForm, response: Response) -> dict[str, Any]:
        has_users = users.count() > 0
        if has_users and (not auth or not settings["enable_signup"]):
            raise HTTPException(403, ACCESS_PROHIBITED)
        if not (form.email.endswith("@localhost") or re.match(r"[^@]+@[^@]+\.[^@]+", form.email)):
            raise HTTPException(400, "Invalid email format")
        if users.by_email(form.email) is not None:
            raise HTTPException(400, EMAIL_TAKEN)
        if len(form.password.encode()) > 72:
            raise HTTPException(400, "Password too long")
        user = users.add(form.email, form.password, form.name, "pending" if has_users else "admin")
        if not has_users:
            settings["enable_signup"] = False  # Open WebUI turns signup off after its first account
        return signed_in(user, response)

    @app.get("/api/v1/auths/")
    def session(request: Request, response: Response) -> dict[str, Any]:
        user = current_user(request)
        header = request.headers.get("authorization", "")
        token = header[7:] if header.lower().startswith("bearer ") else request.cookies.get("token", "")
        response.set_cookie("token", token, httponly=True, samesite="lax")  # as Open WebUI does here
        return public(user)

    @app.post("/api/v1/auths/update/password")
    def update_password(form: UpdatePasswordForm, request: Request) -> bool:
        user = current_user(request)
        if users.authenticate(user["email"], form.password) is None:
            raise HTTPException(400, INCORRECT_PASSWORD)
        users.set_password(user["id"], form.new_password)
        return True

    @app.get("/api/v1/chats/")
    def chats(request: Request) -> list[dict[str, Any]]:
        current_user(request)
        return [{"id": "chat-1", "title": "The user's own chat"}]

    @app.get("/auth")
    def auth_page() -> HTMLResponse:
        return HTMLResponse(AUTH_PAGE)

    @app.get("/")
    def home_page() -> HTMLResponse:
        return HTMLResponse(HOME_PAGE)

    return app


def public(user: dict[str, Any]) -> dict[str, Any]:
    return {key: user[key] for key in ("id", "email", "name", "role")}


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
    data_dir = Path(os.environ.get("DATA_DIR") or os.environ.get("STANDIN_DATA_DIR") or Path.cwd() / "data")
    uvicorn.run(create_app(data_dir), host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
