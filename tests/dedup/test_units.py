"""The pieces on their own: search against brute force, the decision rules, pair-aware removal,
crop alignment, the config loader, the embedding cache and the calibration arithmetic."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from builders.registry import RegistryError, load_registry
from dedup import search
from dedup.calibrate import separation
from dedup.catalog import ImageRef
from dedup.compare import PairScores, compare
from dedup.config import load_config
from dedup.decide import decide
from dedup.embed import EmbeddingCache
from dedup.pairs import PairRecord, removals
from dedup.signals import image_signals

from .conftest import (
    boxed,
    cropped,
    jpeg,
    lookalike_colours,
    lookalike_layout,
    pointed,
    reencoded,
    reference_image,
    resized,
    scene,
)

CFG = load_config()


def _unit(rng, n, d=16):
    x = rng.normal(size=(n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_clip_candidates_match_brute_force_across_chunks(monkeypatch):
    monkeypatch.setattr(search, "CHUNK", 7)  # force several chunks and the running top-k merge
    rng = np.random.default_rng(0)
    q, d = _unit(rng, 5), _unit(rng, 40)
    got = search.clip_candidates(q, d, top_k=3, floor=0.5)
    sims = q @ d.T
    want = {(i, int(j)) for i in range(5) for j in np.argsort(-sims[i])[:3]}
    want |= {(int(i), int(j)) for i, j in zip(*np.nonzero(sims >= 0.5))}
    assert set(got) == want
    assert all(abs(got[p] - sims[p]) < 1e-6 for p in got)


def test_phash_candidates_match_brute_force():
    rng = np.random.default_rng(1)
    q = rng.integers(0, 2**63, size=6, dtype=np.uint64)
    d = np.concatenate([q[:2] ^ np.uint64(0b1011), rng.integers(0, 2**63, size=30, dtype=np.uint64)])
    got = search.phash_candidates(q, d, radius=3)
    want = {(i, j) for i in range(6) for j in range(32) if (int(q[i]) ^ int(d[j])).bit_count() <= 3}
    assert got == want and {(0, 0), (1, 1)} <= got


def _scores(**kw) -> PairScores:
    base = {"phash_whole": 40, "phash": 40, "ssim_raw": 0.1, "ssim_blur": 0.1, "ssim_median": 0.1,
            "ncc": 0.0, "align": "full"}
    return PairScores(**{**base, **kw})


ANY = dataclasses.replace(CFG.policy("art_style"), rule="any")
PAPER, PAPER_BLUR = CFG.policy("art_style"), CFG.policy("localization")


def test_the_paper_rule_is_the_default_with_the_blurred_view_for_localization_only():
    """App. A: "perceptual hashing and SSIM" confirm (a conjunction); A.3: Localization "on both
    raw and blurred grayscale images"."""
    assert CFG.rule == "paper" and CFG.blur_tasks == ("localization",)
    assert PAPER.rule == "paper" and not PAPER.blurred and PAPER_BLUR.blurred


def test_paper_rule_needs_phash_and_ssim_together():
    q, b = CFG.paper_rule, CFG.borderline
    both = _scores(phash=q.phash_max, ssim_raw=q.ssim_min)
    assert decide(both, 0.0, None, PAPER, b).fired == ("phash_ssim_raw",)
    assert decide(_scores(phash=0), 0.0, None, PAPER, b).verdict != "duplicate"  # pHash alone
    ssim_only = _scores(phash=q.phash_max + 2, ssim_raw=0.99, ssim_blur=0.99, ssim_median=0.99)
    assert decide(ssim_only, 0.0, None, PAPER, b).verdict != "duplicate"  # SSIM alone
    assert decide(ssim_only, 0.0, None, PAPER_BLUR, b).verdict != "duplicate"
    assert decide(ssim_only, 0.0, None, ANY, b).verdict == "duplicate"  # the stricter set flags it
    blurred = _scores(phash=q.phash_max, ssim_raw=q.ssim_min - 0.2, ssim_blur=q.ssim_blur_min)
    assert decide(blurred, 0.0, None, PAPER, b).verdict != "duplicate"
    assert decide(blurred, 0.0, None, PAPER_BLUR, b).fired == ("phash_ssim_blur",)
    assert decide(_scores(), 0.0, "exact_bytes", PAPER, b).rule == "exact_bytes"
    near = decide(_scores(phash=q.phash_max, ssim_raw=q.ssim_min - b.ssim_margin / 2), 0.0, None,
                  PAPER, b)
    assert near.verdict == "borderline" and near.fired == ("near_phash_ssim_raw",)


