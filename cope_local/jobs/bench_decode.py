"""`cope bench decode`: tokens/s of plain greedy, naive CoPe, optimized CoPe and an HF+PEFT CoPe
loop like the paper's public code (trainer.bench_hf, given by the caller), on the same prompts,
plus the memory of one vs two contexts."""

from __future__ import annotations

import json
import multiprocessing
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

from cope_local.drafting.prompts import render_prompt
from cope_local.drafting.tasks import get_task
from cope_local.engine.engine import BasePacing, Engine, Plan
from cope_local.engine.llama import Context, Model
from cope_local.engine.loader import Loading, cpu_features, decide, requested_mode
from cope_local.gguf import fingerprint
from cope_local.jobs.bench_fixtures import ARTICLES, random_lora
from cope_local.store.models import embedded_model_path


def prompts(engine: Engine, count: int) -> list[list[int]]:
    model, task = engine.model, get_task("headline")
    texts = [render_prompt(task, {"text": a}, model.chat_template()) for a in (ARTICLES * 4)[:count]]
    return [engine.tokenize_prompt(t) for t in texts]


def timed(engine: Engine, prompt_list, plan: Plan, max_tokens: int, schedule: BasePacing | None = None) -> dict:
    """End to end (prompt evaluation included) and generation only (after the first token)."""
    tokens, generating, gen_tokens, needs_base, started = 0, 0.0, 0, 0, time.perf_counter()
    for prompt in prompt_list:
        first = None
        for count, step in enumerate(engine.generate(prompt, plan, max_tokens, schedule=schedule or BasePacing()), 1):  # noqa: B007 (count is read after the loop)
            first = first or time.perf_counter()
            tokens += 1
            needs_base += (step.choice.head_size or 0) > 1
        if first is not None:
            generating += time.perf_counter() - first
            gen_tokens += count - 1
    elapsed = time.perf_counter() - started
    return {"tokens": tokens, "seconds": round(elapsed, 3), "tok_s": round(tokens / elapsed, 2),
            "gen_tok_s": round(gen_tokens / generating, 2) if generating else None,
            "steps_needing_base": needs_base}


def llama_runs(model_path: Path, loras: dict, n_prompts: int, max_tokens: int, threads: int, rounds: int,
               loading: Loading, serial: bool = False) -> dict:
    with Engine(model_path, n_threads=threads, loading=loading) as engine:
        prompt_list = prompts(engine, n_prompts)
        tam, user = ((loras["tam"], 1.0),), ((loras["tam"], 1.0), (loras["user"], 1.0))
        cope = Plan(user=user, base=tam, alpha=0.3, tau=0.1)
        configs = {
            "greedy_base": (Plan(user=()), None),
            "greedy_user": (Plan(user=user), None),
            "cope_naive": (cope, BasePacing(lazy=False, concurrent=False)),
            "cope_optimized": (cope, BasePacing()),
        }
        if serial:  # lazy π_base without the worker thread, for a machine with one free core
            configs["cope_lazy_serial"] = (cope, BasePacing(lazy=True, concurrent=False))
        timed(engine, prompt_list[:2], Plan(user=user), 8)  # warm caches
        timed(engine, prompt_list[:2], cope, 8)
        results = {name: [] for name in configs}
        for _ in range(rounds):  # interleaved, so drift on a shared machine hits every config alike
            for name, (plan, schedule) in configs.items():
                if schedule is not None:
                    schedule = BasePacing(schedule.lazy, schedule.concurrent)
                results[name].append(timed(engine, prompt_list, plan, max_tokens, schedule) | (
                    {"base_evaluations": schedule.base_evaluations} if schedule else {}))
        best = {name: max(runs, key=lambda r: r["gen_tok_s"] or 0) for name, runs in results.items()}
        greedy = best["greedy_user"]["gen_tok_s"]
        best["vs_greedy_user"] = {name: round(r["gen_tok_s"] / greedy, 3) for name, r in best.items()
                                  if name.startswith("cope") and greedy and r["gen_tok_s"]}
        return best


def one_core(model_path: Path, loras: dict, n_prompts: int, max_tokens: int, rounds: int, loading: Loading) -> dict:
    """The same runs in a process pinned to one core (as when another job holds the other one)."""
    cpu = min(os.sched_getaffinity(0))
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"),
                             initializer=os.sched_setaffinity, initargs=(0, {cpu})) as pool:
        runs = pool.submit(llama_runs, model_path, loras, n_prompts, max_tokens, 1, rounds, loading, True).result()
    return {"cpu": cpu, **runs}


def two_at_once(model_path: Path, loading: Loading, tokens: int = 96) -> dict:
    """Decode speed of one context alone and of two decoding at once in two threads, as
    π_base's worker runs beside π_user: the worker can only hide π_base where two decodes
    at once come near twice one (cores that share a memory bus or a physical core do not)."""
    model = Model(model_path, loading)
    try:
        contexts = [Context(model), Context(model)]
        start = model.tokenize(ARTICLES[0])[:16]

        def decode(ctx: Context) -> float:
            ctx.clear()
            ctx.decode(start)
            began = time.perf_counter()
            for _ in range(tokens):
                ctx.decode([start[-1]])
            return time.perf_counter() - began

        alone = min(decode(contexts[0]) for _ in range(2))
        with ThreadPoolExecutor(2) as pool:
            together = max(pool.map(decode, contexts))
    finally:
        model.close()  # closes its contexts first
    return {"alone_tok_s": round(tokens / alone, 1), "each_of_two_tok_s": round(tokens / together, 1),
            "two_vs_one": round(2 * alone / together, 2)}


