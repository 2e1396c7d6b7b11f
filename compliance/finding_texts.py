"""What a finding says, in the reader's language: one registry from finding code to sentences.

A finding is stored as a code, parameters (``Finding.params``) and evidence; its English title
and explanation are kept as written when it was found (the record, and the fallback). Wherever
a finding is shown (submission page, API, e-mail, dossier) its words come from here, through the
translation catalogue (``locale/<lang>/LC_MESSAGES/django.po``), so a Korean reader reads Korean:

* ``title``: one line;
* ``what``: what was found and why it matters, in plain words (no p-values);
* ``todo``: what the vendor should do;
* ``check``: what a reviewer should check.

The vendor reads what + todo; a reviewer reads what + todo + check. The statistics and raw
evidence stay one click away for reviewers (the templates' ``<details>``).

Placeholders are ``%(name)s``, filled from the finding's params, then from values derived from
its evidence (``_derived``), then with a dash: a missing value never breaks a page. An unknown
code falls back to the stored English title and explanation; ``tests/compliance/
test_finding_texts.py`` fails when any code the code base can emit has no entry here or no Korean.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from django.utils.translation import gettext
from django.utils.translation import gettext_noop as N_

VENDOR, REVIEWER = "vendor", "reviewer"
AUDIENCES = (VENDOR, REVIEWER)


@dataclass(frozen=True)
class FindingText:
    """The English source sentences of one finding code (gettext_noop: translated when shown)."""

    title: str
    what: str
    todo: str
    check: str


# Shared "what to do" and "what to check" sentences, by kind of problem.
REPACK = N_("Repack the files with a standard tool (plain files, relative paths, no links) and upload again.")
REPACK_CHECK = N_("Check whether a normal packing tool could have produced this; a crafted archive is a reason "
                  "to reject the file.")
REUPLOAD = N_("Upload the file again; if it is damaged on your side, export it again from the original.")
REUPLOAD_CHECK = N_("Confirm the new upload passes intake: a file that cannot be read cannot be checked further.")
PICKLE_TODO = N_("Convert the weights to safetensors, which holds only numbers, and upload again.")
PICKLE_CHECK = N_("Read which functions the file imports (evidence) and never load it outside a sandbox.")
STRUCT_TODO = N_("Save the file again with a standard tool so that any parser reads it the same way, and upload "
                 "again.")
STRUCT_CHECK = N_("Check that the content is what the file claims to be; parsers that disagree can be used to "
                  "hide content.")
LIMIT_TODO = N_("Split the upload or make it smaller than the limit, or ask the programme officer about the "
                "limit.")
LIMIT_CHECK = N_("Decide whether the size is plausible for this kind of file.")
INFO_TODO = N_("Nothing to do unless a reviewer asks.")
INFO_CHECK = N_("No action needed; it is recorded for completeness.")
LICENCE_CHECK = N_("Check the files and licences listed in the evidence against the programme's policy.")
LINEAGE_CHECK = N_("Open the statistics and the layer map below; a real derivation shows many layers matching "
                   "in order.")

# The lineage engine's component kinds, as a finding names them.
COMPONENT_LABELS = {"language": N_("language model"), "vision": N_("vision encoder"),
                    "audio": N_("audio encoder"), "projector": N_("projector")}
# Training evidence: what to do and check, shared by its findings.
TE_MORE = N_("Upload more checkpoints of the run (step 0 and at least two more, closer together).")
TE_EXPLAIN = N_("Explain this with your training records, or upload corrected evidence.")
TE_CHECK = N_("Read the numbers in the evidence below and the vendor's training records; the training evidence supports a "
   "from-scratch claim only when its verdict is consistent.")

TEXTS: dict[str, FindingText] = {
    # Pipeline: checks that could not run or finish.
    "check_incomplete": FindingText(
        N_("%(check)s could not complete on %(artifact)s"),
        N_("%(reason)s. Until this check completes nothing is known about what it tests."),
        N_("Fix the cause if it is on your side; the check is then run again."),
        N_("Re-run it once the cause is fixed, or waive this finding with a justification.")),
    # A challenge's evidence file that the intake engine could not inspect (compliance.services.challenges).
    "intake_failed": FindingText(
        N_("Intake could not check this file"),
        N_("The file was stored but could not be inspected; it stays unopened until it is checked."),
        N_("Upload the file again, or send it in another format."),
        N_("Ask for the file again; do not rely on it until intake has checked it.")),
    "check_blocked": FindingText(
        N_("%(check)s not run on %(artifact)s: intake did not accept %(input)s"),
        N_("%(reason)s. The check runs only on files intake accepted."),
        N_("Answer the intake findings on that file, or replace it with a new version."),
        N_("The check runs when a reviewer releases the file (by waiving, or marking as false positive, the "
           "intake findings that hold it) or when a new version replaces it.")),
    # Lineage.
    "declared_base_not_in_registry": FindingText(
        N_("Declared base model %(model)s is not in the registry of known models"),
        N_("The portal holds no fingerprint of %(model)s, so your declaration cannot be verified from the "
           "weights."),
        N_("Nothing to do; the programme may add the model to its registry."),
        N_("Staff can add the model with add_reference_model and re-run the check.")),
    "lineage_no_references": FindingText(
        N_("Lineage not tested: no reference models configured"),
        N_("The programme names no known model to compare with, so the model's origin was not tested."),
        N_("Nothing to do; the programme officer must add reference models."),
        N_("Add reference models to the programme's policy and re-run the check.")),
    "declared_base_confirmed": FindingText(
        N_("Declared base model confirmed: %(reference)s"),
        N_("The weights show the derivation from %(reference)s that you declared: %(layers)s."),
        N_("Nothing to do: the declaration and the weights agree."),
        LINEAGE_CHECK),
    "undeclared_derivation": FindingText(
        N_("Undeclared derivation from %(reference)s"),
        N_("The weights were derived from %(reference)s, which the declaration does not list%(scratch)s: "
           "%(layers)s. Copying weights in this way does not happen by chance."),
        N_("Declare %(reference)s as a base model and explain how it was used, or give the reviewer evidence "
           "of independent training (checkpoints, training logs)."),
        LINEAGE_CHECK),
    "lineage_inconclusive": FindingText(
        N_("Inconclusive against %(reference)s"),
        N_("The comparison with %(reference)s could neither confirm nor rule out a derivation: %(layers)s."),
        N_("If you used %(reference)s in any way, declare it; otherwise a reviewer may ask for training "
           "evidence."),
        N_("Read the reason and the layer map below: partial reuse (some layers or one part only) looks like "
           "this.")),
    "lineage_not_comparable": FindingText(
        N_("Not comparable with %(reference)s"),
        N_("Your model and %(reference)s are built differently (%(difference)s), so their weights cannot be "
           "compared; this is not a risk."),
        INFO_TODO,
        N_("A model pruned to a smaller width from a reference is not detected this way: if the declaration, "
           "tokenizer or configuration point to %(reference)s, ask the vendor.")),
    "declared_base_not_confirmed": FindingText(
        N_("Declared base model %(reference)s not found in the weights"),
        N_("You declared %(reference)s as a base model, but the weights show no derivation from it: %(layers)s."),
        N_("Check that the declaration names the right model and version, and correct it if not."),
        N_("Ask the vendor which model they started from; a wrong declaration may hide the real base.")),
    # Lineage per component of a multimodal model (language model, vision or audio encoder, projector).
    "component_derivation_confirmed": FindingText(
        N_("Declared %(component)s confirmed: derived from the %(reference_component)s of %(reference)s"),
        N_("The weights show that the %(component)s derives from the %(reference_component)s of %(reference)s, "
           "as you declared: %(layers)s."),
        N_("Nothing to do: the declaration and the weights agree."),
        LINEAGE_CHECK),
    "component_derivation_undeclared": FindingText(
        N_("Undeclared %(component)s derived from the %(reference_component)s of %(reference)s"),
        N_("The %(component)s of the weights derives from the %(reference_component)s of %(reference)s, which "
           "the declaration does not list for this component%(scratch)s: %(layers)s. Copying weights in this way "
           "does not happen by chance."),
        N_("Declare %(reference)s as the source of the %(component)s and explain how it was used, or give the "
           "reviewer evidence of independent training (checkpoints, training logs)."),
        N_("Open the layer map of this component below: a real derivation shows many layers matching in order. "
           "The other components' results are listed with it.")),
    "component_declared_not_confirmed": FindingText(
        N_("Declared %(component)s from %(reference)s not found in the weights"),
        N_("You declared that the %(component)s comes from %(reference)s, but the weights of that component show "
           "no derivation from it: %(layers)s."),
        N_("Check that the declaration names the right model and component, and correct it if not."),
        N_("Ask the vendor where this component comes from; a wrong declaration may hide the real source.")),
    "declared_tokenizer_confirmed": FindingText(
        N_("Declared tokenizer confirmed: %(reference)s"),
        N_("The model's tokenizer is the tokenizer of %(reference)s that you declared (%(same_id)s of token ids "
           "are the same)."),
        N_("Nothing to do: the declaration and the files agree."),
        N_("A shared tokenizer is not evidence of shared weights: the weight components are judged separately.")),
    "declared_tokenizer_not_found": FindingText(
        N_("Declared tokenizer of %(reference)s not found"),
        N_("You declared the tokenizer of %(reference)s, but the model's tokenizer differs from it (only "
           "%(same_id)s of token ids are the same)."),
        N_("Check that the declaration names the right tokenizer, and correct it if not."),
        N_("Ask the vendor where the tokenizer comes from.")),
    "no_derivation_found": FindingText(
        N_("No evidence of derivation from %(reference)s"),
        N_("No sign that the weights were copied from %(reference)s: %(layers)s."),
        INFO_TODO,
        N_("This is absence of evidence at the power of the test, not proof of independent training.")),
    # Training evidence (compliance.checks.training_evidence, compliance.engine.training_evidence).
    "training_evidence_malformed": FindingText(
        N_("Training evidence %(artifact)s could not be read"),
        N_("%(reason)s. Nothing in the bundle was judged."),
        N_("Correct the bundle as the reason says (docs/training-evidence.md describes the format) and upload it "
           "again."),
        N_("Until a readable bundle arrives the from-scratch claim has no training evidence.")),
    "too_few_checkpoints": FindingText(
        N_("Too few checkpoints: %(checkpoints)s"),
        N_("The bundle holds %(checkpoints)s checkpoint(s); at least %(minimum)s are needed to show a chain from an "
           "initialisation."),
        TE_MORE,
        TE_CHECK),
    "init_not_measurable": FindingText(
        N_("Step %(step)s could not be measured as an initialisation"),
        N_("No tensor of the first checkpoint could be measured, so whether it is an initialisation is unknown."),
        TE_MORE,
        TE_CHECK),
    "init_norms_not_initial": FindingText(
        N_("Step %(step)s: norm gains are not at their initial value"),
        N_("%(tensors)s norm gain vector(s) of the first checkpoint differ from the value initialisation code sets "
           "(largest difference %(max_deviation)s in %(example)s): it looks trained, not initialised."),
        TE_EXPLAIN,
        TE_CHECK),
    "init_bias_nonzero": FindingText(
        N_("Step %(step)s: biases are not zero"),
        N_("%(tensors)s bias vector(s) of the first checkpoint are not zero (largest %(max_deviation)s in "
           "%(example)s), where initialisation code sets zeros."),
        TE_EXPLAIN,
        TE_CHECK),
    "init_trained_structure": FindingText(
        N_("Step %(step)s shows trained structure"),
        N_("%(tensors)s of %(measured)s sampled matrices of the first checkpoint have the structure training leaves "
           "(%(example)s: heavy tails, uneven rows or strong directions), which a random initialisation does not "
           "have."),
        TE_EXPLAIN,
        TE_CHECK),
    "init_scale_unusual": FindingText(
        N_("Step %(step)s: unusual initial spread"),
        N_("%(tensors)s matrices of the first checkpoint have a spread (sd %(std)s in %(example)s) that matches none "
           "of the usual initialisations of this architecture."),
        N_("Say which initialisation your training code uses (and its scale)."),
        N_("Compare the spread with the vendor's training code; an unusual initialisation is not by itself a problem.")),
    "init_derived_from_reference": FindingText(
        N_("The first checkpoint derives from %(reference)s"),
        N_("The checkpoint presented as the start of training (step %(step)s) shares weights with the registered "
           "model %(reference)s: a run from scratch cannot start there."),
        N_("Declare %(reference)s as a base model, or explain with your training records where this checkpoint came "
           "from."),
        LINEAGE_CHECK),
    "checkpoint_derived_from_reference": FindingText(
        N_("The last checkpoint derives from %(reference)s"),
        N_("The last checkpoint (step %(step)s) shares weights with the registered model %(reference)s: the run did "
           "not end where training from scratch would."),
        N_("Declare %(reference)s as a base model, or explain with your training records where this checkpoint came "
           "from."),
        LINEAGE_CHECK),
    "reference_link_inconclusive": FindingText(
        N_("Step %(step)s against %(reference)s is inconclusive"),
        N_("Whether the first checkpoint shares weights with %(reference)s could neither be confirmed nor ruled out."),
        TE_EXPLAIN,
        LINEAGE_CHECK),
    "chain_break": FindingText(
        N_("The run breaks between step %(previous_step)s and step %(step)s"),
        N_("Step %(step)s does not derive from step %(previous_step)s: the checkpoints come from different runs, as "
           "when two runs are spliced together."),
        N_("Explain the break with your training records (a restart from another checkpoint?), or upload the "
           "checkpoints of one continuous run."),
        N_("Ask for the checkpoints between the two steps; a real run is one chain.")),
    "chain_link_inconclusive": FindingText(
        N_("The link from step %(previous_step)s to step %(step)s is inconclusive"),
        N_("Whether step %(step)s derives from step %(previous_step)s could neither be confirmed nor ruled out."),
        TE_MORE,
        TE_CHECK),
    "checkpoint_not_comparable": FindingText(
        N_("Step %(step)s cannot be compared with step %(previous_step)s"),
        N_("The two checkpoints are built differently, so the link between them cannot be tested."),
        TE_MORE,
        TE_CHECK),
    "submitted_not_derived": FindingText(
        N_("The submitted model does not derive from the last checkpoint"),
        N_("The submitted model (%(submitted)s) does not derive from the last checkpoint (step %(step)s): the "
           "evidence is about another model."),
        N_("Upload the evidence of the run that produced the submitted model."),
        TE_CHECK),
    "submitted_link_inconclusive": FindingText(
        N_("Submitted model against the last checkpoint: inconclusive"),
        N_("Whether the submitted model (%(submitted)s) derives from the last checkpoint (step %(step)s) could "
           "neither be confirmed nor ruled out."),
        TE_MORE,
        TE_CHECK),
    "submitted_not_given": FindingText(
        N_("Submitted model not compared with the last checkpoint"),
        N_("The submitted model was not compared with the last checkpoint (step %(step)s)."),
        INFO_TODO,
        N_("Compare the model with the last checkpoint (manage.py training_evidence --model) before deciding.")),
    "log_start_not_uniform": FindingText(
        N_("The training log starts too low"),
        N_("The log starts at loss %(loss)s (step %(step)s), far below %(uniform_loss)s, the loss of a uniform guess "
           "over %(vocab_size)s tokens: the model already knew something at its first step."),
        TE_EXPLAIN,
        TE_CHECK),
    "log_start_above_uniform": FindingText(
        N_("The training log starts unusually high"),
        N_("The log starts at loss %(loss)s, far above %(uniform_loss)s, the loss of a uniform guess over "
           "%(vocab_size)s tokens."),
        TE_EXPLAIN,
        TE_CHECK),
    "log_steps_not_increasing": FindingText(
        N_("Logged steps go back at step %(step)s"),
        N_("In the training log step %(step)s follows step %(previous_step)s; logged steps must increase."),
        N_("Keep only the entries of the run that continued (after a resume, drop the re-logged steps) and upload "
           "again."),
        TE_CHECK),
    "log_tokens_not_increasing": FindingText(
        N_("Token count falls at step %(step)s"),
        N_("The log's token count falls from %(previous_tokens)s to %(tokens)s at step %(step)s."),
        TE_EXPLAIN,
        TE_CHECK),
    "log_ends_before_checkpoint": FindingText(
        N_("The log ends before the last checkpoints"),
        N_("The training log ends at step %(last_logged_step)s, before checkpoint step(s) %(steps)s."),
        N_("Upload the whole log of the run."),
        TE_CHECK),
    "log_checkpoint_step_missing": FindingText(
        N_("Checkpoint steps missing from the log"),
        N_("The training log has no entry for checkpoint step(s) %(steps)s."),
        N_("Upload the whole log of the run."),
        TE_CHECK),
    "log_starts_after_first_checkpoint": FindingText(
        N_("The log starts after the first checkpoint"),
        N_("The training log starts at step %(first_logged_step)s, after the first checkpoint (step %(step)s)."),
        N_("Upload the whole log of the run."),
        TE_CHECK),
    "log_loss_not_decreasing": FindingText(
        N_("The logged loss does not fall"),
        N_("The loss is %(first_loss)s at the start of the log and %(last_loss)s at its end."),
        TE_EXPLAIN,
        TE_CHECK),
    "compute_mismatch": FindingText(
        N_("Declared compute disagrees with the log"),
        N_("The declared compute (%(compute_flops)s FLOPs) is %(ratio)s times the 6 x parameters x tokens "
           "(%(estimate)s) the log implies."),
        N_("Correct the declared compute, or explain how it was counted."),
        TE_CHECK),
    "compute_unverifiable": FindingText(
        N_("Declared compute cannot be checked"),
        N_("Compute is declared (%(compute_flops)s FLOPs) but the log gives no token count to check it against."),
        N_("Add the tokens seen to the log (a 'tokens' field)."),
        TE_CHECK),
    # Licences and copyright.
    "license-denied": FindingText(
        N_("Denied licence: %(expression)s"),
        N_("%(file_count)s file(s) are under %(expression)s, which the programme does not allow."),
        N_("Remove or replace those files, or ask the programme officer for an exception."),
        LICENCE_CHECK),
    "license-review": FindingText(
        N_("Licence needs review: %(expression)s"),
        N_("%(file_count)s file(s) are under %(expression)s, which the programme's policy asks a reviewer to "
           "look at."),
        N_("Nothing to do unless the reviewer asks."),
        N_("Decide whether this licence is acceptable for the programme.")),
    "license-declared-mismatch": FindingText(
        N_("Declared licence does not match the files"),
        N_("The licence you declared and the licence the files carry disagree."),
        N_("Correct the declaration or the licence files so that they agree."),
        LICENCE_CHECK),
    "license-missing": FindingText(
        N_("No licence declared or shipped"),
        N_("None of the %(files_scanned)s files is a licence file, and nothing declares a licence, so nobody "
           "knows on what terms the work may be used."),
        N_("Add a LICENSE file and declare the licence in the model card or package metadata."),
        LICENCE_CHECK),
    "license-unrecognised": FindingText(
        N_("Licence not recognised"),
        N_("A licence file or declaration does not match any known licence (%(files)s)."),
        N_("Use an SPDX identifier (for example Apache-2.0), or LicenseRef-<name> with the text attached."),
        N_("Read the licence text yourself.")),
    "license-incompatible": FindingText(
        N_("%(inbound)s cannot be included in a %(outbound)s work"),
        N_("Code under %(inbound)s cannot be distributed as part of a work licensed %(outbound)s (OSADL "
           "compatibility matrix)."),
        N_("Remove that code, relicense the work, or obtain permission."),
        LICENCE_CHECK),
    "license-compatibility-check": FindingText(
        N_("%(inbound)s in a %(outbound)s work depends on how it is linked"),
        N_("Whether %(inbound)s code may be part of a %(outbound)s work depends on how the code is combined."),
        N_("Explain how the code is combined if the reviewer asks."),
        N_("Confirm how the code is linked or combined.")),
    "obligation-notice": FindingText(
        N_("NOTICE files must be passed on"),
        N_("Apache-2.0 requires that redistributions include the contents of NOTICE files."),
        N_("Ship the NOTICE files with every copy of the work."),
        INFO_CHECK),
    "obligation-attribution": FindingText(
        N_("Licence texts and copyright notices must be kept"),
        N_("%(licenses)s require the licence text and copyright notices to travel with the code."),
        N_("Keep the licence texts and notices in every copy of the work."),
        INFO_CHECK),
    "obligation-source-offer": FindingText(
        N_("Copyleft code: source must be offered"),
        N_("%(licenses)s oblige whoever distributes the work to offer its source code."),
        N_("Plan to publish or offer the corresponding source."),
        N_("Check that the programme accepts this obligation.")),
    "model-license-obligations": FindingText(
        N_("Model licence with obligations: %(license)s"),
        N_("The model is under %(license)s, which restricts its use or requires attribution or naming."),
        N_("Follow the licence's terms, listed in the evidence."),
        N_("Decide whether the programme accepts these terms.")),
    "model-license-user-threshold": FindingText(
        N_("Model licence user threshold exceeded: %(license)s"),
        N_("The programme expects %(expected)s monthly users; %(license)s requires a separate licence above "
           "%(threshold)s."),
        N_("Obtain a licence from the model's owner, or use another model."),
        LICENCE_CHECK),
    "copyright-other-holder": FindingText(
        N_("Copyright notice of another holder: %(holder)s"),
        N_("%(file_count)s file(s) carry a copyright notice of %(holder)s, who is not the vendor or a "
           "consortium member."),
        N_("Declare that code as third-party code and keep its licence."),
        N_("Check that the code is declared third-party code and that its licence allows this use.")),
    # Copied code.
    "undeclared_third_party_code": FindingText(
        N_("Code copied from %(origin)s, not declared"),
        N_("%(regions)s region(s) of your code (%(lines)s lines) match %(origin)s, which the declaration does not "
           "list as third-party code."),
        N_("Declare %(origin)s as third-party code, with its licence and what it is used for."),
        N_("Training code copied from another project weighs on a claim of own training; check the labels of "
           "the regions.")),
    "third_party_code_use_mismatch": FindingText(
        N_("%(origin)s used otherwise than declared"),
        N_("%(origin)s is declared for %(use)s use, but %(training)s copied region(s) are training code."),
        N_("Correct the declaration of how %(origin)s is used."),
        N_("Confirm which side of the model the copied code serves.")),
    "declared_third_party_code": FindingText(
        N_("Declared code from %(origin)s"),
        N_("The copied code from %(origin)s agrees with your declaration; its licence obligations still apply."),
        INFO_TODO, INFO_CHECK),
    "code_no_references": FindingText(
        N_("Code provenance not tested: no reference code"),
        N_("No indexed code base could be compared with this source, so copied code was not looked for."),
        N_("Nothing to do; the programme must index reference code."),
        N_("Index the code corpora the policy lists and re-run the check.")),
    # Intake: the file as a whole.
    "artifact_too_large": FindingText(
        N_("File too large: %(place)s"),
        N_("%(place)s is above the size limit, so it was not inspected."), LIMIT_TODO, LIMIT_CHECK),
    "artifact_unreadable": FindingText(
        N_("File cannot be read: %(place)s"),
        N_("%(place)s could not be read, so it was not inspected."), REUPLOAD, REUPLOAD_CHECK),
    "artifact_not_regular_file": FindingText(
        N_("Not a regular file: %(place)s"),
        N_("%(place)s is a device, pipe or socket, not a file, so it was not read."), REPACK, REPACK_CHECK),
    "artifact_symlink": FindingText(
        N_("Symbolic link: %(place)s"),
        N_("%(place)s is a link to another file; the target was inspected instead."), REPACK, INFO_CHECK),
    "artifact_broken_symlink": FindingText(
        N_("Broken link: %(place)s"),
        N_("%(place)s is a link that points to nothing."), REPACK, REPACK_CHECK),
    "artifact_empty": FindingText(
        N_("Empty file: %(place)s"),
        N_("%(place)s holds no data."), REUPLOAD, INFO_CHECK),
    "declared_kind_unknown": FindingText(
        N_("Unknown declared kind: %(place)s"),
        N_("The kind given for %(place)s is not one the portal knows."), REUPLOAD, INFO_CHECK),
    "extension_kind_mismatch": FindingText(
        N_("Content does not match the name: %(place)s"),
        N_("The content of %(place)s is not what its name or declared kind says."),
        N_("Upload the file under a name and kind that match its content."), STRUCT_CHECK),
    "declared_kind_mismatch": FindingText(
        N_("Declared kind does not match the content: %(place)s"),
        N_("%(place)s was declared as %(declared)s, but its content is %(detected)s. A file disguised as "
           "another format is a common way to slip code past reviewers."),
        N_("Upload the file under the kind that matches its content, or replace it with the right file."),
        STRUCT_CHECK),
    "kind_unknown": FindingText(
        N_("Content type not recognised: %(place)s"),
        N_("The type of %(place)s was not recognised, so only its hash was checked."), INFO_TODO, INFO_CHECK),
    "inspection_failed": FindingText(
        N_("Inspection failed: %(place)s"),
        N_("%(place)s could not be inspected; a file that cannot be inspected is not treated as clean."),
        REUPLOAD, REUPLOAD_CHECK),
    "text_partially_inspected": FindingText(
        N_("Only part of the text was inspected: %(place)s"),
        N_("%(place)s is long; only its beginning was checked."), INFO_TODO, INFO_CHECK),
    "hidden_zip_archive": FindingText(
        N_("Hidden archive inside a file: %(place)s"),
        N_("%(place)s contains a ZIP archive that its name does not reveal."), REPACK, REPACK_CHECK),
    "pdf_active_content": FindingText(
        N_("PDF with active content: %(place)s"),
        N_("%(place)s contains scripts, actions or embedded files that run or open when the PDF is viewed."),
        N_("Export the PDF again without scripts, actions or attachments."), REPACK_CHECK),
    "npy_object_dtype": FindingText(
        N_("NumPy file of Python objects: %(place)s"),
        N_("%(place)s can only be loaded in a way that runs code."), PICKLE_TODO, PICKLE_CHECK),
    # Intake: weights.
    "weights_unparseable": FindingText(
        N_("Weights file cannot be parsed: %(place)s"),
        N_("%(place)s is not a valid weights file."), REUPLOAD, REUPLOAD_CHECK),
    "safetensors_invalid": FindingText(
        N_("Invalid safetensors file: %(place)s"),
        N_("%(place)s breaks the safetensors format."), REUPLOAD, REUPLOAD_CHECK),
    "safetensors_overlapping_offsets": FindingText(
        N_("Safetensors tensors overlap: %(place)s"),
        N_("In %(place)s two tensors claim the same bytes, which no normal writer produces."), REUPLOAD,
        REPACK_CHECK),
    "safetensors_header_length_invalid": FindingText(
        N_("Safetensors header length invalid: %(place)s"),
        N_("The header of %(place)s gives an impossible length."), REUPLOAD, REUPLOAD_CHECK),
    "safetensors_truncated": FindingText(
        N_("Safetensors file truncated: %(place)s"),
        N_("%(place)s is shorter than its header says: the upload was probably cut off."), REUPLOAD,
        REUPLOAD_CHECK),
    "safetensors_duplicate_key": FindingText(
        N_("Safetensors tensor named twice: %(place)s"),
        N_("%(place)s names a tensor twice; loaders disagree on which one wins."), REUPLOAD, REPACK_CHECK),
    "safetensors_unclaimed_bytes": FindingText(
        N_("Safetensors file holds unexplained bytes: %(place)s"),
        N_("%(place)s holds bytes that belong to no tensor, where other data can hide."), REUPLOAD,
        REPACK_CHECK),
    "gguf_invalid": FindingText(
        N_("Invalid GGUF file: %(place)s"),
        N_("%(place)s breaks the GGUF format."), REUPLOAD, REUPLOAD_CHECK),
    # Intake: pickles.
    "pickle_imports_callable": FindingText(
        N_("Pickle imports code: %(place)s"),
        N_("Loading %(place)s would import and run functions; a model file does not need that."),
        PICKLE_TODO, PICKLE_CHECK),
    "pickle_dynamic_import": FindingText(
        N_("Pickle imports code by a computed name: %(place)s"),
        N_("%(place)s builds the name of what it imports while loading, a way to hide code."),
        PICKLE_TODO, PICKLE_CHECK),
    "pickle_extension_registry": FindingText(
        N_("Pickle uses the extension registry: %(place)s"),
        N_("%(place)s refers to objects through pickle's extension registry, which can hide what it loads."),
        PICKLE_TODO, PICKLE_CHECK),
    "pickle_format": FindingText(
        N_("Pickle-based weights: %(place)s"),
        N_("%(place)s is stored with Python pickle; loading it can run code."), PICKLE_TODO, PICKLE_CHECK),
    "pickle_trailing_data": FindingText(
        N_("Data after the pickle ends: %(place)s"),
        N_("%(place)s carries data after its end, where other content can hide."), PICKLE_TODO, PICKLE_CHECK),
    "pickle_scan_failed": FindingText(
        N_("Pickle could not be read: %(place)s"),
        N_("%(place)s could not be read to the end; an unreadable pickle is never treated as clean."),
        PICKLE_TODO, PICKLE_CHECK),
    # Intake: model folders.
    "directory_symlinked_folder": FindingText(
        N_("Linked folder not followed: %(place)s"),
        N_("A folder in %(place)s is a link, which was not followed."), REPACK, REPACK_CHECK),
    "directory_too_many_files": FindingText(
        N_("Too many files in the folder: %(place)s"),
        N_("%(place)s holds more files than intake reads."), LIMIT_TODO, LIMIT_CHECK),
    "directory_symlink_outside": FindingText(
        N_("Link out of the model folder: %(place)s"),
        N_("%(place)s links to a place outside the model folder."), REPACK, REPACK_CHECK),
    "directory_name_invalid_utf8": FindingText(
        N_("File name is not valid UTF-8: %(place)s"),
        N_("A name in %(place)s is not valid text, so tools show it differently."), REPACK, REPACK_CHECK),
    "hf_index_invalid": FindingText(
        N_("Invalid weights index: %(place)s"),
        N_("%(place)s does not say which file holds which tensor."), REUPLOAD, REUPLOAD_CHECK),
    "hf_index_path_traversal": FindingText(
        N_("Weights index points outside the folder: %(place)s"),
        N_("%(place)s names a path instead of a file of the model folder."), REPACK, REPACK_CHECK),
    "hf_index_missing_shard": FindingText(
        N_("Weights index names missing files: %(place)s"),
        N_("%(place)s lists weight files that were not uploaded."),
        N_("Upload every weight file the index lists."), REUPLOAD_CHECK),
    "hf_index_unlisted_shard": FindingText(
        N_("Weight files not in the index: %(place)s"),
        N_("Some weight files are not listed in %(place)s; loaders ignore them."),
        N_("Remove the stray files or list them in the index."), INFO_CHECK),
    # Intake: archives.
    "archive_path_traversal": FindingText(
        N_("Path leaving the archive: %(place)s"),
        N_("%(place)s would be written outside the folder it is unpacked into."), REPACK, REPACK_CHECK),
    "archive_absolute_path": FindingText(
        N_("Absolute path in the archive: %(place)s"),
        N_("%(place)s has an absolute path and would be written anywhere on the disk."), REPACK, REPACK_CHECK),
    "archive_name_nul": FindingText(
        N_("Hidden character in a name: %(place)s"),
        N_("A name in %(place)s contains a NUL byte, which cuts it short in some tools."), REPACK, REPACK_CHECK),
    "archive_name_empty": FindingText(
        N_("Nameless member in the archive: %(place)s"),
        N_("A member of %(place)s has no name."), REPACK, REPACK_CHECK),
    "archive_name_invalid_utf8": FindingText(
        N_("Member name is not valid UTF-8: %(place)s"),
        N_("A name in %(place)s is not valid text, so tools show it differently."), REPACK, REPACK_CHECK),
    "archive_name_too_long": FindingText(
        N_("Member name too long: %(place)s"),
        N_("A name in %(place)s is longer than file systems allow."), REPACK, REPACK_CHECK),
    "archive_duplicate_member": FindingText(
        N_("Member appears twice: %(place)s"),
        N_("%(place)s appears more than once; tools disagree on which copy wins."), REPACK, REPACK_CHECK),
    "archive_symlink": FindingText(
        N_("Link inside the archive: %(place)s"),
        N_("%(place)s is a symbolic link; links in uploads can point anywhere on the server."), REPACK,
        REPACK_CHECK),
    "archive_hardlink": FindingText(
        N_("Hard link inside the archive: %(place)s"),
        N_("%(place)s is a hard link; unpacking it can overwrite or expose other files."), REPACK, REPACK_CHECK),
    "archive_special_file": FindingText(
        N_("Device or pipe inside the archive: %(place)s"),
        N_("%(place)s is a device, pipe or socket, not a file."), REPACK, REPACK_CHECK),
    "archive_unknown_member_type": FindingText(
        N_("Unusual member type: %(place)s"),
        N_("%(place)s is not a plain file or folder."), REPACK, REPACK_CHECK),
    "archive_encrypted_member": FindingText(
        N_("Encrypted member: %(place)s"),
        N_("%(place)s is encrypted and cannot be inspected."),
        N_("Upload it without encryption."), REPACK_CHECK),
    "archive_unsupported_compression": FindingText(
        N_("Unsupported compression: %(place)s"),
        N_("%(place)s uses a compression method intake cannot read."),
        N_("Repack with ordinary compression (deflate, gzip or none) and upload again."), REUPLOAD_CHECK),
    "archive_compression_bomb": FindingText(
        N_("Compression bomb: %(place)s"),
        N_("%(place)s expands far beyond its size; unpacking it can fill a disk or exhaust memory."),
        REPACK, N_("The file is held until you decide: release it if the content is plausible, reject it "
                   "otherwise.")),
    "archive_high_compression_ratio": FindingText(
        N_("Very high compression: %(place)s"),
        N_("%(place)s compresses unusually well."), INFO_TODO, LIMIT_CHECK),
    "archive_too_many_members": FindingText(
        N_("Too many files in the archive: %(place)s"),
        N_("%(place)s holds more files than intake reads."), LIMIT_TODO, LIMIT_CHECK),
    "archive_expanded_too_large": FindingText(
        N_("Archive too large when unpacked: %(place)s"),
        N_("%(place)s unpacks to more than the limit."), LIMIT_TODO, LIMIT_CHECK),
    "archive_header_too_large": FindingText(
        N_("Archive header too large: %(place)s"),
        N_("A header in %(place)s is larger than any normal archive needs."), REPACK, REPACK_CHECK),
    "archive_size_mismatch": FindingText(
        N_("Member size differs from its header: %(place)s"),
        N_("%(place)s holds a different amount of data than its header says."), REUPLOAD, REPACK_CHECK),
    "archive_crc_mismatch": FindingText(
        N_("Checksum mismatch: %(place)s"),
        N_("The checksum of %(place)s does not match its content: the archive is damaged or was altered."),
        REUPLOAD, REUPLOAD_CHECK),
    "archive_corrupt": FindingText(
        N_("Damaged archive: %(place)s"),
        N_("%(place)s cannot be read as an archive."), REUPLOAD, REUPLOAD_CHECK),
    "archive_nesting_too_deep": FindingText(
        N_("Archives nested too deep: %(place)s"),
        N_("%(place)s holds archives inside archives deeper than intake reads."), REPACK, LIMIT_CHECK),
    "archive_overlapping_members": FindingText(
        N_("Members share bytes: %(place)s"),
        N_("Members of %(place)s overlap, a trick used in compression bombs."), REPACK, REPACK_CHECK),
    "zip_name_mismatch": FindingText(
        N_("Two different names for one member: %(place)s"),
        N_("The two directories of %(place)s name a member differently; tools disagree on what it is."),
        REPACK, REPACK_CHECK),
    "zip_prepended_data": FindingText(
        N_("Data before the ZIP archive: %(place)s"),
        N_("%(place)s starts with data that is not part of the archive, where other content can hide."),
        REPACK, REPACK_CHECK),
    # Intake: structured text.
    "structured_too_large": FindingText(
        N_("Structured file too large: %(place)s"),
        N_("%(place)s is larger than intake parses."), LIMIT_TODO, LIMIT_CHECK),
    "structured_too_deep": FindingText(
        N_("Structured file nested too deep: %(place)s"),
        N_("%(place)s nests deeper than any normal configuration."), STRUCT_TODO, STRUCT_CHECK),
    "structured_invalid_utf8": FindingText(
        N_("Text is not valid UTF-8: %(place)s"),
        N_("%(place)s is not valid UTF-8 text."), STRUCT_TODO, STRUCT_CHECK),
    "structured_unknown_kind": FindingText(
        N_("Unknown structured format: %(place)s"),
        N_("The format of %(place)s is not one intake parses."), STRUCT_TODO, INFO_CHECK),
    "json_invalid": FindingText(
        N_("Invalid JSON: %(place)s"),
        N_("%(place)s is not valid JSON."), STRUCT_TODO, STRUCT_CHECK),
    "json_duplicate_keys": FindingText(
        N_("JSON key given twice: %(place)s"),
        N_("%(place)s gives a key twice; parsers disagree on which value wins."), STRUCT_TODO, STRUCT_CHECK),
    "yaml_invalid": FindingText(
        N_("Invalid YAML: %(place)s"),
        N_("%(place)s is not valid YAML."), STRUCT_TODO, STRUCT_CHECK),
    "yaml_alias_expansion": FindingText(
        N_("YAML aliases expand too far: %(place)s"),
        N_("The aliases of %(place)s expand to a huge document (a \"billion laughs\" bomb)."), STRUCT_TODO,
        STRUCT_CHECK),
    "yaml_too_many_aliases": FindingText(
        N_("Too many YAML aliases: %(place)s"),
        N_("%(place)s uses more aliases than any normal configuration."), STRUCT_TODO, STRUCT_CHECK),
    "yaml_multiple_documents": FindingText(
        N_("Several YAML documents in one file: %(place)s"),
        N_("%(place)s holds several documents; most tools read only the first."), STRUCT_TODO, STRUCT_CHECK),
    "toml_invalid": FindingText(
        N_("Invalid TOML: %(place)s"),
        N_("%(place)s is not valid TOML."), STRUCT_TODO, STRUCT_CHECK),
    "text_invalid_utf8": FindingText(
        N_("Text is not valid UTF-8: %(place)s"),
        N_("%(place)s is not valid UTF-8 text."), STRUCT_TODO, STRUCT_CHECK),
    "text_nul_bytes": FindingText(
        N_("Binary data in a text file: %(place)s"),
        N_("%(place)s contains NUL bytes, which text files do not."), STRUCT_TODO, STRUCT_CHECK),
}

# Codes built with f-strings: f"{check}_not_read" (compliance.checks.too_large_outcome).
PATTERNS: list[tuple[re.Pattern[str], FindingText]] = [
    (re.compile(r"^(?P<check>[a-z_]+)_not_read$"), FindingText(
        N_("File too large for %(check)s"),
        N_("%(reason)s. The check could not read the file, so nothing is known about what it tests."),
        N_("Upload the file inside an archive, or split it."),
        N_("Until the file is read this check says nothing; waive only with a justification."))),
]

# Check verdicts (CheckRun.verdict) as words.
VERDICT_LABELS: dict[str, str] = {
    "derived": N_("Derived from a reference model"),
    "independent": N_("No derivation found"),
    "inconclusive": N_("Inconclusive"),
    "not_comparable": N_("Not comparable with any reference"),
    "accepted": N_("Accepted"),
    "quarantined": N_("Held for review"),
    "rejected": N_("Rejected"),
    "denied": N_("Denied licence found"),
    "review": N_("Needs review"),
    "compliant": N_("Compliant"),
    "copied": N_("Copied code found"),
    "no_copies_found": N_("No copied code found"),
    "consistent": N_("Consistent with training from scratch"),
    "inconsistent": N_("Inconsistent with training from scratch"),
    "insufficient": N_("Insufficient evidence"),
    "malformed": N_("Malformed evidence"),
}


def verdict_label(verdict: str) -> str:
    """A check run's verdict in the active language; unknown verdicts as stored, none as a dash."""
    if not verdict:
        return "—"
    label = VERDICT_LABELS.get(verdict)
    return gettext(label) if label else verdict


