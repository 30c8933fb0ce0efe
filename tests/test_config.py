"""Settings: one precedence order, and a broken settings file never costs the user anything; the
app's folders: the user's alone."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from desktop.config import DEFAULT_MODEL, Settings, SettingsError, load_settings, save_setting
from desktop.paths import AppPaths
from tests.conftest import not_private


def write(path: Path, content: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def backups(folder: Path) -> list[Path]:
    return sorted(folder.glob("settings.toml.broken-*"))


def test_defaults_without_any_source(tmp_path: Path) -> None:
    loaded = load_settings(tmp_path / "settings.toml", environ={}, cli={})
    assert loaded.settings == Settings()
    assert loaded.settings.model == DEFAULT_MODEL and loaded.notices == ()


def test_command_line_beats_environment_beats_file(tmp_path: Path) -> None:
    settings_file = write(
        tmp_path / "settings.toml",
        'model = "from-file"\nruntime_port = 6001\nallow_download = false\nlog_level = "debug"\n',
    )
    environ = {"MODEL": "from-env", "FOUNDRY_DESK_RUNTIME_PORT": "6002", "API_KEY": "k"}
    loaded = load_settings(settings_file, environ=environ, cli={"model": "from-cli"})

    assert loaded.settings.model == "from-cli"
    assert loaded.settings.runtime_port == 6002
    assert loaded.settings.allow_download is False
    assert loaded.settings.log_level == "debug"
    assert loaded.settings.api_key == "k"
    assert loaded.notices == ()


def test_samples_variable_names_and_typed_values(tmp_path: Path) -> None:
    environ = {
        "BASE_URL": "http://127.0.0.1:9/v1",
        "FOUNDRY_DESK_MODEL_PATH": "~/models/mine",
        "FOUNDRY_DESK_USE_FOUNDRY_SERVICE": "yes",
    }
    settings = load_settings(tmp_path / "none.toml", environ=environ).settings
    assert settings.base_url == "http://127.0.0.1:9/v1"
    assert settings.model_path == Path("~/models/mine").expanduser()
    assert settings.use_foundry_service is True


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ('model = "unterminated\n', "is not valid TOML"),
        (b"model = '\xff\xfe'\n", "could not be read"),
    ],
    ids=["bad-toml", "not-utf8"],
)
def test_broken_file_is_kept_aside_and_defaults_are_used(
    tmp_path: Path, content: str | bytes, problem: str
) -> None:
    settings_file = write(tmp_path / "settings.toml", content)
    loaded = load_settings(settings_file, environ={"MODEL": "from-env"})

    assert loaded.settings == Settings(model="from-env")
    [notice] = loaded.notices
    assert problem in notice and "defaults are used" in notice
    [backup] = backups(tmp_path)
    assert backup.read_bytes() == (content if isinstance(content, bytes) else content.encode())
    assert not settings_file.exists()


def test_unreadable_file_is_moved_aside(tmp_path: Path) -> None:
    (tmp_path / "settings.toml").mkdir()  # unreadable as a file, even for root
    loaded = load_settings(tmp_path / "settings.toml", environ={})
    assert loaded.settings == Settings()
    assert "could not be read" in loaded.notices[0]
    assert len(backups(tmp_path)) == 1


def test_bad_values_in_the_file_fall_back_one_by_one(tmp_path: Path) -> None:
    settings_file = write(
        tmp_path / "settings.toml",
        'model = "mine"\nruntime_port = "eighty"\ncolour = "blue"\n',
    )
    loaded = load_settings(settings_file, environ={})
    assert loaded.settings.model == "mine"
    assert loaded.settings.runtime_port == Settings().runtime_port
    assert any("runtime_port" in n and "whole number" in n for n in loaded.notices)
    assert any("unknown setting 'colour'" in n for n in loaded.notices)
    assert settings_file.exists(), "a readable file with one bad value must not be moved"


def test_out_of_range_value_in_the_file_is_ignored_with_a_notice(tmp_path: Path) -> None:
    settings_file = write(tmp_path / "settings.toml", "runtime_port = 70000\n")
    loaded = load_settings(settings_file, environ={})
    assert loaded.settings.runtime_port == Settings().runtime_port
    assert "between 0 and 65535" in loaded.notices[0]


def test_bad_environment_value_names_the_variable(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="FOUNDRY_DESK_RUNTIME_PORT='abc': expected a whole number"):
        load_settings(tmp_path / "settings.toml", environ={"FOUNDRY_DESK_RUNTIME_PORT": "abc"})
    with pytest.raises(SettingsError, match="log_level must be one of"):
        load_settings(tmp_path / "settings.toml", environ={"FOUNDRY_DESK_LOG_LEVEL": "loud"})


def test_a_saved_setting_keeps_the_users_comments_and_other_keys(tmp_path: Path) -> None:
    original = '# My settings\ntemperature = 0.5  # a bit calmer\n\nmodel_path = "/old/model"  # mine\n'
    settings_file = write(tmp_path / "config" / "settings.toml", original)
    save_setting(settings_file, "model_path", tmp_path / "models" / "new one")
    text = settings_file.read_text(encoding="utf-8")
    assert text.startswith("# My settings\ntemperature = 0.5  # a bit calmer\n")
    assert "# mine" in text and "/old/model" not in text
    loaded = load_settings(settings_file, environ={})
    assert loaded.settings.model_path == tmp_path / "models" / "new one" and loaded.notices == ()
    assert loaded.settings.temperature == 0.5
    assert [p.name for p in settings_file.parent.iterdir()] == ["settings.toml"]  # no temporary left

    save_setting(settings_file, "model_path", None)
    assert load_settings(settings_file, environ={}).settings.model_path is None
    fresh = tmp_path / "new" / "settings.toml"
    save_setting(fresh, "allow_download", False)
    assert load_settings(fresh, environ={}).settings.allow_download is False


def test_a_setting_is_not_saved_into_a_broken_file_or_with_a_bad_value(tmp_path: Path) -> None:
    broken = write(tmp_path / "settings.toml", "model = [unclosed\n")
    with pytest.raises(SettingsError, match="not valid TOML"):
        save_setting(broken, "model_path", "/some/folder")
    assert broken.read_text() == "model = [unclosed\n"
    with pytest.raises(SettingsError):
        save_setting(tmp_path / "other.toml", "chat_port", 70000)
    assert not (tmp_path / "other.toml").exists()


def test_the_apps_folders_are_the_users_alone_also_those_an_older_version_left_open(tmp_path: Path) -> None:
    paths = AppPaths.under(tmp_path / "home")
    history = paths.data_dir / "chat" / "history.sqlite3"
    history.parent.mkdir(parents=True, mode=0o755)
    history.write_text("chats")
    history.chmod(0o644)
    paths.log_dir.mkdir(mode=0o755)
    elsewhere = tmp_path / "shared.txt"  # a link to a file of someone else's: left as it is
    elsewhere.write_text("not ours")
    elsewhere.chmod(0o644)
    (paths.data_dir / "link").symlink_to(elsewhere)

    paths.create()

    assert not_private(tmp_path / "home") == []
    assert {oct(stat.S_IMODE(p.stat().st_mode)) for p in (history, paths.log_dir, paths.state_dir)} == {
        "0o600",
        "0o700",
    }
    assert stat.S_IMODE(elsewhere.stat().st_mode) == 0o644
    assert history.read_text() == "chats"