def memory(model_path: Path, contexts: int, lora: Path, loading: Loading) -> dict:
    """RSS (bytes) of a fresh process after imports, and after drafting with `contexts` contexts."""
    code = (
        "from pathlib import Path; from cope_local.engine.engine import Engine, Plan;"
        "rss = lambda: int(open('/proc/self/statm').read().split()[1]) * 4096;"
        "before = rss();"
        f"e = Engine(Path({str(model_path)!r}));"
        f"p = e.tokenize_prompt('<|im_start|>user\\nhello there<|im_end|>\\n<|im_start|>assistant\\n');"
        f"plan = Plan(user=((Path({str(lora)!r}), 1.0),), base=(() if {contexts} == 2 else None));"
        "list(e.generate(p, plan, 16));"
        "print(before, rss())"
    )
    env = {**os.environ, "COPE_LLAMA_BUFFERS": loading.mode}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    before, after = map(int, out.stdout.split())
    return {"process_bytes": after, "engine_bytes": after - before}


def buffer_modes(model_path: Path) -> tuple[Loading, list[Loading]]:
    """The loader's verdict here, and the modes worth timing: plain always, extra where it works."""
    verdict = decide(model_path, fingerprint(model_path), requested_mode())
    modes = [Loading("plain", "plain", "benchmark")]
    if verdict.mode == "extra":
        modes.append(Loading("extra", "extra", "benchmark"))
    return verdict, modes


def run(n_prompts: int = 8, max_tokens: int = 64, threads: int = 1, rounds: int = 3, hf_prompts: int | None = None,
        model_path: Path | None = None, paper_loop: Callable[..., dict] | str | None = None) -> dict:
    """`paper_loop`: the paper's HF+PEFT loop to time beside ours (trainer.bench_hf.paper_loop),
    or why it cannot run here (a missing package), or None not to time it."""
    model_path = model_path or embedded_model_path()
    verdict, modes = buffer_modes(model_path)
    with tempfile.TemporaryDirectory() as folder:
        loras = {"tam": random_lora(Path(folder) / "tam.gguf", 1, base_path=model_path),
                 "user": random_lora(Path(folder) / "user.gguf", 2, std=0.03, base_path=model_path)}
        by_mode = {m.mode: llama_runs(model_path, loras, n_prompts, max_tokens, threads, rounds, m) for m in modes}
        llama = by_mode[verdict.mode] if verdict.mode in by_mode else by_mode["plain"]
        single = one_core(model_path, loras, n_prompts, max_tokens, rounds, verdict) if len(os.sched_getaffinity(0)) > 1 else None
        one, two = memory(model_path, 1, loras["user"], verdict), memory(model_path, 2, loras["user"], verdict)
        parallel = two_at_once(model_path, verdict)
    loops = {}
    if isinstance(paper_loop, str):
        loops = {"skipped": f"needs the train extra ({paper_loop} missing)"}
    elif paper_loop is not None:
        loops = {dtype: paper_loop(model_path, hf_prompts or n_prompts, max_tokens, dtype) for dtype in ("float32", "bfloat16")}
    optimized = llama["cope_optimized"]["gen_tok_s"]
    versus = {}
    for dtype, loop in loops.items():
        if isinstance(loop, dict) and loop["gen_tok_s"]:
            versus[f"optimized_vs_hf_{dtype}"] = round(optimized / loop["gen_tok_s"], 2)
            versus[f"optimized_vs_hf_{dtype}_end_to_end"] = round(llama["cope_optimized"]["tok_s"] / loop["tok_s"], 2)
    result = {
        "model": str(model_path), "cpu": cpu_name(), "prompts": n_prompts, "max_tokens": max_tokens,
        "threads_per_context": threads, "rounds": rounds,
        "buffers": {"in_use": verdict.as_dict(), "cpu_features": cpu_features(),
                    "by_mode": {mode: {name: r["gen_tok_s"] for name, r in runs.items() if isinstance(r, dict) and "gen_tok_s" in r}
                                for mode, runs in by_mode.items()}},
        **llama, "one_core": single, "two_decodes_at_once": parallel, "hf_peft_cope": loops,
        "ratios": {
            "optimized_vs_greedy_user": round(optimized / llama["greedy_user"]["gen_tok_s"], 3),
            "optimized_vs_greedy_base": round(optimized / llama["greedy_base"]["gen_tok_s"], 3),
            "naive_vs_greedy_user": round(llama["cope_naive"]["gen_tok_s"] / llama["greedy_user"]["gen_tok_s"], 3),
            "optimized_vs_naive": round(optimized / llama["cope_naive"]["gen_tok_s"], 3),
            **versus,
        },
        "memory": {
            "one_context": one, "two_contexts": two,
            "process_ratio": round(two["process_bytes"] / one["process_bytes"], 3),
            "engine_ratio": round(two["engine_bytes"] / one["engine_bytes"], 3),
        },
    }
    return result


def cpu_name() -> str:
    """Which CPU the numbers came from (the project's machines change between sessions)."""
    info = Path("/proc/cpuinfo")
    lines = info.read_text(errors="replace").splitlines() if info.exists() else []
    names = [line.partition(":")[2].strip() for line in lines if line.startswith("model name")]
    return names[0] if names else platform.processor() or platform.machine()


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
