"""Files copied verbatim into the evaluation packs the harness writes for other tools.

`lmms_eval_utils.py` becomes the `utils.py` of an lmms-eval task pack (`harness
export-lmms-eval`), `vlmevalkit_dataset.py` the dataset module of a VLMEvalKit pack (`harness
export-vlmevalkit`). They are ordinary modules of this package, so they are linted and tested
here, and they import the toolkit (its record registry and answer scorer) at run time: a pack is
used where the toolkit is installed.
"""
