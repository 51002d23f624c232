"""STAFF_API_THROTTLE_RATE comes from the environment, as README's configuration says."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def setting_in_a_fresh_process(**env) -> str:
    environ = {k: v for k, v in os.environ.items() if k != "STAFF_API_THROTTLE_RATE"}
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import django, os; os.environ.setdefault('DJANGO_SETTINGS_MODULE', "
            "'loyalty.settings'); django.setup(); from django.conf import settings; "
            "print(settings.STAFF_API_THROTTLE_RATE)",
        ],
        cwd=ROOT,
        env={**environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return result.stdout.strip()


@pytest.mark.parametrize(
    ("env", "expected"), [({}, "1200/min"), ({"STAFF_API_THROTTLE_RATE": "7/s"}, "7/s")]
)
def test_the_staff_throttle_rate_is_read_from_the_environment(env, expected):
    assert setting_in_a_fresh_process(**env) == expected
