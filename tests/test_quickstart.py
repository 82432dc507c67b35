"""The README's demo runs, starts quietly and leaves what it says it saves."""

import os
import pathlib
import re
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent


def test_quickstart_saves_both_models_and_the_picture(tmp_path):
    out = tmp_path / "demo"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "quickstart.py"), "--epochs", "1",
         "--out", str(out)],
        capture_output=True, text=True, env=env, timeout=900,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert sorted(p.name for p in out.iterdir()) == [
        "materialized.keras", "sharing.png", "small.keras"]
    # One progress line per epoch and model.
    assert len(re.findall(r"^\d+/\d+ - \d+s - ", result.stdout, re.M)) == 2
    assert f"The picture of the sharing is {out / 'sharing.png'}." in result.stdout
    assert "cudart_stub" not in result.stderr and "oneDNN" not in result.stderr
