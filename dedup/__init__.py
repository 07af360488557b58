"""De-duplication of our train/val splits against the test sets (BLINK val, PixMo-Count test).

Test images are the queries, train/val images (and, with a source root, the raw source images the
builders drew markers on) the database; CLIP retrieves candidates, pHash and SSIM on aligned
views confirm them, flagged examples move to `removed-*.parquet`. Test splits are never written.

Modules, one job each, in pipeline order:
    config     the [dedup] table of tasks.toml, typed (every threshold lives there)
    catalog    which images are compared: reference and database items, raw-file resolution
    signals    per-image hashes, pHash and grayscale views
    embed      open_clip image embeddings and their content-keyed cache
    analyse    decode once, compute signals and embeddings (threaded, batched)
    search     candidate pairs: exact hashes, CLIP top-k + floor, pHash radius
    compare    aligned-view scores of one pair (pHash, SSIM raw / blurred / median)
    confirm    scoring many pairs, in worker processes when it pays
    decide     the named rules: duplicate, borderline or distinct
    pairs      image-pair decisions to example removals (pair-aware for two-image tasks)
    run        one task end to end in memory -> TaskResult
    apply      atomic rewrite of the filtered splits, removed rows kept beside them
    report     pairs.jsonl, summary.json, the printed table, index.html, flagged_sources.json
    calibrate  `dedup calibrate`: synthetic positives vs hard negatives, thresholds with P/R
    cli        `dedup` / `dedup calibrate`; `main(argv)` is callable from tests
"""
