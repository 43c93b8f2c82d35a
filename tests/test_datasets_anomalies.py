"""Anomaly ranking and smart selection on synthetic data: planted outliers come first with the
right reasons, k-centre greedy covers clusters, margins have the right sign and scale."""

from __future__ import annotations

import numpy as np
import pytest

from pixelmill.datasets import anomalies, select
from pixelmill.datasets.fields import FEATURES
from pixelmill.errors import UsageError


def unit(rows: np.ndarray) -> np.ndarray:
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


def population(n: int = 300, seed: int = 0) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Photo-like features (heavy-tailed sharpness and noise) and embeddings in 4 clusters."""
    rng = np.random.default_rng(seed)
    features = {
        "mean_luma": rng.normal(0.45, 0.1, n),
        "contrast": rng.lognormal(-1.7, 0.25, n),
        "colourfulness": rng.lognormal(3.7, 0.4, n),
        "sharpness": rng.lognormal(5.0, 1.0, n),
        "noise": rng.lognormal(-0.4, 0.5, n),
        "blockiness": rng.lognormal(0.1, 0.05, n),
        "jpeg_quality": np.full(n, 90.0),
        "entropy": rng.normal(7.0, 0.3, n),
    }
    centres = unit(rng.normal(size=(4, 64)))
    embeddings = unit(centres[rng.integers(0, 4, n)] + rng.normal(0, 0.05, (n, 64)))
    return features, embeddings


def test_planted_outliers_rank_first_with_their_reasons() -> None:
    features, embeddings = population()
    features["sharpness"][10] = 0.2  # a blur
    features["noise"][20] = 40.0  # heavy noise
    embeddings[30] = unit(np.random.default_rng(9).normal(size=(1, 64)))[0]  # odd content
    ranked = anomalies.rank(features, embeddings)
    assert len(ranked) == 300 and sorted(a.index for a in ranked) == list(range(300))
    assert {a.index for a in ranked[:3]} == {10, 20, 30}
    reasons = {a.index: a.reasons for a in ranked[:3]}
    assert reasons[10][0].startswith("sharpness 0.2 (p0.167, robust z -")
    assert reasons[20][0].startswith("noise 40 (p99.8, robust z +")
    assert reasons[30][0].startswith("embedding")
    assert all(len(r) <= anomalies.REASONS for r in reasons.values())
    assert ranked[0].score >= ranked[3].score >= ranked[-1].score
    assert not any("jpeg_quality" in r for a in ranked for r in a.reasons)  # it never varies


def test_ranking_is_seeded_and_top_cuts_it() -> None:
    features, embeddings = population()
    first = anomalies.rank(features, embeddings, top=5, seed=3)
    assert len(first) == 5 and first == anomalies.rank(features, embeddings, top=5, seed=3)
    assert anomalies.rank(features, embeddings, top=0) == []


def test_missing_values_are_the_median() -> None:
    features, embeddings = population(60)
    sharpness = [None if i % 3 == 0 else v for i, v in enumerate(features["sharpness"])]
    features["sharpness"] = np.array(sharpness, object)
    features["noise"][5] = np.nan
    features["noise"][6] = 50.0
    features["contrast"][:] = np.nan  # nothing known: left out
    embeddings[7] = 0  # no embedding
    ranked = anomalies.rank(features, embeddings)
    assert ranked[0].index == 6 and ranked[0].reasons[0].startswith("noise 50")
    assert all(np.isfinite(a.score) for a in ranked)
    where = {a.index: i for i, a in enumerate(ranked)}
    assert where[5] > 10 and where[7] > 10
    assert not any(r.startswith("contrast") for a in ranked for r in a.reasons)


def test_a_small_dataset_is_ranked_by_robust_z_alone() -> None:
    features, embeddings = population(6)
    features["entropy"][4] = 1.0
    ranked = anomalies.rank(features, embeddings)
    assert ranked[0].index == 4 and len(ranked) == 6
    assert ranked[0].reasons[0].startswith("entropy 1 (")
    assert anomalies.rank({"noise": np.array([1.0])}, np.zeros((1, 8)))[0].score == 0


def test_edge_cases_of_ranking() -> None:
    assert anomalies.rank({name: np.array([]) for name in FEATURES}, np.zeros((0, 64))) == []
    assert anomalies.rank({}, np.zeros((0, 0))) == []
    same = anomalies.rank({"noise": np.ones(30)}, np.ones((30, 4)))
    assert [a.score for a in same] == [0.0] * 30 and [a.index for a in same] == list(range(30))
    only_embeddings = anomalies.rank({}, population(40)[1])
    assert len(only_embeddings) == 40
    with pytest.raises(UsageError, match="one row per item"):
        anomalies.rank({"noise": np.ones(3)}, np.ones((4, 2)))


def clusters(k: int = 5, per: int = 40, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(k, 16)) * 10
    labels = np.repeat(np.arange(k), per)
    return (centres[labels] + rng.normal(0, 0.1, (k * per, 16))).astype(np.float32), labels


def test_diverse_picks_one_per_cluster_and_avoids_what_is_already_chosen() -> None:
    points, labels = clusters()
    for seed in range(3):
        picked = select.diverse(points, 5, seed=seed)
        assert sorted(labels[picked]) == [0, 1, 2, 3, 4]
    picked = select.diverse(points, 2, already=points[labels <= 2][:3])
    assert sorted(labels[picked]) == [3, 4]


def test_diverse_is_greedy_k_centre() -> None:
    rng = np.random.default_rng(1)
    points = rng.normal(size=(200, 8)).astype(np.float32)
    picked = select.diverse(points, 12, seed=4)
    expected = [picked[0]]
    nearest = np.linalg.norm(points - points[picked[0]], axis=1)
    for _ in range(11):
        expected.append(int(np.argmax(nearest)))
        nearest = np.minimum(nearest, np.linalg.norm(points - points[expected[-1]], axis=1))
    assert picked == expected


def test_diverse_edge_cases() -> None:
    points, _ = clusters(3, 2)
    assert sorted(select.diverse(points, 50)) == list(range(6))  # k > n: all of them
    assert select.diverse(np.zeros((0, 16)), 3) == []
    assert select.diverse(points, 0) == []
    twins = np.repeat(np.eye(2, 4, dtype=np.float32), 10, axis=0)  # 2 points, 10 copies each
    picked = select.diverse(twins, 5)
    assert len(set(picked)) == 5 and len({tuple(twins[i]) for i in picked[:2]}) == 2
    holes = points.copy()
    holes[1] = 0  # no embedding
    holes[2] = np.nan
    assert set(select.diverse(holes, 6)[-2:]) == {1, 2}
    with pytest.raises(UsageError):
        select.diverse(points, 2, already=np.ones((1, 3)))


def test_uncertain_picks_values_nearest_their_threshold() -> None:
    margins = np.array([0.5, -0.01, np.nan, 0.02, -2.0, 0.01])
    assert select.uncertain(margins, 3) == [1, 5, 3]
    assert select.uncertain(margins, 10) == [1, 5, 3, 0, 4]  # NaN: never
    assert select.uncertain(np.array([np.nan, np.nan]), 2) == []
    assert select.uncertain(np.array([]), 2) == []


def test_margin_sign_and_scale() -> None:
    assert select.margin(0.95, "ssim>=0.9") == pytest.approx(0.05 / 0.9)
    assert select.margin(0.85, "ssim>=0.9") == pytest.approx(-0.05 / 0.9)
    assert select.margin(3.0, "ciede2000<=2") == pytest.approx(-0.5)
    assert select.margin(1.5, "ciede2000 <= 2") == pytest.approx(0.25)
    assert select.margin(35.0, "psnr>35") == 0.0
    assert select.margin(38.5, "psnr>35") == pytest.approx(0.1)
    assert select.margin(1.0, "noise<2") == pytest.approx(0.5)
    assert select.margin(0.25, "noise<0") == pytest.approx(-0.25)  # a threshold of 0: absolute
    assert np.isnan(select.margin(float("nan"), "ssim>=0.9"))
    with pytest.raises(UsageError, match="unknown metric"):
        select.margin(1.0, "nonsense>=1")
    with pytest.raises(UsageError):
        select.margin(1.0, "ssim=1")


def test_mixed_is_half_uncertain_then_diverse() -> None:
    points, labels = clusters(4, 10)
    margins = np.full(len(points), np.nan)
    margins[[0, 1, 2]] = [0.3, 0.01, -0.02]  # all in cluster 0
    picked = select.mixed(points, margins, 4)
    assert picked[:2] == [1, 2] and len(set(picked)) == 4
    assert sorted(labels[picked[2:]]) != [0, 0] and 0 not in labels[picked[2:]]
    assert len(select.mixed(points, np.full(len(points), np.nan), 3)) == 3
    assert sorted(select.mixed(points[:3], margins[:3], 9)) == [0, 1, 2]


def test_disagreement_of_two_outputs() -> None:
    rng = np.random.default_rng(2)
    a = rng.normal(size=(50, 6)) * [1, 10, 100, 1, 1, 1000]
    b = a.copy()
    b[7, 2] += 300  # one column, three of its spreads
    b[9] = np.nan
    found = select.disagreement(a, b)
    assert found[0] == 0 and int(np.nanargmax(found)) == 7 and np.isnan(found[9])
    assert select.uncertain(np.exp(-found), 1) == [7]
    assert select.disagreement(a[:, 0], a[:, 0]).shape == (50,)
    assert select.disagreement(np.zeros((0, 3)), np.zeros((0, 3))).shape == (0,)
    with pytest.raises(UsageError, match="must match"):
        select.disagreement(a, b[:, :3])