def finding_text_entry(code: str) -> tuple[FindingText, dict[str, str]] | None:
    """The registry entry of a code, and the values its pattern captured (f-string codes)."""
    entry = TEXTS.get(code)
    if entry is not None:
        return entry, {}
    for pattern, text in PATTERNS:
        match = pattern.match(code)
        if match:
            return text, match.groupdict()
    return None


class _Values(dict):
    """Placeholder values; a missing one reads as a dash rather than breaking a page."""

    def __missing__(self, key: str) -> str:
        return "—"


def _place(evidence: dict) -> str:
    member, archive = evidence.get("member"), evidence.get("archive")
    if member and archive:
        return f"{member} ({archive})"
    return str(evidence.get("file") or member or archive or evidence.get("path") or "—")


def _check_label(name: str) -> str:
    from compliance.checks import check_registry

    spec = check_registry().get(name)
    return str(spec.label) if spec else name


def _derived(code: str, evidence: dict, captured: dict[str, str]) -> dict[str, Any]:
    """Values the sentences need that older findings (no params) keep in their evidence."""
    values: dict[str, Any] = {"place": _place(evidence)}
    for key in ("declared", "detected", "expression", "file_count", "holder", "inbound", "outbound", "license", "origin", "regions",
                "lines", "files_scanned", "artifact", "input", "threshold", "expected"):
        if key in evidence and evidence[key] not in (None, ""):
            values[key] = evidence[key]
    if isinstance(evidence.get("files"), list):
        values.setdefault("file_count", len(evidence["files"]))
        values["files"] = ", ".join(str(f) for f in evidence["files"][:5])
    if isinstance(evidence.get("licenses"), list):
        values["licenses"] = ", ".join(str(x) for x in evidence["licenses"][:10])
    for key in ("expected", "threshold"):
        if isinstance(values.get(key), int):
            values[key] = f"{values[key]:,}"
    if "check" in captured:
        values["check"] = _check_label(captured["check"])
        values["reason"] = ""
    if "check" in evidence:
        values["check"] = _check_label(str(evidence["check"]))
    reason = evidence.get("error") or evidence.get("reason")
    if reason:
        values["reason"] = str(reason).rstrip(".")
    if isinstance(evidence.get("declared"), dict):
        values["model"] = evidence["declared"].get("name", "—")
        values["use"] = evidence["declared"].get("use") or "other"
    if evidence.get("reference_name"):
        values["reference"] = evidence["reference_name"]
    if isinstance(evidence.get("regions_by_label"), dict):
        values["training"] = evidence["regions_by_label"].get("training", 0)
    if code in ("undeclared_third_party_code", "third_party_code_use_mismatch", "declared_third_party_code"):
        values["origin"] = f"{evidence.get('origin', '—')} {evidence.get('version', '')}".strip()
    return values


