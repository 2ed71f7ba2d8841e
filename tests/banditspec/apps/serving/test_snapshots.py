"""Policy snapshots: complete selectors renamed into place, LATEST pointing at the newest, the oldest removed."""

from __future__ import annotations

import numpy as np

from banditspec.apps.serving import Snapshots
from banditspec.apps.serving.snapshots import LATEST
from banditspec.apps.training import load_selector


def test_snapshots_are_complete_selectors_and_an_interrupted_one_leaves_nothing_under_a_real_name(make_selector,
                                                                                                   tmp_path):
    selector = make_selector("linucb")
    folder = tmp_path / "snapshots"
    folder.mkdir()
    (folder / ".snapshot-000000.tmp").mkdir()  # what a save killed half-way leaves: never read as a snapshot
    snapshots = Snapshots(folder, selector.description, keep=2)
    for updates in (1, 2, 3):
        written = snapshots.save(selector.policy, updates=updates, served_from="here")
    assert written.name == "snapshot-000002" and (folder / LATEST).read_text().strip() == written.name
    assert sorted(p.name for p in folder.iterdir()) == [LATEST, "snapshot-000001", "snapshot-000002"]
    loaded = load_selector(written)
    assert loaded.arms == selector.arms and loaded.description["source"]["online_updates"] == 3
    X = np.random.default_rng(0).random((3, 64))
    np.testing.assert_allclose(loaded.policy.predict_proba(X), selector.policy.predict_proba(X))
    assert Snapshots(folder, selector.description).save(selector.policy, updates=4, served_from="here").name == \
        "snapshot-000003"  # a restarted server numbers on
