"""The suite's own guard: in CI, a test skipped for a missing install fails instead."""

import os
import shutil
import subprocess
import sys
from pathlib import Path


def test_a_skip_for_a_missing_install_fails_in_ci_and_only_there(tmp_path):
    shutil.copy(Path(__file__).with_name("conftest.py"), tmp_path / "conftest.py")
    (tmp_path / "test_x.py").write_text("import pytest\n\ndef test_x():\n"
                                        "    pytest.importorskip('no_such_module_xyz')\n\n"
                                        "def test_gpu():\n    pytest.skip('needs a GPU')\n")

    def run(ci: bool) -> str:
        env = {k: v for k, v in os.environ.items() if k != "CI"} | ({"CI": "true"} if ci else {})
        done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
                              capture_output=True, text=True, env=env, cwd=tmp_path)
        return done.stdout.strip().splitlines()[-1]

    assert run(ci=True).startswith("1 failed, 1 skipped")
    assert run(ci=False).startswith("2 skipped")
