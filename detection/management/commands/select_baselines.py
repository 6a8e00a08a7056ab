from detection.management.commands._jobs import JobCommand
from detection.services.baselines import baselines_select


class Command(JobCommand):
    help = (
        "Baseline selection now (as the 15-day schedule does): each sensor gets the fitting seed nearest to its "
        "recent data. Recorded as a job run, with system events."
    )
    job = staticmethod(baselines_select)
    noun = "Baseline selection"
