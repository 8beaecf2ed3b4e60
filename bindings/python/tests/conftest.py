"""Shared fixtures of the binding tests: the source tree and the spctl binary of the build."""
import os
import pathlib

import pytest


@pytest.fixture(scope="session")
def source_dir() -> pathlib.Path:
    return pathlib.Path(os.environ.get("SALTPETER_SOURCE_DIR", pathlib.Path(__file__).resolve().parents[3]))


@pytest.fixture(scope="session")
def spctl() -> str:
    path = os.environ.get("SALTPETER_SPCTL", "")
    if not path:
        pytest.skip("SALTPETER_SPCTL not set (run through ctest)")
    return path
