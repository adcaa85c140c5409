"""Small shared helpers: user-facing errors, atomic file writes, smoke-mode switch."""
from edvr_lib.utils.errors import EDVRError
from edvr_lib.utils.io import REPO_ROOT, atomic_path, atomic_write_bytes, atomic_write_text, smoke_mode

__all__ = ["REPO_ROOT", "EDVRError", "atomic_path", "atomic_write_bytes", "atomic_write_text", "smoke_mode"]
