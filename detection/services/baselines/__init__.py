"""Baselines: the series a sensor's detector compares its readings with (the baseline method).

- `build`: making one (`baseline_create`), and a sensor's own from its first readings (`baseline_build`);
- `seeds`: the committed seed baselines and loading them (`baselines_load`);
- `jobs`: what the two scheduled jobs share (the recorded run, progress, each sensor's usable history);
- `selection`: which seed fits each sensor (`baselines_select`);
- `augmentation`: each sensor's baseline grown with its own history (`baselines_augment`).

Baselines are never changed in place (workers cache seeded detectors by baseline id): building, augmenting and
replacing a seed all make a new row, and pointing a sensor's settings at another baseline restarts its detector at
its next batch (the detection service sees that the active baseline changed and replays the last m values).
"""

from detection.services.baselines.augmentation import baselines_augment
from detection.services.baselines.build import baseline_build, baseline_create
from detection.services.baselines.jobs import JobResult
from detection.services.baselines.seeds import SEEDS_FILE, SEEDS_FORMAT, LoadResult, baselines_load
from detection.services.baselines.selection import baselines_select, stats_distance

__all__ = [
    "SEEDS_FILE",
    "SEEDS_FORMAT",
    "JobResult",
    "LoadResult",
    "baseline_build",
    "baseline_create",
    "baselines_augment",
    "baselines_load",
    "baselines_select",
    "stats_distance",
]