def test_any_rule_fires_by_name():
    r, b = CFG.rules, CFG.borderline
    assert decide(_scores(), 0.0, "exact_pixels", ANY, b).rule == "exact_pixels"
    assert decide(_scores(ssim_raw=r.ssim_raw_min), 0.0, None, ANY, b).fired == ("ssim_raw",)
    hit = decide(_scores(phash=r.phash_max, ssim_blur=r.phash_ssim_blur_min), 0.0, None, ANY, b)
    assert hit.verdict == "duplicate" and hit.rule == "phash_ssim"
    # pHash alone, or SSIM a hair short, is not enough
    assert decide(_scores(phash=0), 0.0, None, ANY, b).verdict != "duplicate"
    local = _scores(ssim_median=r.ssim_median_min, ssim_blur=r.ssim_local_blur_min)
    assert decide(local, 0.0, None, ANY, b).rule == "ssim_local"
    near = decide(_scores(ssim_blur=r.ssim_blur_min - b.ssim_margin / 2), 0.0, None, ANY, b)
    assert near.verdict == "borderline" and "near_ssim_blur" in near.fired
    assert decide(_scores(), b.cosine_min, None, ANY, b).fired == ("high_cosine",)
    assert decide(_scores(), 0.0, None, ANY, b).verdict == "distinct"


def test_rule_set_is_validated(tmp_path):
    text = load_registry().path.read_text().replace('rule = "paper"', 'rule = "all"')
    path = tmp_path / "tasks.toml"
    path.write_text(text)
    with pytest.raises(RegistryError, match="rule must be one of paper, any"):
        load_config(load_registry(path))


def _pair(cand_idx, cand_slot, ref_idx, ref_slot, verdict="duplicate", kind="rendered"):
    from dedup.decide import Decision
    return PairRecord("t", ImageRef("test", ref_idx, ref_slot), ImageRef("train", cand_idx, cand_slot, kind),
                      0.9, _scores(), Decision(verdict, "ssim_raw" if verdict == "duplicate" else "", ()))


def test_pair_aware_removal_needs_both_images():
    pairs = [
        _pair("aligned", 1, "T1", 1), _pair("aligned", 2, "T1", 2),
        _pair("swapped", 1, "T1", 2), _pair("swapped", 2, "T1", 1),
        _pair("half", 1, "T1", 1), _pair("half", 2, "T1", 2, verdict="borderline"),
        _pair("split", 1, "T1", 1), _pair("split", 2, "T2", 2),
        _pair("raw", 0, "T2", 1, kind="raw"), _pair("raw", 2, "T2", 2),
    ]
    gone, partial = removals(pairs, pair_aware=True, ref_slots={"T1": 2, "T2": 2})
    assert {k[1]: v.order for k, v in gone.items()} == {"aligned": "aligned", "swapped": "swapped",
                                                        "raw": "aligned"}
    assert {p.cand.idx for p in partial} == {"half", "split"}
    gone_any, _ = removals(pairs, pair_aware=False, ref_slots={})
    assert {k[1] for k in gone_any} == {"aligned", "swapped", "half", "split", "raw"}


def test_crop_is_aligned_in_either_direction():
    img = reference_image(3)
    full = image_signals(jpeg(img), CFG.view_size, CFG.blur_sigma)[0]
    crop = image_signals(jpeg(cropped(img)), CFG.view_size, CFG.blur_sigma)[0]
    a, b = compare(full, crop, CFG), compare(crop, full, CFG)
    assert a.align.startswith("cand_in_ref@0.9") and b.align.startswith("ref_in_cand@0.9")
    assert min(a.ssim_raw, b.ssim_raw) > CFG.rules.ssim_raw_min
    other = image_signals(jpeg(reference_image(4)), CFG.view_size, CFG.blur_sigma)[0]
    assert compare(full, other, CFG).ssim_blur < 0.6


