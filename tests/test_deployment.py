"""The deployment recipe (issue 18): the Dockerfile and compose.yaml say what docs/deployment.md promises.

The build steps themselves run by hand (`python .ci/dockerfile_steps.py`, minutes); here only what the files
say, in seconds, and that the checker refuses what it must.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

REPOSITORY = Path(__file__).resolve().parent.parent


def _checker():
    spec = importlib.util.spec_from_file_location("dockerfile_steps", REPOSITORY / ".ci" / "dockerfile_steps.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["dockerfile_steps"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_the_dockerfile_and_compose_file_pass_the_static_checks():
    checker = _checker()
    stages = checker.parse(REPOSITORY / "Dockerfile")
    assert [s.name for s in stages] == ["build", "1"]
    checker.check_static(stages)
    assert checker.exec_form(stages[-1].last("CMD")) == ["serve", "--host", "0.0.0.0", "--port", "8000"]


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (("USER reason", "USER root"), "must not run as root"),
        (("/readyz", "/healthz"), "HEALTHCHECK must ask /readyz"),
        (('"0.0.0.0", ', ""), "must serve on 0.0.0.0:8000"),
    ],
)
def test_the_static_checks_refuse_a_root_user_a_liveness_only_check_and_a_local_only_server(tmp_path, change, problem):
    checker = _checker()
    dockerfile = (REPOSITORY / "Dockerfile").read_text()
    assert change[0] in dockerfile
    (tmp_path / "Dockerfile").write_text(dockerfile.replace(change[0], change[1]))
    with pytest.raises(SystemExit, match=problem):
        checker.check_static(checker.parse(tmp_path / "Dockerfile"))
