"""Writes of the compliance room, one module per concern.

- ``runs``: check runs from creation to their end (enqueue, claim, lease, fence, finish,
  reconcile) and the submission status they drive.
- ``leases``: claim, fence, lease and attempt budget of any job a worker may lose
  (check runs and dossiers share it).
- ``decisions``: reviewers' decisions on findings and submissions, vendors' replies.
- ``reuse``: an earlier version's check result taken over when the file, engine version and
  every input the check reads are unchanged (same project only).
- ``threads``: the conversation on a finding between the vendor and the reviewers
  (``message_post``, the one way a message is written).
- ``policy``: a programme's policy, and its judgement of stored licence inventories
  (shared by the licence and code checks, re-applied when the policy changes).

Import from the module itself (``from compliance.services.runs import check_run_execute``).
"""
