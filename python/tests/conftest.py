"""Make the package importable when PYTHONPATH does not point at python/."""

import sys
from pathlib import Path

PYTHON_DIR = str(Path(__file__).resolve().parents[1])
if PYTHON_DIR not in sys.path:
    sys.path.insert(0, PYTHON_DIR)
