"""builders: the paper's training data from the raw datasets as BLINK-style splits (`build-task`).

Also owns `package_version`, the toolkit's version as installed: every manifest and report
records it, and each of the three tools prints it for `--version`.
"""

from __future__ import annotations


def package_version() -> str:
    from importlib import metadata  # here: every `import builders.*` runs this file

    try:
        return metadata.version("livr-toolkit")
    except metadata.PackageNotFoundError:
        return "0+unknown"
