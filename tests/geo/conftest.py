from __future__ import annotations

from pathlib import Path

import pytest

from tests.fakes.geoip_db import build_city_db


@pytest.fixture(scope="session")
def city_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_city_db(tmp_path_factory.mktemp("geoip"))
