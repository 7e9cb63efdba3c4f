"""Check the Dockerfile where no container engine is available (this CI has none: no docker daemon, podman or buildah).

    python .ci/dockerfile_steps.py --static     # what the files say (seconds; tests/test_deployment.py runs it)
    python .ci/dockerfile_steps.py              # and the build steps, as a plain script (minutes; by hand)

Checked:
- statically: the build stage installs torch 2.13.0 from the CPU index and builds the model into the image; the
  final stage runs as a non-root user, its HEALTHCHECK asks /readyz, its command serves on the exposed port;
  compose.yaml has the service over PostgreSQL (acknowledged once committed) and a Ray head;
- by running them: the build stage's RUN steps, with the build context the Dockerfile's COPY lines make, in a
  fresh folder standing for the image's root (its absolute paths are mapped under it); then the image's
  ENTRYPOINT + CMD are started from what the steps built, with the model cache read-only (a container never
  writes it) and nothing but the final stage's ENV, and the HEALTHCHECK's own command must pass.
Not checked: the base image (python:3.11-slim-bookworm here is this machine's Python 3.11, not Debian's
image), `useradd` and file ownership, `COPY --from` itself, the CPU index (pip's configuration here serves the
same CPU wheel, TORCH_INDEX_URL=''), and compose's wiring at run time.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parent.parent


@dataclass
class Stage:
    name: str
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [argument for k, argument in self.instructions if k == keyword]

    def last(self, keyword: str) -> str:
        found = self.all(keyword)
        if not found:
            raise SystemExit(f"Dockerfile: stage {self.name!r} has no {keyword}")
        return found[-1]


def parse(path: Path) -> list[Stage]:
    """The stages of a Dockerfile, each a list of (INSTRUCTION, arguments), continuation lines joined."""
    stages: list[Stage] = []
    joined = re.sub(r"\\\n", " ", path.read_text())
    for line in joined.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, argument = line.partition(" ")
        keyword, argument = keyword.upper(), argument.strip()
        if keyword == "FROM":
            stages.append(Stage(argument.split(" AS ")[-1].strip() if " AS " in argument else str(len(stages))))
        elif not stages:
            raise SystemExit(f"Dockerfile: {keyword} before FROM")
        stages[-1].instructions.append((keyword, argument))
    return stages


def exec_form(argument: str) -> list[str]:
    return json.loads(argument) if argument.startswith("[") else ["/bin/sh", "-c", argument]


def check_static(stages: list[Stage]) -> None:
    build, final = stages[0], stages[-1]
    steps = " ".join(build.all("RUN"))
    script = (REPOSITORY / "docker" / "build.sh").read_text()
    problems = []
    if "torch==2.13.0" not in script or "download.pytorch.org/whl/cpu" not in " ".join(build.all("ARG")) + script:
        problems.append("the build must install torch==2.13.0 from PyTorch's CPU index")
    if "docker/build.sh" not in steps or "build_me5" not in script:
        problems.append("the build must run docker/build.sh, which builds the model into the image")
    user = final.last("USER")
    if user in ("root", "0") or user.startswith("0:"):
        problems.append(f"the image runs as {user!r}; it must not run as root")
    health = final.last("HEALTHCHECK")
    if "/readyz" not in health or "CMD" not in health:
        problems.append("the HEALTHCHECK must ask /readyz")
    port = final.last("EXPOSE")
    command = exec_form(final.last("ENTRYPOINT")) + exec_form(final.last("CMD"))
    if "serve" not in command or port not in command or "0.0.0.0" not in command:
        problems.append(f"the command {command} must serve on 0.0.0.0:{port}")
    import yaml

    compose = yaml.safe_load((REPOSITORY / "compose.yaml").read_text())
    services = compose.get("services", {})
    if not {"service", "postgres", "ray-head"} <= set(services):
        problems.append(f"compose.yaml must have service, postgres and ray-head; it has {sorted(services)}")
    else:
        environment = services["service"].get("environment", {})
        if not str(environment.get("REASON_CLASSIFIER_SERVICE_STORE", "")).startswith("postgresql://"):
            problems.append("compose.yaml: the service must store in PostgreSQL")
        if environment.get("REASON_CLASSIFIER_SERVICE_STORE_ACKNOWLEDGE") != "committed":
            problems.append("compose.yaml: replicas must acknowledge once committed")
        if "ray" not in " ".join(services["ray-head"].get("entrypoint", [])):
            problems.append("compose.yaml: ray-head must run `ray start --head`")
    if problems:
        raise SystemExit("Dockerfile / compose.yaml:\n- " + "\n- ".join(problems))
    print("static: torch 2.13.0 CPU, model built in, non-root user, HEALTHCHECK on /readyz, compose: ok")


def run_steps(stages: list[Stage], root: Path, torch_index_url: str) -> dict[str, str]:
    """Run the build stage's RUN steps under `root`; returns the paths mapped (image path -> folder here)."""
    build, final = stages[0], stages[-1]
    workdir = build.last("WORKDIR")
    mapped = {workdir: str(root / workdir.lstrip("/"))}
    for argument in final.all("COPY"):
        parts = shlex.split(argument)
        if parts and parts[0].startswith("--from="):
            mapped[parts[-1]] = str(root / parts[-1].lstrip("/"))
    arguments = {}
    for argument in build.all("ARG"):
        name, _, default = argument.partition("=")
        arguments[name] = default
    arguments["TORCH_INDEX_URL"] = torch_index_url
    context = Path(mapped[workdir])
    context.mkdir(parents=True)
    for argument in build.all("COPY"):
        *sources, destination = shlex.split(argument)
        for source in sources:
            target = context / destination / Path(source).name if destination.endswith("/") else context / destination
            target.parent.mkdir(parents=True, exist_ok=True)
            if (REPOSITORY / source).is_dir():
                shutil.copytree(REPOSITORY / source, target, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                shutil.copy2(REPOSITORY / source, target)
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("REASON_CLASSIFIER", "VIRTUAL_ENV"))}
    environment["PATH"] = os.pathsep.join(p for p in environment["PATH"].split(os.pathsep) if "venv" not in p)
    for step in build.all("RUN"):
        for image_path, here in sorted(mapped.items(), key=lambda item: -len(item[0])):
            step = step.replace(image_path, here)
        print(f"RUN {step}", flush=True)
        subprocess.run(["/bin/sh", "-c", step], cwd=context, env={**environment, **arguments}, check=True)
    return mapped


