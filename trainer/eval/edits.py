"""`cope eval --edits N`: a simulated person who rewrites the model's drafts. Of a test user's
history (oldest first; the test questions are already out of it), the newest items are held out
by tuning as ever; the N before them are the edits: night 1 trains on everything older, its CoPe
drafts those N, and the person "edits" each into what they really wrote (an edited draft: a real
preference pair); night 2 then trains on the whole history with those pairs. Compared with a run
without --edits on the same users (the same N items as plain history), it measures what learning
from edits adds. No test question, and nothing newer than the edits, reaches night 1."""

from __future__ import annotations

import json

from cope_local.drafting.draft import prepare
from cope_local.drafting.tasks import Task
from cope_local.engine.engine import Engine
from cope_local.errors import CopeError
from cope_local.eval.protocol import Settings
from cope_local.jobs.draft import person_adapters
from cope_local.progress import Report
from cope_local.store import drafts
from cope_local.store.database import Store
from cope_local.store.models import resolve
from trainer import tuning
from trainer.pipeline import Job


def plan(history: list, settings: Settings) -> tuple[list, list, list]:
    """(night 1's history, the edit items, the items newer than them) of a history oldest first:
    the newest items are what tuning holds out of night 2 (none without --tune), the N before
    them the edits, the rest night 1's."""
    held = len(tuning.split(list(reversed(history)))[1]) if settings.tune else 0
    older = len(history) - held - settings.edits
    if older < 1 or settings.edits < 1:
        raise CopeError(f"--edits {settings.edits} leaves no history for the first night ({len(history)} items)",
                        hint="give fewer --edits, or a larger --max-profile")
    return history[:older], history[older:older + settings.edits], history[older + settings.edits:]


def first_night(store: Store, engine: Engine, profile: str, task: Task, history: list, settings: Settings,
                options, report: Report) -> None:
    """Night 1 on the older history; its CoPe drafts of the edit items; then, in one transaction,
    those drafts accepted as the person rewrote them and the newer items added as plain history:
    the store as night 2 finds it. A rerun picks up where a kill left it (night 1 is skipped while
    its history is unchanged, drafts already made are kept)."""
    profile_id = store.profile_id(profile)
    made = {json.dumps(json.loads(d["inputs"]), sort_keys=True): d for d in drafts.of_profile(store, profile_id)}
    if any(d["accepted_at"] for d in made.values()):
        return  # the edits are in: night 2 is next
    older, edited, newer = plan(history, settings)
    outcome = Job(store, profile, options=options, report=report).train_task(task)
    adapters, user = person_adapters(store, task.name, profile_id, resolve(store), [])
    if outcome.status == "failed" or user is None:
        raise CopeError(f"night 1 of {profile} failed: {outcome.message}", hint="a rerun resumes it")
    older_outputs = [output for _, output, _ in reversed(older)]
    kept = []
    for inputs, output, date in edited:
        found = made.get(json.dumps(inputs, sort_keys=True))
        if found is None:
            draft = prepare(engine, task, inputs, "cope", adapters, user.metrics.get("tuning"), older_outputs)
            draft_id = drafts.add(store, profile_id, task.name, inputs, draft.method, draft.settings.as_dict(),
                                  draft.complete(), user.id)
        else:
            draft_id = found["id"]
        kept.append((draft_id, output, date))
    with store.transaction():  # all or nothing: a rerun finds the edits in, or night 1's store as it was
        for draft_id, output, date in kept:
            drafts.mark_accepted(store, draft_id, output, date)
        for inputs, output, date in newer:
            store.add_writing(profile_id, task.name, inputs, output, written_at=date)