def _fill(template: str, values: dict) -> str:
    try:
        return gettext(template) % values
    except (KeyError, TypeError, ValueError):  # a translation with a broken placeholder: English instead
        return template % values


@dataclass(frozen=True)
class RenderedText:
    title: str
    text: str
    known: bool


# The fixed reasons checks give for not completing (CheckOutcome.incomplete), stored in English in a
# finding's params: worded in the reader's language where they are known, as they are here.
KNOWN_REASONS = {
    "no reference model with a fingerprint is configured for this programme":
        N_("no reference model with a fingerprint is configured for this programme"),
    "no reference code is indexed": N_("no reference code is indexed"),
    "none of the policy's code corpora is indexed": N_("none of the policy's code corpora is indexed"),
}


def finding_render(*, code: str, params: dict | None, evidence: dict | None, title: str = "",
                   explanation: str = "", audience: str = VENDOR) -> RenderedText:
    """A finding's title and sentence in the active language for ``audience`` (vendor or reviewer).

    Unknown codes fall back to the stored English title and explanation."""
    found = finding_text_entry(code)
    if found is None:
        return RenderedText(title=title, text=explanation, known=False)
    entry, captured = found
    evidence = evidence if isinstance(evidence, dict) else {}
    values = _Values(_derived(code, evidence, captured))
    if not values.get("reason") and explanation:  # older rows keep the reason in the explanation only
        values["reason"] = explanation.strip().rstrip(".")
    values.update({k: v for k, v in (params or {}).items() if v not in (None, "")})
    if isinstance(values.get("reason"), str) and values["reason"] in KNOWN_REASONS:
        values["reason"] = gettext(KNOWN_REASONS[values["reason"]])
    elif isinstance(values.get("reason"), str):  # a failure the portal wrote (interrupted, over time)
        values["reason"] = error_label(values["reason"])
    if "scratch" in values and values["scratch"] is True:
        values["scratch"] = gettext(", although training from scratch was declared")
    elif values.get("scratch") in (False, "—") or "scratch" not in values:
        values["scratch"] = ""
    for key in ("component", "reference_component"):
        if values.get(key) in COMPONENT_LABELS:
            values[key] = gettext(COMPONENT_LABELS[values[key]])
    if isinstance(values.get("layers"), dict):
        values["layers"] = lineage_layers_sentence(values["layers"])
    if isinstance(values.get("difference"), dict):
        values["difference"] = lineage_difference_sentence(values["difference"])
    parts = [_fill(entry.what, values), _fill(entry.todo, values)]
    if audience == REVIEWER:
        parts.append(_fill(entry.check, values))
    shown_title = _fill(entry.title, values)
    if (params or {}).get("carried"):  # the policy judged licences carried by copied code
        shown_title = gettext("Copied code: %(title)s") % {"title": shown_title}
    return RenderedText(title=shown_title, text=" ".join(p for p in parts if p), known=True)


