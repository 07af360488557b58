"""harness: the benchmark harness that reproduces the paper's tables (`harness run --table N`).

Modules, one job each:
    names      display names of backbones and tasks
    methods    every method (zero-shot, SFT, LIVR, ablations) with its defaults
    config     table configs (tables/*.toml), overrides and validation
    paper      the paper's numbers
    parsing    answer extraction (MCQ letters, counts)
    metrics    scoring, per-task metrics, macro mean, baselines
    cells      a cell's resolved config and hash
    plan       cells of a table against the built data: cost, sharding
    executor   the model-side interface (CellExecutor) and the model-free executors
    samples    built records -> livr_core samples (image twice)
    modeling   a method's model from livr_core parts, executor options, greedy answers
    train_executor  the real executor (`livr`): train with livr_core, answer the test set
    run_folder single runs (`train`, `eval`, `diagnose`): a run folder read back
    diagnose   usage diagnostics: latents removed, bottleneck at test, attention, pictures
    visualize  attention overlays and the t-SNE plot (PNG)
    store      the run store (cell folders, status, resume)
    runner     running cells: skip, resume, isolate crashes, score
    report     the table in text, Markdown, CSV, LaTeX and JSON
    plot       the PNG bar chart
    cli        the `harness` command
"""
