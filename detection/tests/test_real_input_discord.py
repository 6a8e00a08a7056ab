"""Real input through the discord method (the default): every file property of test_real_input.py is accepted,
reported, and the labeled spike is found; statuses do not depend on the unit."""

import json

import numpy as np
import pytest

from detection.services.evaluation import detection_evaluate, series_read_csv, windows_read_json
from detection.tests.test_real_input import (
    DUPLICATES,
    LABEL,
    PROPERTIES,
    SPIKE,
    UNSORTED,
    N,
    at,
    run_command,
    values_normal,
    write,
)


@pytest.mark.parametrize("name", PROPERTIES)
def test_real_files_are_evaluated_with_the_discord_method(tmp_path, name):
    csv_path, labels = write(tmp_path, PROPERTIES[name]())
    series = series_read_csv(csv_path)
    result = detection_evaluate(
        method="discord",
        timestamps=series.timestamps,
        values=series.values,
        windows=windows_read_json(labels),
        duplicates=series.duplicates,
        unsorted=series.unsorted,
    )
    assert result.method == "discord"
    assert result.windows[0].found  # the spike
    assert result.as_dict()["input"] == {"duplicates": DUPLICATES.get(name, 0), "unsorted": name in UNSORTED}
    data = json.loads(run_command(csv_path, "--labels", labels, "--method", "discord", "--json"))
    assert data["windows"][0]["found"] is True
    assert data["nab"]["profiles"]["standard"]["detected"] == 1


def test_scaling_changes_no_discord_status():
    values = values_normal()
    stamps = [at(i) for i in range(N)]
    windows = [(at(LABEL[0]), at(LABEL[1]))]
    plain = detection_evaluate(method="discord", timestamps=stamps, values=values, windows=windows)
    scaled = detection_evaluate(method="discord", timestamps=stamps, values=values * 1000 + 1e6, windows=windows)
    assert plain.statuses() == scaled.statuses()
    assert plain.statuses()[SPIKE] in ("warning", "critical")
    np.testing.assert_allclose(plain.levels, scaled.levels, rtol=1e-6, equal_nan=True)