def lineage_layers_sentence(numbers: dict) -> str:
    """The key lineage numbers with what they mean, e.g. '32 of 32 sampled layers match a layer
    of the reference, 32 in the same position; median similarity of matched rows 0.998, where
    unrelated models score below 0.1'.

    Only centred, aligned statistics are quoted (matched-row correlations): never the raw
    cosine of norm gains, which any two models score near 0.99 (the 2026 dispute's mistake)."""
    values = _Values({k: v for k, v in numbers.items() if v is not None})
    sentence = gettext("%(matched)s of %(sampled)s sampled layers match a layer of the reference, "
                       "%(in_place)s in the same position") % values
    if numbers.get("median_similarity") is not None:
        # Calibration: independent models with the same config and tokenizer score |r| < 0.1 in
        # tests/compliance/engine/lineage (test_independent_models_..._are_not_derived); copies > 0.3.
        values["median_similarity"] = f"{numbers['median_similarity']:.3f}"
        sentence += gettext("; median similarity of matched weight rows %(median_similarity)s, where unrelated "
                            "models score below 0.1") % values
    return sentence


def lineage_difference_sentence(difference: dict) -> str:
    """Why two models cannot be compared, from the engine's shapes."""
    parts = []
    if difference.get("hidden_size"):
        candidate, reference = difference["hidden_size"]
        parts.append(gettext("width %(candidate)s against %(reference)s") % {"candidate": candidate,
                                                                           "reference": reference})
    if difference.get("families") == 0:
        parts.append(gettext("no weight matrices of the same shape"))
    return "; ".join(parts) or "—"


