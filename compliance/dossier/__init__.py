"""The compliance dossier: an archival, signed, verifiable PDF of one submission's judgement.

Pipeline (each step plain Python, callable from a Celery task, a command or a test):

1. ``context.dossier_context_build(submission=..., lang=...)`` -> ``DossierContext``
   (the only step that reads the database; tests build the dataclasses directly,
   ``sample.sample_context_build`` gives a fictional one);
2. ``render.dossier_render(context=..., timeout_s=...)`` -> ``RenderResult``: PDF/A-3b
   from our own auto-escaped templates, fonts and nothing else fetched from
   ``static/``, with findings.json, bom.cdx.json (``bom``) and manifest.json attached;
3. ``signing.dossier_sign(pdf_bytes=..., identity=...)``: PAdES over the whole file
   (``signing_identity_from_settings`` reads the DOSSIER_SIGNING_* settings);
   ``issue.dossier_issue`` does 2 and 3 in one call;
4. ``verify.dossier_verify(pdf_file=... or pdf_bytes=..., trusted_certs=..., known_hashes=...)``: a file
   object is read in chunks (hashing, the end marker, the signature's byte range), never whole.
"""
