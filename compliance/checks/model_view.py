"""A submitted model as the lineage engine reads it: which artifact is a model's entry (a GGUF
file, a sharded model's index, a lone safetensors file), the files of its folder, and a temporary
folder view of them. Shared by the lineage and training-evidence checks (neither imports the other).
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from compliance.checks import storage_place
from compliance.engine.weights import gguf_split_names
from projects.models import Artifact
from projects.storage import StoredRangeReader, stored_file_is_local, stored_range_reader

# Names of the files a model directory view is made of (the lineage engine reads these).
MODEL_FILES = {"config.json", "tokenizer.json", "tokenizer.model", "vocab.txt", "tokenizer_config.json",
               "special_tokens_map.json", "merges.txt", "README.md", "generation_config.json",
               "model.safetensors.index.json"}


def _folder(artifact: Artifact) -> str:
    return str(PurePosixPath(artifact.original_name).parent)


def _base(artifact: Artifact) -> str:
    return PurePosixPath(artifact.original_name).name


def model_entry(artifact: Artifact) -> bool:
    """GGUF files (a split GGUF's first file); a sharded model's index; a single safetensors file
    with no index beside it."""
    if artifact.kind not in {Artifact.Kind.WEIGHTS, Artifact.Kind.OTHER}:
        return False
    name = _base(artifact).lower()
    if name.endswith(".gguf"):
        # A split GGUF is one model, entered by its first file (compliance.engine.weights.gguf_split_names).
        split = gguf_split_names(_base(artifact))
        return split is None or split[0] == _base(artifact)
    if name == "model.safetensors.index.json":
        return True
    if name.endswith(".safetensors"):
        siblings = Artifact.objects.filter(submission_id=artifact.submission_id,
                                           original_name__endswith="model.safetensors.index.json")
        return not any(_folder(s) == _folder(artifact) for s in siblings)
    return False


def artifacts_read(artifact: Artifact) -> list[Artifact]:
    """What the lineage check reads: a GGUF file alone (a split GGUF's files, all of them), or the
    model files of its folder (the check waits for intake to accept every one of them)."""
    if _base(artifact).lower().endswith(".gguf"):
        split = gguf_split_names(_base(artifact))
        if split is None:
            return [artifact]
        return sorted((a for a in Artifact.objects.filter(submission_id=artifact.submission_id)
                       if _folder(a) == _folder(artifact) and _base(a) in split), key=lambda a: a.original_name)
    return [a for a in Artifact.objects.filter(submission_id=artifact.submission_id)
            if _folder(a) == _folder(artifact)
            and (_base(a) in MODEL_FILES or _base(a).lower().endswith(".safetensors"))]


@dataclass
class ModelView:
    """A model folder for the engine: ``path`` (a file or a temporary folder) and the weight
    files held in object storage, by base name, read by range (``remote``)."""

    path: Path
    remote: dict[str, StoredRangeReader] = field(default_factory=dict)


@contextlib.contextmanager
def model_view(artifact: Artifact) -> Iterator[ModelView]:
    """The artifact with its sibling files (same folder of the submission) under their original
    base names in a temporary directory, as the engine expects a model directory. On local
    storage they are linked (nothing copied); on object storage the small files are copied and
    the safetensors weights stay where they are, read by range: lineage samples well under 1 %
    of a large checkpoint's bytes, so a download would cost 100x what the check reads. A GGUF
    file on object storage is read by range too (its header through a sparse stand-in,
    ``compliance.engine.weights.gguf_header_read_source``)."""
    siblings = artifacts_read(artifact)
    with tempfile.TemporaryDirectory(prefix="model-view-") as tmp:
        root = Path(tmp)
        remote: dict[str, StoredRangeReader] = {}
        for sibling in siblings:
            if sibling.status == Artifact.Status.REJECTED:
                continue
            if _base(sibling).lower().endswith((".safetensors", ".gguf")) and not stored_file_is_local(
                    stored_name=sibling.file.name):
                # Pinned to the object intake verified (its version, else its ETag).
                remote[_base(sibling)] = stored_range_reader(stored_name=sibling.file.name, name=_base(sibling),
                                                             identity=sibling.stored_identity)
            else:
                storage_place(sibling.file.name, root / _base(sibling))
        yield ModelView(path=root / _base(artifact) if _base(artifact).lower().endswith(".gguf") else root,
                        remote=remote)


def view_error_text(*, error: Exception, view: ModelView, artifact: Artifact) -> str:
    """The engine's error about a model view, naming what the vendor uploaded: the engine names
    the temporary folder ("model-view-k3j2x: index lists shards that are missing: ..."), which
    means nothing to the vendor; the artifact's name already says which folder it is."""
    text = str(error)
    root = view.path if view.path.is_dir() else view.path.parent
    folder = _folder(artifact)
    text = text.replace(f"{root}/", "").replace(f"{root.name}/", "" if folder in ("", ".") else f"{folder}/")
    return text.removeprefix(f"{root.name}: ").removeprefix(f"{root}: ")


def submitted_models(submission_id: int) -> list[Artifact]:
    """The model entries of a submission (see ``model_entry``), by name."""
    return [a for a in Artifact.objects.filter(submission_id=submission_id).order_by("original_name")
            if model_entry(a)]