def finding_placeholders(entry: FindingText) -> set[str]:
    """Every placeholder an entry's sentences use (for the tests)."""
    return {m for s in (entry.title, entry.what, entry.todo, entry.check) for m in re.findall(r"%\((\w+)\)s", s)}


def all_entries() -> list[tuple[str, FindingText]]:
    """Every code and pattern in the registry (patterns by their regex)."""
    return [*TEXTS.items(), *((p.pattern, t) for p, t in PATTERNS)]


# Evidence keys that describe our machinery rather than the vendor's files: engine versions,
# method essays, bytes read, byte-level internals of the statistics. Vendors do not see them
# (nor worker host names or server paths); reviewers and ministry users do.
# "norms" (raw cosine of norm gains, kept for reviewers beside the lesson on why it proves nothing)
# is left out too: a vendor should never read it as evidence (the 2026 dispute's mistake).
INTERNAL_EVIDENCE_KEYS = frozenset({"engine_version", "method", "worker", "bytes", "bytes_read", "holm",
                                    "p_value_raw", "resolved", "cache_dir", "stats", "norms"})


def _server_path(value: str) -> bool:
    from django.conf import settings

    roots = [str(getattr(settings, name, "") or "") for name in ("MEDIA_ROOT", "VAR_DIR", "BASE_DIR")]
    import tempfile

    roots.append(tempfile.gettempdir())
    return value.startswith("/") and any(root and value.startswith(root) for root in roots)


