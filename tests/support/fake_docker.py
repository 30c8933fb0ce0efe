"""A stand-in `docker` CLI for machines without a Docker engine (like CI).

It answers the subcommands Foundry Desk uses with the real CLI's exit codes and output formats,
and "runs" a container by starting tests/support/open_webui_standin.py on the published port (or,
with --network host, on the PORT from the environment). `--env NAME` without a value takes it from
the CLI's own environment, as Docker does. A named volume is a folder in `volumes/` (made by the
first `run` that mounts it; `docker volume inspect` / `rm` know it), given to the stand-in as its
data folder. Every call's arguments are appended to `calls.jsonl` in $FAKE_DOCKER_STATE.
$FAKE_DOCKER_MODE: `ok` (default), `daemon-down`, `no-image`, or `crash` (the container exits at
once).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

STATE = Path(os.environ["FAKE_DOCKER_STATE"])
MODE = os.environ.get("FAKE_DOCKER_MODE", "ok")
STANDIN = Path(__file__).with_name("open_webui_standin.py")
DAEMON_DOWN = (
    "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?"
)


def fail(message: str, code: int = 1) -> None:
    print(message, file=sys.stderr)
    sys.exit(code)


def containers() -> dict[str, Any]:
    path = STATE / "containers.json"
    return json.loads(path.read_text()) if path.exists() else {}


def save(data: dict[str, Any]) -> None:
    (STATE / "containers.json").write_text(json.dumps(data))


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    try:  # a zombie is not running
        return "Z" not in Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except OSError:
        return False


def status_of(container: dict[str, Any]) -> str:
    if container["status"] == "running" and not alive(container["pid"]):
        return "exited"
    return str(container["status"])


def parse_run(args: list[str]) -> dict[str, Any]:
    spec: dict[str, Any] = {"env": {}, "labels": {}, "publish": [], "volumes": [], "network": "bridge"}
    i = 0
    while i < len(args):
        flag = args[i]
        if flag == "-d":
            i += 1
            continue
        if not flag.startswith("-"):
            spec["image"] = flag
            spec["command"] = args[i + 1 :]
            break
        value = args[i + 1]
        if flag == "--name":
            spec["name"] = value
        elif flag in ("--env", "-e"):
            key, given, val = value.partition("=")
            if given or key in os.environ:
                spec["env"][key] = val if given else os.environ[key]
        elif flag == "--label":
            key, _, val = value.partition("=")
            spec["labels"][key] = val
        elif flag in ("--publish", "-p"):
            spec["publish"].append(value)
        elif flag in ("--volume", "-v"):
            spec["volumes"].append(value)
        elif flag == "--network":
            spec["network"] = value
        elif flag == "--add-host":
            spec.setdefault("add_hosts", []).append(value)
        else:
            fail(f"unknown flag: {flag}\nSee 'docker run --help'.", 125)
        i += 2
    return spec


def run(args: list[str]) -> None:
    if MODE == "daemon-down":
        fail(f"docker: {DAEMON_DOWN}", 125)
    spec = parse_run(args)
    data = containers()
    name = spec["name"]
    if name in data:
        fail(
            f'docker: Error response from daemon: Conflict. The container name "/{name}" is already in use '
            f'by container "{data[name]["id"]}". You have to remove (or rename) that container to be able to '
            "reuse that name.",
            125,
        )
    if spec["network"] == "host":
        port = int(spec["env"]["PORT"])
        host = spec["env"].get("HOST", "0.0.0.0")
    else:
        host, port_text, _ = spec["publish"][0].split(":")
        port = int(port_text)
    log = STATE / f"{name}.log"
    env_file = STATE / f"{name}.env.json"
    folder = volume_dir(spec)
    mounted = {"STANDIN_DATA_DIR": str(folder)} if folder else {}
    root = STATE / f"{name}.root"
    root.mkdir(exist_ok=True)
    with open(log, "ab") as stream:
        standin = subprocess.Popen(
            [sys.executable, str(STANDIN), "--host", host, "--port", str(port), "--env-file", str(env_file)]
            + (["--crash"] if MODE == "crash" else []),
            stdout=stream,
            stderr=subprocess.STDOUT,
            env={"PATH": os.environ["PATH"], **spec["env"], **mounted},  # a container sees only its own env
            cwd=root,  # and its own files
            start_new_session=True,  # like a container: not a child of the CLI call
        )
    container_id = secrets.token_hex(32)
    data[name] = {"id": container_id, "pid": standin.pid, "status": "running", "spec": spec}
    save(data)
    print(container_id)


def volume_dir(spec: dict[str, Any]) -> Path | None:
    """The folder of the named volume mounted on Open WebUI's data folder, made on first use."""
    mounts: list[str] = spec["volumes"]
    for mount in mounts:
        source, _, target = mount.partition(":")
        if target == "/app/backend/data" and "/" not in source:
            folder = STATE / "volumes" / source
            folder.mkdir(parents=True, exist_ok=True)
            return folder
    return None


