import importlib
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT.parent / "shared" / "fixtures"
sys.path.insert(0, str(Path(__file__).resolve().parent))


TEST_INSTALL = ROOT / ".test-install"  # written by scripts/install.sh: the modules it installed


def require(module: str, reason: str = "the test install (scripts/install.sh) has it"):
    """The module, imported; where scripts/install.sh made this a test install and installed it, a
    failure to import it fails the test (a broken install is no reason to skip), elsewhere skips it."""
    promised = TEST_INSTALL.is_file() and module in TEST_INSTALL.read_text().split()
    if not promised:
        return pytest.importorskip(module, reason=reason)
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        pytest.fail(f"{module} cannot be imported ({exc}), though {TEST_INSTALL} says scripts/install.sh installed it", pytrace=False)


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    if not FIXTURES.is_dir():
        pytest.fail(f"shared fixtures not found at {FIXTURES}: the checkout must sit beside shared/")
    return FIXTURES