def evidence_for_vendor(evidence: Any) -> Any:
    """The evidence without our internals: no engine versions, no server paths (a path under the
    portal's storage or temporary folders shows as its file name)."""
    if isinstance(evidence, dict):
        return {k: evidence_for_vendor(v) for k, v in evidence.items() if k not in INTERNAL_EVIDENCE_KEYS}
    if isinstance(evidence, list):
        return [evidence_for_vendor(v) for v in evidence]
    if isinstance(evidence, str) and _server_path(evidence):
        return evidence.rstrip("/").rsplit("/", 1)[-1]
    return evidence


_ABSOLUTE_PATH = re.compile(r"(?<![\w.])/(?:[\w.@+-]+/)+[\w.@+-]*")


def text_for_vendor(text: str) -> str:
    """A stored message without server paths (each shown as its file name)."""
    return _ABSOLUTE_PATH.sub(lambda m: m.group(0).rstrip("/").rsplit("/", 1)[-1] if _server_path(m.group(0))
                              else m.group(0), text)


# Where a check run stands (CheckRun.step): the steps the checks and the pipeline write, as words.
STEP_LABELS: dict[str, str] = {
    "starting": N_("starting"),
    "done": N_("done"),
    "failed": N_("failed"),
    "reading the file": N_("reading the file"),
    "recording findings": N_("recording findings"),
    "detecting licences file by file": N_("detecting licences file by file"),
    "applying the programme's policy": N_("applying the programme's policy"),
    "reading the model's sampled tensors": N_("reading the model's sampled tensors"),
    "fingerprinting the vendor's code": N_("fingerprinting the vendor's code"),
    "reading the matched regions on both sides": N_("reading the matched regions on both sides"),
    "summarising matches by origin": N_("summarising matches by origin"),
    "queued: intake accepted what it reads": N_("queued: intake accepted what it reads"),
    "not run: intake did not accept the file": N_("not run: intake did not accept the file"),
    "waiting for intake to accept the file": N_("waiting for intake to accept the file"),
    "waiting for a worker": N_("waiting for a worker"),
    "same weights and references as an earlier check: its lineage report is reused":
        N_("same weights and references as an earlier check: its lineage report is reused"),
    "queued again by staff": N_("queued again by staff"),
    "requeued: its worker stopped reporting": N_("requeued: its worker stopped reporting"),
    "re-sent: no worker picked it up": N_("re-sent: no worker picked it up"),
    "waiting for the task queue; checks start when workers are available":
        N_("waiting for the task queue; checks start when workers are available"),
}
_STEP_REFERENCES = re.compile(r"^testing against (\d+) reference model\(s\)$")
_STEP_RETRYING = "retrying after a transient error"
_STEP_TENSORS_OF = "reading the sampled tensors of "  # training evidence: the submitted model's file
# A file-by-file scan's count (compliance.checks.scan_progress).
_STEP_FILES = re.compile(r"^(?P<step>.+): (?P<done>\d+)(?: of (?P<total>\d+))? files checked, "
                         r"(?P<reused>\d+) from earlier results$")


