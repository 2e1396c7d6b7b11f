"""Celery tasks of the registry: thin, named, safe to run twice."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="projects.milestone_reminders", acks_late=True, ignore_result=True)
def milestone_reminders_task() -> dict:
    """Beat, daily, on the control queue: milestones due soon or overdue (each announced once per state)."""
    from projects.services import milestone_reminders_send

    return milestone_reminders_send()
