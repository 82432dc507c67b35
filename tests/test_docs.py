"""The documentation site builds in strict mode, and the guide's example runs."""

import os
import pathlib
import re
import subprocess
import sys

import pytest
from conftest import backend_independent

ROOT = pathlib.Path(__file__).resolve().parent.parent


@backend_independent
def test_docs_build_in_strict_mode(tmp_path):
    pytest.importorskip("mkdocstrings")
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    api = (tmp_path / "api" / "index.html").read_text()
    for name in ("convert.convert", "materializing.materialize", "summary", "learn_groups",
                 "count_trainable", "baselines.hashed", "checks.check_conversion",
                 "shared_variant", "register_shared_layer", "BudgetError", "clone_model",
                 "FitWeights", "baselines.low_rank"):
        assert f'id="keras_ssn.{name}"' in api, name


@pytest.mark.parametrize("page", ["README.md", "docs/guide.md"])
def test_the_first_example_runs(page, tmp_path):
    text = (ROOT / page).read_text()
    example = re.search(r"```python\n(.*?)```", text, re.S).group(1)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    result = subprocess.run([sys.executable, "-c", example], cwd=tmp_path,
                            capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "plain.keras").exists()
    if page == "README.md":
        assert (tmp_path / "sharing.png").exists()
        assert result.stdout.splitlines()[0] == "[85002, 8500, 12345]"
        # Two models, 10 epochs each, with training and validation accuracy.
        assert len(re.findall(r"accuracy: [\d.]+ .* val_accuracy: [\d.]+", result.stdout)) == 20