# Failures the portal itself writes (compliance.services.runs, compliance.dossiers); any other error
# is an engine's or a library's message and is shown as stored.
_ERRORS = (
    (re.compile(r"^the check was interrupted (?P<count>\d+) times \(worker killed or out of memory\?\)$"),
     N_("the check was interrupted %(count)s times (worker killed or out of memory?)")),
    (re.compile(r"^the check took longer than its limit of (?P<seconds>\d+) s and was stopped$"),
     N_("the check took longer than its limit of %(seconds)s s and was stopped")),
    (re.compile(r"^rendering was interrupted (?P<count>\d+) times \(worker killed or out of memory\?\)$"),
     N_("rendering was interrupted %(count)s times (worker killed or out of memory?)")),
    # Why a check that needs intake's answer did not run (compliance.services.runs.check_run_inputs_status).
    (re.compile(r"^(?P<name>.+) was rejected \(by intake or by a reviewer\)$", re.DOTALL),
     N_("%(name)s was rejected (by intake or by a reviewer)")),
    (re.compile(r"^intake of (?P<name>.+?) could not complete: (?P<error>.+)$", re.DOTALL),
     N_("intake of %(name)s could not complete: %(error)s")),
    (re.compile(r"^intake of (?P<name>.+) could not complete$", re.DOTALL),
     N_("intake of %(name)s could not complete")),
    (re.compile(r"^intake quarantined (?P<name>.+) until a reviewer decides the intake findings that hold it$",
                re.DOTALL),
     N_("intake quarantined %(name)s until a reviewer decides the intake findings that hold it")),
    # The stored copy no longer matches what was uploaded (compliance.checks.intake); the cause
    # after the name is the storage layer's own words.
    (re.compile(r"^(?P<name>.+): stored file's SHA-256 (?P<stored>\S+) differs from the (?P<recorded>\S+) "
                r"recorded at upload; the stored copy was altered or damaged$", re.DOTALL),
     N_("%(name)s: stored file's SHA-256 %(stored)s differs from the %(recorded)s recorded at upload; "
        "the stored copy was altered or damaged")),
    (re.compile(r"^(?P<name>.+?): (?P<cause>.+); the stored copy was altered or damaged$", re.DOTALL),
     N_("%(name)s: %(cause)s; the stored copy was altered or damaged")),
    # A model folder the lineage and training-evidence checks cannot read as a whole
    # (compliance.engine.weights.model_open, named by compliance.checks.model_view.view_error_text).
    (re.compile(r"^(?P<name>.+?): index lists shards that are missing: (?P<shards>.+)$", re.DOTALL),
     N_("%(name)s: index lists shards that are missing: %(shards)s")),
    (re.compile(r"^(?P<name>.+?): index says (?P<tensor>.+) is in (?P<shard>.+) but that shard does not hold it$",
                re.DOTALL),
     N_("%(name)s: index says %(tensor)s is in %(shard)s but that shard does not hold it")),
    (re.compile(r"^(?P<name>.+?): no \.safetensors or \.gguf weight files found$", re.DOTALL),
     N_("%(name)s: no .safetensors or .gguf weight files found")),
    (re.compile(r"^(?P<name>.+?): non-finite values \(NaN/inf\) in (?P<tensor>.+)$", re.DOTALL),
     N_("%(name)s: non-finite values (NaN/inf) in %(tensor)s")),
    (re.compile(r"^(?P<name>.+?): split GGUF model of (?P<count>\d+) files; missing: (?P<files>.+)$", re.DOTALL),
     N_("%(name)s: split GGUF model of %(count)s files; missing: %(files)s")),
    (re.compile(r"^(?P<name>.+?): file (?P<number>\d+) of (?P<count>\d+) of a split GGUF model; its files must be "
                r"named (?P<first>\S+) to (?P<last>\S+) and read from the first$", re.DOTALL),
     N_("%(name)s: file %(number)s of %(count)s of a split GGUF model; its files must be named %(first)s to "
        "%(last)s and read from the first")),
)


