"""The per-file result cache every worker on every host shares: ``compliance.FileResult`` rows.

Implements ``compliance.engine.filecache.FileResultCache`` for the engine's scans. Lookups go
500 keys per query; writes are one ``bulk_create(ignore_conflicts=True)`` per batch, so two
workers scanning the same files at once both succeed, the first row written staying (both
computed the same answer from the same bytes). Nothing here is per vendor: a result is what the
engine says about bytes, the same for whoever uploads them; findings stay per submission.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.conf import settings

from compliance.models import FileResult

BATCH = 500


class DbFileResultCache:
    def get_many(self, *, namespace: str, keys: Iterable[str]) -> dict[str, dict]:
        keys = list(dict.fromkeys(keys))
        found: dict[str, dict] = {}
        for start in range(0, len(keys), BATCH):
            found.update(FileResult.objects.filter(namespace=namespace, key__in=keys[start:start + BATCH])
                         .values_list("key", "value"))
        return found

    def put_many(self, *, namespace: str, values: dict[str, dict]) -> None:
        rows = [FileResult(namespace=namespace, key=key, value=value) for key, value in values.items()]
        FileResult.objects.bulk_create(rows, batch_size=BATCH, ignore_conflicts=True)


def file_result_cache() -> DbFileResultCache | None:
    """The shared cache, or None when ``PORTAL_RESULT_CACHE`` turns caching off."""
    return DbFileResultCache() if settings.PORTAL_RESULT_CACHE else None
