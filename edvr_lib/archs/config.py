"""Typed EDVR configuration and the official presets.

=============  ===========================================================  ==============
preset         official checkpoint (BasicSR name)                           parameters
=============  ===========================================================  ==============
``M``          ``EDVR_M_x4_SR_REDS_official-32075921.pth``                   3,300,131
``M-woTSA``    ``EDVR_M_woTSA_x4_SR_REDS_official-1edf645c.pth``             2,996,259
``L``          ``EDVR_L_x4_SR_REDS_official-9f5f5039.pth``                   20,633,827
``L-woTSA``    (MMagic ``edvrl_wotsa_c128b40_...``)                          19,419,875
``L-Vimeo``    ``EDVR_L_x4_SR_Vimeo90K_official-162b54e4.pth`` (7 frames)    20,699,363
``L-SRblur``   ``EDVR_L_x4_SRblur_REDS_official-983d7b8e.pth``               23,306,851
``L-deblur``   ``EDVR_L_deblur_REDS_official-ca46bd8c.pth`` (and deblurcomp) 23,602,019
=============  ===========================================================  ==============
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from edvr_lib.utils.errors import EDVRError

__all__ = ["EDVRConfig", "PRESETS", "build_edvr"]


@dataclass(frozen=True)
class EDVRConfig:
    """What an :class:`edvr_lib.archs.EDVR` is: its architecture, with BasicSR's ``network_g`` names.

    The model keeps it (``model.config``) and checkpoints save it; speed settings are not part of it (they are
    the runner's, :mod:`edvr_lib.ops.policy`). Fields are checked on creation (:class:`EDVRError`).
    """

    num_in_ch: int = 3
    num_out_ch: int = 3
    num_feat: int = 64
    num_frame: int = 5
    deformable_groups: int = 8
    num_extract_block: int = 5
    num_reconstruct_block: int = 10
    center_frame_idx: int | None = None
    hr_in: bool = False
    with_predeblur: bool = False
    with_tsa: bool = True

    def __post_init__(self):
        for name in ("num_in_ch", "num_out_ch", "num_feat", "num_frame", "deformable_groups"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise EDVRError(f"EDVR {name} must be a positive integer, got {getattr(self, name)!r}")
        for name in ("num_extract_block", "num_reconstruct_block"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 0:
                raise EDVRError(f"EDVR {name} must be an integer >= 0, got {getattr(self, name)!r}")
        if self.num_out_ch != self.num_in_ch:
            raise EDVRError(f"EDVR adds its output to the input centre frame, so num_out_ch ({self.num_out_ch}) "
                            f"must equal num_in_ch ({self.num_in_ch})")
        if self.num_feat % self.deformable_groups:
            raise EDVRError(f"EDVR num_feat ({self.num_feat}) must be divisible by deformable_groups "
                            f"({self.deformable_groups}): each DCN group samples num_feat / deformable_groups channels")
        if self.center_frame_idx is not None and not 0 <= self.center_frame_idx < self.num_frame:
            raise EDVRError(f"center_frame_idx={self.center_frame_idx} is outside 0..{self.num_frame - 1} "
                            f"(num_frame={self.num_frame})")

    @property
    def center(self) -> int:
        """The centre frame's index (``center_frame_idx``, default ``num_frame // 2``)."""
        return self.num_frame // 2 if self.center_frame_idx is None else self.center_frame_idx

    def replace(self, **overrides) -> "EDVRConfig":
        """A copy with some fields changed; unknown names raise :class:`EDVRError`."""
        names = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(overrides) - names)
        if unknown:
            raise EDVRError(f"unknown EDVR option(s) {unknown}; valid options: {sorted(names)}")
        return dataclasses.replace(self, **overrides)

    def to_dict(self) -> dict:
        """Plain dict, e.g. to save with a checkpoint or print in a notebook."""
        return dataclasses.asdict(self)


_L = dict(num_feat=128, num_reconstruct_block=40)

PRESETS: dict[str, EDVRConfig] = {
    "M": EDVRConfig(),
    "M-woTSA": EDVRConfig(with_tsa=False),
    "L": EDVRConfig(**_L),
    "L-woTSA": EDVRConfig(**_L, with_tsa=False),
    "L-Vimeo": EDVRConfig(**_L, num_frame=7),
    "L-SRblur": EDVRConfig(**_L, with_predeblur=True),
    "L-deblur": EDVRConfig(**_L, with_predeblur=True, hr_in=True),
}


def get_config(preset: str | EDVRConfig | dict, **overrides) -> EDVRConfig:
    """Resolve a preset name, config or dict plus overrides into an :class:`EDVRConfig`."""
    if isinstance(preset, EDVRConfig):
        config = preset
    elif isinstance(preset, dict):
        config = EDVRConfig().replace(**preset)
    elif isinstance(preset, str) and preset in PRESETS:
        config = PRESETS[preset]
    else:
        raise EDVRError(f"unknown EDVR preset {preset!r}; choose one of {list(PRESETS)} or pass an EDVRConfig")
    return config.replace(**overrides) if overrides else config


def build_edvr(preset: str | EDVRConfig | dict = "M", **overrides):
    """Build an :class:`~edvr_lib.archs.EDVR` from a preset name (``'M'``, ``'L-Vimeo'``, ...) or config.

    Example:
        ``build_edvr('L', num_feat=16)`` is EDVR-L's structure at a toy width.
    """
    from edvr_lib.archs.edvr_arch import EDVR

    return EDVR(get_config(preset, **overrides))
