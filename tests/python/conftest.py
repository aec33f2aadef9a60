"""Fixtures of the kiln Python tests (scripts/test runs them):

    PYTHONPATH=build/python KILN_BINARY=build/tools/kiln \
        /usr/bin/python3 -m pytest tests/python
"""

import os
import subprocess

import pytest


def kiln_binary():
    path = os.environ.get("KILN_BINARY", "build/tools/kiln")
    if not os.path.exists(path):
        pytest.fail(f"the kiln tool is not at {path}: set KILN_BINARY")
    return path


@pytest.fixture(scope="session")
def hybrid(tmp_path_factory):
    """The hybrid example: a 4-token prefill graph and the decode graph."""
    folder = tmp_path_factory.mktemp("hybrid")
    paths = {}
    for form, extra in (("prefill", ["--tokens", "4"]), ("decode", [])):
        paths[form] = str(folder / f"{form}.kgraph")
        subprocess.run([kiln_binary(), "make-example", f"hybrid-block-{form}", "-o", paths[form], *extra],
                       check=True, stdout=subprocess.DEVNULL)
    return paths
