"""Foundry Desk's own account in Open WebUI, and the part of Open WebUI's API it is used through.

Open WebUI runs with its login on, so that no other program, web page or DNS-rebinding page can
act as the user. The app makes the account itself on Open WebUI's first start (the first account
becomes its admin), keeps it in a file of its own (0600) with the key that signs Open WebUI's
sessions, and signs the user in with it (`door`): nobody types the password.

What this relies on, checked in Open WebUI 0.12.4's source (`open_webui/`):

- `POST /api/v1/auths/signup {name, email, password}`: on an empty database the account is made
  admin and signup is turned off (routers/auths.py `signup`, `signup_handler`); 403 when signup
  is off and someone has an account already.
- `POST /api/v1/auths/signin {email, password}`: `{"token": <JWT>, ...}`; 400 for a wrong email
  or password (routers/auths.py `signin`, the password branch).
- `POST /api/v1/auths/update/password {password, new_password}` with the session's token.
- `GET /api/config` says `"onboarding": true` while nobody has an account (main.py
  `get_app_config`).
- Data made while the login was off (`WEBUI_AUTH=False`) holds one account, `admin@localhost` with
  the password `admin`, made by the first sign-in (routers/auths.py `signin`, the
  `WEBUI_AUTH == False` branch). With the login on, that password would open it to anyone: it is
  replaced by one of the app's own.
"""

from __future__ import annotations

import json
import secrets
import urllib.error
import urllib.request
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from desktop.errors import FoundryDeskError
from desktop.files import read_json, write_json_atomic

ACCOUNT_EMAIL = "foundry-desk@localhost"
"""Open WebUI accepts any address ending in @localhost (utils/misc.py `validate_email_format`)."""
ACCOUNT_NAME = "Foundry Desk"
API_TIMEOUT_S = 30.0
"""Sign-up and sign-in hash a password (bcrypt): slow on a busy laptop, never endless."""


@dataclass(frozen=True)
class Account:
    """An Open WebUI account: what signs in."""

    email: str
    password: str = field(repr=False)


AUTH_OFF_ACCOUNT = Account("admin@localhost", "admin")
"""The account Open WebUI made for itself while its login was off."""


@dataclass(frozen=True)
class Keys:
    """What opens the app's Open WebUI; one 0600 file per place its data lives."""

    secret_key: str = field(repr=False)
    """Signs Open WebUI's sessions (`WEBUI_SECRET_KEY`): the same at every start, so a browser
    stays signed in across restarts, and known to no one else."""
    account: Account | None = None
    """The app's account, once made (or taken over from data made with the login off)."""


class KeyFile:
    """`Keys` in a JSON file only the user can read (0600, written by `mkstemp`)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> Keys:
        """The keys; a new secret key is made (and kept) the first time."""
        data = read_json(self.path)
        data = data if isinstance(data, dict) else {}
        account = None
        if isinstance(data.get("email"), str) and isinstance(data.get("password"), str):
            account = Account(data["email"], data["password"])
        if isinstance(data.get("secret_key"), str) and data["secret_key"]:
            return Keys(data["secret_key"], account)
        return self.save(Keys(secrets.token_urlsafe(32), account))

    def save(self, keys: Keys) -> Keys:
        data: dict[str, str] = {"secret_key": keys.secret_key}
        if keys.account is not None:
            data |= {"email": keys.account.email, "password": keys.account.password}
        write_json_atomic(self.path, data)
        return keys


@dataclass(frozen=True)
class Session:
    """A signed-in session of Open WebUI: its token (a JWT, `JWT_EXPIRES_IN` long)."""

    token: str = field(repr=False)


class ApiError(FoundryDeskError, RuntimeError):
    """Open WebUI answered a request with an error, or did not answer; the message says which."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class AuthApi:
    """Open WebUI's sign-in API at `url` (`http://127.0.0.1:PORT`), as the app uses it."""

    def __init__(self, url: str, timeout_s: float = API_TIMEOUT_S) -> None:
        self.url = url
        self.timeout_s = timeout_s
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: no proxy

    def onboarding(self) -> bool:
        """True while Open WebUI has no account at all."""
        return self._call("GET", "/api/config").get("onboarding") is True

    def sign_in(self, account: Account) -> Session | None:
        """A session for `account`, or None when Open WebUI refuses the email or password."""
        try:
            answer = self._call("POST", "/api/v1/auths/signin", _credentials(account))
        except ApiError as error:
            if error.status in (400, 401, 403):
                return None
            raise
        return _session(answer)

    def sign_up(self, account: Account) -> Session:
        answer = self._call("POST", "/api/v1/auths/signup", {"name": ACCOUNT_NAME, **_credentials(account)})
        if answer.get("role") != "admin":
            raise ApiError(f"Open WebUI made the account {account.email} but not as its admin.")
        return _session(answer)

    def change_password(self, session: Session, old: str, new: str) -> None:
        body = {"password": old, "new_password": new}
        if self._call("POST", "/api/v1/auths/update/password", body, session.token) is not True:
            raise ApiError("Open WebUI did not change the password.")

    def _call(self, method: str, path: str, body: Any = None, token: str | None = None) -> Any:
        headers = {"Content-Type": "application/json"}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.url + path, data=data, headers=headers, method=method)
        try:
            with self._opener.open(request, timeout=self.timeout_s) as response:
                return json.loads(response.read() or b"null")
        except urllib.error.HTTPError as error:
            raise ApiError(f"{method} {path}: {error.code} {_detail(error)}", error.code) from None
        except (OSError, ValueError) as error:
            raise ApiError(f"Open WebUI did not answer {method} {path}: {error}") from None


