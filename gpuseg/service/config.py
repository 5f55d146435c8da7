"""The service's settings and limits, and path confinement under the data root."""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import InvalidInputError

#: where sessions (their files and journals) live, inside the data root
STATE_DIR = ".gpuseg-sessions"


@dataclass
class ServiceConfig:
    data_root: Path
    host: str = "127.0.0.1"
    port: int = 8765
    token: str | None = None
    backend: str | None = None
    #: extra allowed WebSocket Origins (scheme://host[:port]); loopback origins are always allowed
    allow_origins: list[str] = field(default_factory=list)
    max_message_bytes: int = 1 << 20
    max_upload_bytes: int = 2 << 30
    max_points: int = 10_000
    max_sessions: int = 16
    #: the device budget of one session: image + worst case segments (whole grid each) + undo
    max_session_bytes: int = 8 << 30
    undo_budget: int = 256 << 20
    #: frames queued for one client before it is told to resync
    max_queued_frames: int = 20_000
    default_budget: int = 1 << 20
    #: the built web page served at ``/`` (web/README.md); None: the repository's web/dist
    web_dist: Path | None = None
    #: ``gpuseg serve --demo``: a session on the demo phantom of this (nk, nj, ni) shape at startup
    demo_shape: tuple[int, int, int] | None = None

    def __post_init__(self) -> None:
        self.data_root = Path(self.data_root).resolve()
        if not self.data_root.is_dir():
            raise InvalidInputError(f"--data-root {self.data_root} is not a folder")
        if not is_loopback(self.host) and not self.token:
            raise InvalidInputError(f"binding to {self.host} (not loopback) needs --token")

    @property
    def web_dir(self) -> Path:
        return Path(self.web_dist) if self.web_dist is not None else Path(__file__).resolve().parents[2] / "web" / "dist"

    @property
    def state_dir(self) -> Path:
        return self.data_root / STATE_DIR


def is_loopback(host: str) -> bool:
    if host in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def resolve_under(root: Path, rel: str, *, what: str = "path", must_exist: bool = True) -> Path:
    """``rel`` (relative to ``root``) as a real path inside ``root``: no absolute paths, no
    ``..``, no symlink leading outside, nothing inside the service's own state folder."""
    try:
        return _resolve_under(root, rel, what, must_exist)
    except (OSError, RuntimeError) as exc:  # a name too long, a permission; a symlink loop (RuntimeError)
        reason = getattr(exc, "strerror", None) or ("a symlink loop" if isinstance(exc, RuntimeError) else exc)
        raise InvalidInputError(f"{what}: {rel[:80]!r} cannot be used ({reason})") from None


def _resolve_under(root: Path, rel: str, what: str, must_exist: bool) -> Path:
    if not isinstance(rel, str) or not rel or "\x00" in rel or len(rel) > 4096:
        raise InvalidInputError(f"{what}: a relative path under the data root, got {rel!r}")
    p = Path(rel)
    if p.is_absolute() or rel.startswith(("/", "\\")) or ".." in p.parts or ":" in p.parts[0]:
        raise InvalidInputError(f"{what}: {rel!r} must be relative to the data root, without '..'")
    full = (root / p)
    real = full.resolve(strict=False)
    try:
        inside = real.relative_to(root)
    except ValueError:
        raise InvalidInputError(f"{what}: {rel!r} leads outside the data root") from None
    if inside.parts and inside.parts[0] == STATE_DIR:
        raise InvalidInputError(f"{what}: {rel!r} is inside the service's own folder")
    if must_exist and not real.exists():
        raise InvalidInputError(f"{what}: {rel!r} does not exist under the data root")
    if not must_exist and not real.parent.is_dir():
        raise InvalidInputError(f"{what}: the folder of {rel!r} does not exist under the data root")
    if real.exists() and not (real.is_file() or real.is_dir()):
        raise InvalidInputError(f"{what}: {rel!r} is not a regular file or folder")
    return real


def env_token() -> str | None:
    return os.environ.get("GPUSEG_TOKEN") or None