def volume(args: list[str]) -> None:
    if MODE == "daemon-down":
        fail(DAEMON_DOWN)
    name = args[-1]
    folder = STATE / "volumes" / name
    if not folder.is_dir():
        if args[0] == "inspect":
            print("[]")
        fail(f"Error response from daemon: get {name}: no such volume")
    if args[0] == "inspect":
        mountpoint = f"/var/lib/docker/volumes/{name}/_data"
        print(json.dumps([{"Name": name, "Driver": "local", "Mountpoint": mountpoint}]))
    elif args[0] == "rm":
        shutil.rmtree(folder)
        print(name)


def inspect(args: list[str]) -> None:
    names = [a for a in args if not a.startswith("-") and a != "container"]
    data = containers()
    if MODE == "daemon-down":
        fail(DAEMON_DOWN)
    found = []
    for name in names:
        if name not in data:
            print("[]")
            fail(f"Error: No such container: {name}")
        container = data[name]
        status = status_of(container)
        found.append(
            {
                "Id": container["id"],
                "Name": f"/{name}",
                "State": {
                    "Status": status,
                    "Running": status == "running",
                    "ExitCode": 0 if status == "running" else 3,
                },
                "Config": {"Labels": container["spec"]["labels"], "Image": container["spec"]["image"]},
            }
        )
    print(json.dumps(found, indent=4))


def stop(args: list[str]) -> None:
    name = args[-1]
    data = containers()
    if name not in data:
        fail(f"Error response from daemon: No such container: {name}")
    pid = data[name]["pid"]
    if alive(pid):
        os.kill(pid, signal.SIGTERM)
        for _ in range(100):
            if not alive(pid):
                break
            time.sleep(0.05)
        else:
            os.kill(pid, signal.SIGKILL)
    data[name]["status"] = "exited"
    save(data)
    print(name)


def rm(args: list[str]) -> None:
    name = args[-1]
    data = containers()
    if name not in data:
        fail(f"Error response from daemon: No such container: {name}")
    if status_of(data[name]) == "running":
        if "--force" not in args and "-f" not in args:
            fail(
                f'Error response from daemon: cannot remove container "/{name}": container is running: '
                "stop the container before removing or force remove"
            )
        os.kill(data[name]["pid"], signal.SIGKILL)
    del data[name]
    save(data)
    print(name)


def logs(args: list[str]) -> None:
    name = args[-1]
    if name not in containers():
        fail(f"Error response from daemon: No such container: {name}")
    tail = int(args[args.index("--tail") + 1]) if "--tail" in args else None
    lines = (STATE / f"{name}.log").read_text().splitlines()
    print("\n".join(lines[-tail:] if tail else lines))


def version(args: list[str]) -> None:
    if MODE == "daemon-down":
        print("Client:\n Version:    27.3.1")
        fail(DAEMON_DOWN)
    print("27.3.1")


def image(args: list[str]) -> None:
    if MODE == "daemon-down":
        fail(DAEMON_DOWN)
    if MODE == "no-image":
        print("[]")
        fail(f"Error response from daemon: No such image: {args[1]}")
    print(json.dumps([{"Id": "sha256:" + "0" * 64, "RepoTags": [args[1]]}]))


COMMANDS = {"version": version, "image": image, "volume": volume, "run": run, "inspect": inspect,
            "stop": stop, "rm": rm, "logs": logs}  # fmt: skip


def main() -> None:
    args = sys.argv[1:]
    STATE.mkdir(parents=True, exist_ok=True)
    with open(STATE / "calls.jsonl", "a") as calls:
        calls.write(json.dumps(args) + "\n")
    command = COMMANDS.get(args[0] if args else "")
    if command is None:
        fail(f"docker: '{' '.join(args[:1])}' is not a docker command.\nSee 'docker --help'")
    else:
        command(args[1:])


if __name__ == "__main__":
    main()
