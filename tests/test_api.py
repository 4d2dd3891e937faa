"""sd_core.api: the worked example of docs/api.md runs as it stands; plain DataLoaders batch."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest
import torch

from conftest import ROOT
from layout_data import math_like, parkinsons_like

API_DOC = ROOT / "docs" / "api.md"


def doc_example() -> str:
    blocks = re.findall(r"```python\n(.*?)```", API_DOC.read_text(), re.S)
    assert len(blocks) == 1, "docs/api.md holds one python example"
    return blocks[0]


def test_the_worked_example_runs(tmp_path):
    math_like(tmp_path / "data" / "processed" / "math")
    script = tmp_path / "example.py"
    script.write_text(doc_example())
    env = {k: v for k, v in os.environ.items() if k not in ("SD_CONFIG", "SD_LOAD_PLUGINS")}
    env["OMP_NUM_THREADS"] = "1"
    res = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, cwd=tmp_path,
                         env=env, timeout=600)
    assert res.returncode == 0, res.stdout + res.stderr[-3000:]
    out = res.stdout
    assert "[('math_activity', 'classification', ('0', '1')), ('gender', 'classification', ('F', 'M'))]" in out
    assert "48 training images of 32 pixels;" in out
    assert out.count("step ") >= 4 and "val accuracy after 4 steps:" in out
    assert "6 steps; best checkpoint step-00000" in out
    assert "['math_activity', 'gender']" in out
    run = tmp_path / "runs" / "notebook"
    assert (run / "metrics.json").is_file() and (run / "config.toml").is_file()
    info = json.loads((run / "run.json").read_text())
    assert info["total_steps"] == 6 and [t["name"] for t in info["tasks"]] == ["math_activity", "gender"]


@pytest.fixture(scope="module")
def processed(tmp_path_factory):
    root = tmp_path_factory.mktemp("api")
    math_like(root / "math")
    parkinsons_like(root / "parkinsons")
    return root


def test_plain_dataloader_batches_samples(processed):
    from sd_core import api
    from sd_core.data.images import Batch, batch_collate

    ds = api.build_dataset(dataset_name="math", split="train", path=processed / "math",
                           tasks=["math_activity", "gender", "age"])
    loader = torch.utils.data.DataLoader(ds, batch_size=5, shuffle=False)
    batch = next(iter(loader))
    assert batch["image"].shape == (5, 1, 32, 32)
    assert set(batch["targets"]) == {"math_activity", "gender", "age"}
    assert batch["targets"]["math_activity"].tolist() == [int(r["doing_math"]) for r in ds.rows[:5]]
    assert batch["targets"]["age"].dtype == torch.float32
    assert batch["index"].tolist() == [0, 1, 2, 3, 4]
    assert batch["row"]["subject"] == [r["subject"] for r in ds.rows[:5]]
    # the same pixels and targets as the trainer's batched path, and as one sample at a time
    fast = ds.__getitems__([0, 1, 2, 3, 4])
    assert isinstance(fast, Batch) and len(fast) == 5 and "image" in fast
    assert torch.equal(fast["image"], batch["image"])
    assert batch_collate(fast) is fast.fields
    one = ds[3]
    assert torch.equal(one["image"], batch["image"][3]) and one["row"]["subject"] == batch["row"]["subject"][3]
    assert fast[3]["row"] == one["row"] and fast[-1]["index"] == 4
    with pytest.raises(IndexError):
        ds[len(ds)]
    # one sample at a time (batch_size=None) and a loader process
    assert next(iter(torch.utils.data.DataLoader(ds, batch_size=None)))["image"].shape == (1, 32, 32)
    two = next(iter(torch.utils.data.DataLoader(ds, batch_size=4, num_workers=1)))
    assert torch.equal(two["image"], batch["image"][:4])


def test_rows_of_several_data_sets_share_their_columns(processed):
    from sd_core import api
    from sd_core.config import load_config

    settings = load_config()
    settings.datasets.update({d: {"output": str(processed / d)} for d in ("math", "parkinsons")})
    ds = api.build_dataset(settings, dataset_name=["math", "parkinsons"], split="val",
                           tasks=["health", "gender"])
    batch = next(iter(torch.utils.data.DataLoader(ds, batch_size=len(ds))))
    assert set(batch["row"]["dataset"]) == {"math", "parkinsons"}
    assert "doing_math" in batch["row"] and "" in batch["row"]["doing_math"]  # parkinsons rows lack it


def test_classifier_heads_and_errors(processed):
    from sd_core import api
    from sd_core.errors import SdError

    tasks = api.build_task_specs("parkinsons", ["health", "age"])
    assert [(t.name, t.kind, t.classes) for t in tasks] == [("health", "classification", ("H", "PD")),
                                                           ("age", "regression", ())]
    model = api.build_classifier(api.ClassifierConfig(
        backbone="cnn_light", tasks=tasks, embedding_dim=8, dropout=0.0, image_size=32,
        options={"channels": [4, 4, 4], "hidden": [16], "pool_size": 2}))
    model.eval()
    x = torch.zeros(3, 1, 32, 32)
    out = model(x)
    assert out["health"].shape == (3, 2) and out["age"].shape == (3,)
    assert torch.equal(model(x, task="health"), out["health"])
    with pytest.raises(KeyError, match="no task 'gender'; its tasks: health, age"):
        model(x, task="gender")
    with pytest.raises(SdError, match="unknown backbone 'vgg'; allowed: cnn_light"):
        api.build_classifier(api.ClassifierConfig(backbone="vgg", tasks=tasks, image_size=32))
    with pytest.raises(SdError, match=r"ClassifierConfig: \[options\] unknown key 'depth'"):
        api.build_classifier(api.ClassifierConfig(tasks=tasks, image_size=32, options={"depth": 2}))
    with pytest.raises(SdError, match="unknown task 'mood' of data set 'parkinsons'"):
        api.build_task_specs("parkinsons", ["mood"])
    with pytest.raises(SdError, match=r"python-experiment.toml: \[training\] unknown key 'epoch'"):
        api.train({"data": {"datasets": ["parkinsons"], "tasks": ["health"]}, "training": {"epoch": 1}})
