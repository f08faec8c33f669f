"""`/v1/test_clock`: the clock billing runs on, and moving a test clock forward with the batches
due on the way, like Stripe's test clocks (scheduler.advance, as `renewly clock advance`). Only
on a test clock (RENEWLY_CLOCK=test): on the system clock an advance is refused (not_test_clock)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from renewly.scheduler import MOST_DAYS_PER_ADVANCE, advance
from renewly.web.dependencies import AppPorts
from renewly.web.fields import Boolean, integer

router = APIRouter(tags=["test clock"])


class TestClock(BaseModel):
    object: Literal["test_clock"] = "test_clock"
    clock: Literal["test", "system"]
    now: datetime


class AdvanceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    days: Annotated[int, *integer(ge=0, le=MOST_DAYS_PER_ADVANCE)] = 0
    hours: Annotated[int, *integer(ge=0, le=24 * MOST_DAYS_PER_ADVANCE)] = 0
    run_batches: Boolean = Field(True, description="Run the batches due on the way (default), or let time pass "
                                                "as if Renewly were down.")


class BatchRun(BaseModel):
    batch: str
    at: datetime
    summary: str
    report: dict[str, Any]


class Advance(BaseModel):
    object: Literal["test_clock_advance"] = "test_clock_advance"
    now: datetime = Field(description="Where this advance left the clock.")
    target: datetime
    stopped: bool = Field(description="Stopped short of the target (the server is stopping).")
    runs: list[BatchRun] = Field(description="Every batch run on the way, in order.")


@router.get("/test_clock", response_model=TestClock)
def test_clock_get(app: AppPorts) -> TestClock:
    """The clock billing runs on and its time."""
    return TestClock(clock="test" if app.test_clock else "system", now=app.clock.now())


@router.post("/test_clock/advance", response_model=Advance)
def test_clock_advance(body: AdvanceIn, app: AppPorts) -> Advance:
    """Move the test clock forward, running every batch that falls due on the way, in order."""
    moved = advance(app, timedelta(days=body.days, hours=body.hours), run_batches=body.run_batches)
    return Advance(now=moved.now, target=moved.target, stopped=moved.stopped,
                   runs=[BatchRun(batch=run.batch, at=run.at, summary=run.report.describe(),
                                  report=run.report.as_json()) for run in moved.runs])
