"""Shared pytest fixtures; figures render off-screen (Agg) in every test."""
import matplotlib
import pytest
import torch

matplotlib.use("Agg")


@pytest.fixture(scope="module")
def one_thread():
    """Run a module's tests on one torch thread: tiny convolutions are much slower with several threads
    on a busy 2-core machine. Use with ``pytestmark = pytest.mark.usefixtures("one_thread")``."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def embedded_smoke_root():
    """Folder of the smoke variant of the embedded dataset, built once per session (reused if valid)."""
    from edvr_lib.data import prepare_embedded

    return prepare_embedded(smoke=True, progress=False)
