"""Fixtures of the differential suite (see tests/conftest.py for the rest)."""
import pytest

from kvtest.pair import servers_pair


@pytest.fixture
def pair(kvgate_binary, etcd_binary):
    """[etcd, kvgate]: fresh, started, ready; stopped and removed after."""
    with servers_pair(kvgate_binary) as servers:
        yield servers
