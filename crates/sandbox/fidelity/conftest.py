"""Fixtures of the fidelity suites: the simulators the Rust driver (crates/sandbox/tests/fidelity.rs)
started, described in the WA2CRM_FIDELITY environment variable as JSON."""

import json
import os

import pytest


@pytest.fixture(scope="session")
def sims():
    raw = os.environ.get("WA2CRM_FIDELITY")
    if not raw:
        pytest.fail(
            "WA2CRM_FIDELITY is not set: run these suites through "
            "`cargo test -p wa2crm-sandbox --test fidelity`, which starts the simulators"
        )
    return json.loads(raw)
