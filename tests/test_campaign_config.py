"""A campaign's settings (fuzzer/campaign.py CampaignConfig): built from what `fuzz` takes,
saved in the store, and restored by a resume with only the run's own budget and limits new.
No campaign runs here (tests/test_campaign.py resumes real ones)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from fuzzer.campaign import CampaignConfig, ShrinkConfig
from fuzzer.sampling import GenerationError
from fuzzer.sandbox import Limits
from fuzzer.store import Store, StoreError
from fuzzer.targets import TargetError

SETTINGS = dict(seed=11, targets=["torchscript-17/ort-all@0.25", "dynamo/ort-all"],
                sampler="random", vocab=["aten::relu", "aten::tanh"], max_len=4,
                nondefault=0.5, dynamic=0.2, pack=1, near_miss=0.4)


def test_settings_saved_by_a_campaign_come_back_on_resume(tmp_path: Path) -> None:
    cfg = CampaignConfig.from_options(**SETTINGS, seconds=30.0, workers=1)
    assert list(cfg.targets) == ["torchscript-17/ort-all", "dynamo/ort-all"]
    assert cfg.weights == {"torchscript-17/ort-all": 0.25}
    assert (cfg.gen.max_len, cfg.gen.dynamic, cfg.gen.seeds) == (4, 0.2, "")
    assert cfg.gen.near_miss == 0.0  # the motif sampler's alone
    store = Store(tmp_path)
    try:
        cfg.save(store)
    finally:
        store.close()
    run = dict(seconds=None, cases=5, workers=2, limits=Limits(timeout=9.0),
               shrink=ShrinkConfig(False), scheduler=None)
    back = CampaignConfig.resumed(tmp_path, **run)
    assert back == dataclasses.replace(cfg, **run)
    assert back.to_meta() == cfg.to_meta()


def test_bad_settings_fail_before_any_store_opens(tmp_path: Path) -> None:
    with pytest.raises(GenerationError, match="unknown source 'nope'"):
        CampaignConfig.from_options(**{**SETTINGS, "sampler": "nope"})
    with pytest.raises(TargetError, match="target weight 'x'"):
        CampaignConfig.from_options(**{**SETTINGS, "targets": ["dynamo/ort-all@x"]})
    with pytest.raises(GenerationError, match="unknown vocabulary"):
        CampaignConfig.from_options(**{**SETTINGS, "vocabulary": "all"})
    with pytest.raises(StoreError, match="no campaign store to resume"):
        CampaignConfig.resumed(tmp_path / "none")
    assert not (tmp_path / "none").exists()
    store = Store(tmp_path)
    try:
        store.set_meta("config", {"seed": 1, "targets": ["dynamo/ort-all"]})
    finally:
        store.close()
    with pytest.raises(StoreError, match="lack sampler, max_len, nondefault, dynamic"):
        CampaignConfig.resumed(tmp_path)