def _credentials(account: Account) -> dict[str, str]:
    return {"email": account.email, "password": account.password}


def _session(answer: Any) -> Session:
    if not isinstance(answer, dict) or not isinstance(answer.get("token"), str):
        raise ApiError("Open WebUI's answer to a sign-in has no token.")
    return Session(answer["token"])


def _detail(error: urllib.error.HTTPError) -> str:
    try:
        detail = json.loads(error.read()).get("detail")
    except (OSError, ValueError, AttributeError):
        return error.reason or ""
    finally:
        error.close()  # it holds the connection until it is closed
    return str(detail) if detail else str(error.reason or "")


def new_password() -> str:
    """43 characters: far below bcrypt's 72 bytes, which Open WebUI refuses to go past."""
    return secrets.token_urlsafe(32)


@dataclass(frozen=True)
class AccountCheck:
    """Whether the app can sign the user in, and what the user should know."""

    account: Account | None
    """None: the app cannot sign in; `message` says why and what to do."""
    message: str = ""


def ensure_account(api: AuthApi, key_file: KeyFile, data_place: str) -> AccountCheck:
    """Sign in with the kept account, or make it on an empty Open WebUI, or take over the account
    of data made with the login off. The new password is kept before Open WebUI learns it, so a
    crash in between never locks the user out: the next start finds the old state and goes on.
    Raises `ApiError` when Open WebUI does not answer as it should."""
    keys = key_file.load()
    if keys.account is not None and api.sign_in(keys.account) is not None:
        return AccountCheck(keys.account)
    if api.onboarding():
        account = keys.account or Account(ACCOUNT_EMAIL, new_password())
        key_file.save(replace(keys, account=account))
        api.sign_up(account)
        return AccountCheck(account, "Foundry Desk made its own account in Open WebUI.")
    default = api.sign_in(AUTH_OFF_ACCOUNT)
    if default is not None:
        account = Account(AUTH_OFF_ACCOUNT.email, new_password())
        key_file.save(replace(keys, account=account))
        api.change_password(default, AUTH_OFF_ACCOUNT.password, account.password)
        return AccountCheck(
            account,
            f"Open WebUI's data was made with its login off: its account {account.email} now has "
            f"a password of Foundry Desk's own (in {key_file.path}), and your chats are kept.",
        )
    return AccountCheck(None, _not_ours(keys, key_file, data_place))


def _not_ours(keys: Keys, key_file: KeyFile, data_place: str) -> str:
    if keys.account is not None:
        return (
            f"Open WebUI refused Foundry Desk's account {keys.account.email} (kept in {key_file.path}): "
            "was its password changed in Open WebUI? Put the new one in that file, or sign in yourself."
        )
    return (
        f"Open WebUI's data ({data_place}) has accounts that Foundry Desk did not make, so it cannot "
        "sign you in: sign in with your own account, or, to let Foundry Desk make one, move that data "
        "away (its chats go with it) and start Open WebUI again."
    )
