"""facebench: a reproducible face-recognition benchmark suite.

Subpackages: ``data`` (synthetic faces, real-data ingestion, protocol), ``evaluation`` (pure
metric functions), and the variants built on them. Nothing here has side effects at import.
"""

__version__ = "0.1.0"