def start_and_check_health(stages: list[Stage], root: Path, mapped: dict[str, str]) -> None:
    final = stages[-1]
    port = final.last("EXPOSE")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free = str(probe.getsockname()[1])

    def here(text: str) -> str:
        for image_path, folder in sorted(mapped.items(), key=lambda item: -len(item[0])):
            text = text.replace(image_path, folder)
        return text.replace(port, free)

    environment = {"HOME": str(root), "LANG": "C.UTF-8"}
    for argument in final.all("ENV"):
        for name, value in re.findall(r"(\w+)=(\S+)", argument):
            environment[name] = here(value.replace("$PATH", "/usr/local/bin:/usr/bin:/bin"))
    for name in ("REASON_CLASSIFIER_SERVICE_STORE_SPOOL",):
        if name in environment:
            environment[name] = str(root / environment[name].lstrip("/"))
    cache = Path(environment["REASON_CLASSIFIER_CACHE"])
    subprocess.run(["chmod", "-R", "a-w", str(cache)], check=True)  # a container never writes its model cache
    command = [here(part) for part in exec_form(final.last("ENTRYPOINT")) + exec_form(final.last("CMD"))]
    command[0] = shutil.which(command[0], path=environment["PATH"]) or command[0]
    health = exec_form(here(final.last("HEALTHCHECK").split("CMD", 1)[1].strip()))
    health[0] = shutil.which(health[0], path=environment["PATH"]) or health[0]
    print(f"CMD {' '.join(command)}", flush=True)
    server = subprocess.Popen(command, cwd=root, env=environment, start_new_session=True)
    try:
        deadline = time.monotonic() + 300
        while subprocess.run(health, env=environment, capture_output=True).returncode != 0:
            if server.poll() is not None:
                raise SystemExit(f"the image's command exited ({server.returncode}) before it was healthy")
            if time.monotonic() > deadline:
                raise SystemExit("the HEALTHCHECK did not pass within 300 s")
            time.sleep(2)
        print("HEALTHCHECK passed: the served model is ready, from a read-only cache", flush=True)
    finally:
        server.terminate()
        server.wait(60)
        subprocess.run(["chmod", "-R", "u+w", str(cache)], check=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--static", action="store_true", help="only what the files say, without building")
    parser.add_argument("--torch-index-url", default="", help="'' = pip's own configuration (this machine's)")
    arguments = parser.parse_args()
    stages = parse(REPOSITORY / "Dockerfile")
    check_static(stages)
    if arguments.static:
        return
    root = Path(tempfile.mkdtemp(prefix="rc-image-"))
    try:
        started = time.monotonic()
        mapped = run_steps(stages, root, arguments.torch_index_url)
        print(f"build steps: {time.monotonic() - started:.0f} s", flush=True)
        start_and_check_health(stages, root, mapped)
    finally:
        subprocess.run(["chmod", "-R", "u+w", str(root)], check=False)
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
