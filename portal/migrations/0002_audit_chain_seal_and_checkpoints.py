"""Audit chain v2 and signed checkpoints (issues #10, #11).

Existing rows are re-hashed under version 2 rather than left under version 1 with
a marker: version 1 does not cover the actor's id, so every old row would stay
open to the very edit issue #10 reports, for ever. Re-hashing is safe because no
checkpoint existed yet, so nobody outside holds an old hash that would stop
matching. It is done only when the old chain verifies: a broken chain keeps its
version-1 hashes (``hash_version`` = 1) so ``audit_verify`` still shows where it
broke instead of the migration blessing the tampering.
"""

from django.db import migrations, models

from portal.audit_chain import GENESIS_HASH, event_hash

_FIELDS = ("id", "created_at", "actor_id", "actor_label", "action", "object_type", "object_id", "object_label",
           "submission_id", "project_id", "data", "prev_hash", "entry_hash")


def _rows_in_id_order(AuditEvent):
    """Every row, 2,000 at a time by id range: never the whole log in memory, and no
    cursor left open over a table this migration updates (SQLite would see its own writes)."""
    last = 0
    while True:
        batch = list(AuditEvent.objects.filter(id__gt=last).order_by("id").values(*_FIELDS)[:2000])
        if not batch:
            return
        yield from batch
        last = batch[-1]["id"]


def rehash_under_v2(apps, schema_editor):
    AuditEvent = apps.get_model("portal", "AuditEvent")
    prev, intact = GENESIS_HASH, True
    for row in _rows_in_id_order(AuditEvent):
        if row["prev_hash"] != prev or event_hash(row={**row, "hash_version": 1}, prev_hash=prev) != row["entry_hash"]:
            intact = False
            break
        prev = row["entry_hash"]
    prev = GENESIS_HASH
    # Historical models have a plain manager, so update() is allowed here.
    for seq, row in enumerate(_rows_in_id_order(AuditEvent), start=1):
        if intact:
            entry = event_hash(row={**row, "seq": seq, "hash_version": 2}, prev_hash=prev)
            AuditEvent.objects.filter(pk=row["id"]).update(seq=seq, hash_version=2, prev_hash=prev, entry_hash=entry)
            prev = entry
        else:
            AuditEvent.objects.filter(pk=row["id"]).update(seq=seq)


class Migration(migrations.Migration):

    dependencies = [
        ('portal', '0001_initial'),
    ]

    operations = [
        migrations.CreateModel(
            name='AuditCheckpoint',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('number', models.PositiveIntegerField(unique=True)),
                ('created_at', models.DateTimeField()),
                ('reason', models.CharField(choices=[('beat', 'Periodic (beat)'), ('dossier', 'Dossier issued'), ('manual', 'Operator request')], max_length=16)),
                ('event_count', models.PositiveBigIntegerField()),
                ('head_event_id', models.BigIntegerField(blank=True, null=True)),
                ('head_hash', models.CharField(max_length=64)),
                ('signature', models.TextField()),
                ('signer_fingerprint', models.CharField(max_length=64)),
                ('certificate_pem', models.TextField()),
            ],
            options={
                'ordering': ['-number'],
            },
        ),
        # Existing rows were written under version 1; rehash_under_v2 moves them to 2.
        migrations.AddField(
            model_name='auditevent',
            name='hash_version',
            field=models.PositiveSmallIntegerField(default=1),
        ),
        migrations.AddField(
            model_name='auditevent',
            name='seq',
            field=models.PositiveBigIntegerField(blank=True, null=True, unique=True),
        ),
        migrations.AlterField(
            model_name='auditevent',
            name='entry_hash',
            field=models.CharField(blank=True, max_length=64, null=True, unique=True),
        ),
        migrations.AlterField(
            model_name='auditevent',
            name='prev_hash',
            field=models.CharField(blank=True, default='', max_length=64),
        ),
        migrations.RunPython(rehash_under_v2, migrations.RunPython.noop),
        migrations.AlterField(
            model_name='auditevent',
            name='hash_version',
            field=models.PositiveSmallIntegerField(default=2),
        ),
    ]