def test_config_names_missing_and_unknown_keys(tmp_path, monkeypatch):
    text = load_registry().path.read_text()
    bad = text.replace("top_k = 10\n", "top_k_typo = 10\n")
    path = tmp_path / "tasks.toml"
    path.write_text(bad)
    with pytest.raises(RegistryError) as exc:
        load_config(load_registry(path))
    assert "[dedup] top_k_typo: unknown key; valid keys: model" in str(exc.value)
    assert "[dedup] lacks top_k; add it" in str(exc.value) and f"{path}, line " in str(exc.value)
    assert dataclasses.asdict(load_config())["rules"]["phash_max"] == CFG.rules.phash_max


def test_embedding_cache_round_trip_and_damaged_chunk(tmp_path):
    cache = EmbeddingCache(tmp_path, "m--t")
    vecs = np.eye(3, dtype=np.float32)
    cache.put_many(["a", "b", "c"], vecs)
    assert cache.flush() == 3 and cache.flush() == 0
    (tmp_path / "m--t" / "emb-99999-0.npz").write_bytes(b"garbage")
    again = EmbeddingCache(tmp_path, "m--t")
    assert len(again) == 3 and np.array_equal(again.get("b"), vecs[1])


def test_separation_reports_the_safe_and_the_best_threshold():
    pos, neg = np.array([0.9, 0.8, 0.6]), np.array([0.1, 0.65])
    s = separation(pos, neg, higher=True)
    assert s["threshold_precision_1"] == 0.8 and s["recall_at_precision_1"] == pytest.approx(2 / 3)
    lower = separation(np.array([2.0, 4.0, 12.0]), np.array([10.0, 20.0]), higher=False)
    assert lower["threshold_precision_1"] == 4.0 and lower["neg_min"] == 10.0


def _sig(img):
    return image_signals(jpeg(img), CFG.view_size, CFG.blur_sigma)[0]


def _verdicts(a, b) -> dict[str, str]:
    """The pair's verdict under each rule set (the paper's raw-only and blurred policies, any)."""
    scores = compare(_sig(a), _sig(b), CFG)
    return {name: decide(scores, 0.0, None, policy, CFG.borderline).verdict
            for name, policy in (("paper", PAPER), ("paper-blur", PAPER_BLUR), ("any", ANY))}


@pytest.mark.parametrize("overlay", [boxed, pointed])
def test_lookalikes_are_never_confirmed_and_copies_always_are(overlay):
    """Scored directly (no retrieval in the way), under every rule set: a marked-up test image
    against a resized, re-encoded or cropped clean copy is a duplicate, and so is a marked-up copy
    against the clean image; an image with the same colour field or the same shape layout is not,
    even with the very same markers drawn on both."""
    dup = dict.fromkeys(("paper", "paper-blur", "any"), "duplicate")
    for s in range(1, 9):
        img = scene(s, s, s)
        for copy in (resized(img), reencoded(img), cropped(img)):
            assert _verdicts(overlay(img), copy) == dup, (s, copy.size)
            assert _verdicts(img, overlay(copy)) == dup, (s, copy.size)
        for look in (lookalike_colours(s), lookalike_layout(s)):
            for a, b in ((overlay(img), overlay(look)), (img, look)):
                assert "duplicate" not in _verdicts(a, b).values(), s


def test_worker_processes_give_the_same_scores():
    from contextlib import closing

    from dedup.confirm import Confirmer

    sigs = [_sig(scene(s, s, s)) for s in range(1, 5)] + [_sig(resized(scene(1, 1, 1)))]
    pairs = [(i, j) for i in range(5) for j in range(5)]
    local = Confirmer(dataclasses.replace(CFG, confirm_processes=1)).score(pairs, sigs, sigs)
    pooled_cfg = dataclasses.replace(CFG, confirm_processes=2, confirm_pool_min_pairs=1)
    with closing(Confirmer(pooled_cfg)) as pooled:
        assert pooled.score(pairs, sigs, sigs) == local
