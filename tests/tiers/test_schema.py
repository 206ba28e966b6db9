"""The schema accepts exactly the values the model and the handler contract know."""

from __future__ import annotations

from enum import StrEnum
from typing import get_args

import pytest

from handlers.contract import ISOLATIONS, QUOTA_PERIODS
from tiers.model import Isolation, QuotaPeriod
from tiers.schema import QuotaEntry, TierEntry


@pytest.mark.parametrize(
    ("annotation", "enum", "contract_values"),
    [
        (TierEntry.model_fields["isolation"].annotation, Isolation, ISOLATIONS),
        (QuotaEntry.model_fields["period"].annotation, QuotaPeriod, QUOTA_PERIODS),
    ],
)
def test_schema_choices_are_the_models_and_the_contracts(
    annotation: object, enum: type[StrEnum], contract_values: tuple[str, ...]
) -> None:
    # GIVEN the schema's accepted strings, the model's enum and the values the handlers read
    # THEN all three are the same values in the same order: a new isolation or period changes one place
    assert get_args(annotation) == tuple(member.value for member in enum) == contract_values
