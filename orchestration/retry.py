"""The rollups' retry policy: a few attempts with exponentially growing delays."""

from __future__ import annotations

from dagster import Backoff, RetryPolicy

from orchestration.settings import OrchestrationSettings


def rollup_retry_policy(settings: OrchestrationSettings) -> RetryPolicy:
    """`max_retries` retries; the n-th waits delay * (2**n - 1): 30 s, 90 s, 210 s by default.

    The delay is METRICS_RETRY_DELAY_SECONDS (tests use a fraction of a second).
    """
    return RetryPolicy(
        max_retries=settings.max_retries,
        delay=settings.retry_delay_seconds,
        backoff=Backoff.EXPONENTIAL,
    )
