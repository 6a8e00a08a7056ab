from detection.management.commands._jobs import JobCommand
from detection.services.baselines import baselines_augment


class Command(JobCommand):
    help = (
        "Baseline augmentation now (as the 30-day schedule does): each sensor's cleaned history since the last "
        "run, oldest first, is appended to its baseline as a new augmented baseline. Recorded as a job run."
    )
    job = staticmethod(baselines_augment)
    noun = "Baseline augmentation"
