"""An upload handler that hashes a file while Django streams it to disk.

Django's ``TemporaryFileUploadHandler`` already writes an upload to a temporary file 64 KB at a
time; this one also feeds each chunk to SHA-256 on the way, so a caller gets the digest without
reading the file again, and nobody ever holds the whole upload in memory (anonymous dossier
verification read up to 64 MB into memory per request before, issue #12).

A view switches to it before the body is parsed, i.e. before anything reads ``request.POST`` or
``request.FILES``; CSRF checking reads the POST data, so such a view is ``csrf_exempt`` on the
outside and ``csrf_protect`` on the inside (Django's documented pattern).
"""

from __future__ import annotations

import hashlib

from django.core.files.uploadhandler import TemporaryFileUploadHandler


class HashingTemporaryFileUploadHandler(TemporaryFileUploadHandler):
    """Every file goes to a temporary file on disk (never memory, whatever its size), and the
    uploaded file object carries ``sha256``, the hex digest of its bytes."""

    def new_file(self, *args, **kwargs):
        super().new_file(*args, **kwargs)
        self._digest = hashlib.sha256()

    def receive_data_chunk(self, raw_data, start):
        self._digest.update(raw_data)
        return super().receive_data_chunk(raw_data, start)

    def file_complete(self, file_size):
        uploaded = super().file_complete(file_size)
        uploaded.sha256 = self._digest.hexdigest()
        return uploaded


def hashing_upload_handlers(request) -> list:
    """The handler list for ``request.upload_handlers`` (set before the body is read)."""
    return [HashingTemporaryFileUploadHandler(request)]