def error_label(error: str) -> str:
    """A failed run's or dossier's error in the active language where the portal wrote it."""
    for pattern, text in _ERRORS:
        match = pattern.match(error or "")
        if match:
            words = match.groupdict()
            if "error" in words:  # intake's own failure, quoted: in the reader's language too where ours
                words["error"] = error_label(words["error"])
            return gettext(text) % words
    return error or ""


def step_label(step: str, *, internals: bool = False) -> str:
    """A check run's step in the active language; the error behind a retry only for ``internals``
    (ministry users: it may name hosts). Unknown steps as stored."""
    if step in STEP_LABELS:
        return gettext(STEP_LABELS[step])
    match = _STEP_REFERENCES.match(step or "")
    if match:
        return gettext("testing against %(count)s reference model(s)") % {"count": match.group(1)}
    if (step or "").startswith(_STEP_TENSORS_OF):
        return gettext("reading the sampled tensors of %(name)s") % {"name": step[len(_STEP_TENSORS_OF):]}
    match = _STEP_FILES.match(step or "")
    if match and match.group("step") in STEP_LABELS:
        numbers = {"step": gettext(STEP_LABELS[match.group("step")]), "done": f"{int(match.group('done')):,}",
                   "reused": f"{int(match.group('reused')):,}"}
        if match.group("total") is None:
            return gettext("%(step)s: %(done)s files checked, %(reused)s from earlier results") % numbers
        return gettext("%(step)s: %(done)s of %(total)s files checked, %(reused)s from earlier results") % {
            **numbers, "total": f"{int(match.group('total')):,}"}
    if (step or "").startswith(_STEP_RETRYING):
        return gettext("retrying after a transient error") + (step[len(_STEP_RETRYING):] if internals else "")
    return step or ""
