"""Execute every course notebook once, in order, and store what a reader should see.

    scripts/notebooks.py [--out DIR] [--spec SPEC] [--timeout S] NOTEBOOK...

Against the engine the environment names (scripts/notebooks.sh starts a DinD engine of
its own and calls this). Each notebook runs in a fresh kernel, in a scratch copy of its
folder (so the learner's workspace is not touched), with nbclient. Only when every one has
run are the executed notebooks written to DIR (default: where they came from), cleaned:
- no ANSI escape codes in any output (IPython colours its tracebacks);
- no volatile metadata (timings, widget state no output refers to);
- the same stamp in each: ``metadata.labkit = {run, engine, image_store, ...}``.
"""

from __future__ import annotations

import argparse
import copy
import json
import re
import secrets
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from labkit.engine.text import strip_ansi

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
_MODEL_REF = re.compile(r"IPY_MODEL_([0-9a-f]+)")


def plain(value: Any) -> Any:
    """``value`` (text, a list of lines, or JSON data) without ANSI escapes in its strings."""
    if isinstance(value, str):
        return strip_ansi(value)
    if isinstance(value, list):
        return [plain(x) for x in value]
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    return value


def clean_outputs(nb: Any) -> None:
    """Strip ANSI codes from every output, and each cell's execution timings."""
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
        for out in cell.get("outputs", []):
            for key in ("text", "evalue", "traceback"):
                if key in out:
                    out[key] = plain(out[key])
            if "data" in out:
                out["data"] = plain(out["data"])


def referenced_models(nb: Any) -> set[str]:
    """Widget models some output displays, with every model they refer to (children, layouts)."""
    roots = {out["data"][WIDGET_VIEW]["model_id"] for cell in nb.cells
             for out in cell.get("outputs", []) if WIDGET_VIEW in out.get("data", {})}
    state = nb.metadata.get("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    seen: set[str] = set()
    todo = list(roots)
    while todo:
        model = todo.pop()
        if model in seen or model not in state:
            continue
        seen.add(model)
        todo += _MODEL_REF.findall(json.dumps(state[model]))
    return seen


def prune_widget_state(nb: Any) -> None:
    """Keep only the widget state that a stored output needs; drop the key when none does."""
    widgets = nb.metadata.get("widgets", {}).get(WIDGET_STATE)
    keep = referenced_models(nb)
    if not widgets or not keep:
        nb.metadata.pop("widgets", None)
        return
    widgets["state"] = {k: v for k, v in widgets["state"].items() if k in keep}


def engine_stamp(spec: str, run_id: str) -> dict[str, str]:
    """What the outputs came from: the run, the engine's version and image store."""
    from labkit.engine import client as engine

    facts = engine.info()
    return {"run": run_id, "engine": facts.version, "api": facts.api_version,
            "image_store": facts.image_store, "storage_driver": facts.storage_driver,
            "engine_spec": spec}


def execute(paths: list[Path], timeout: int) -> list[Any]:
    """Run each notebook in a fresh kernel, in order, in one scratch folder."""
    done = []
    with tempfile.TemporaryDirectory(prefix="labkit-notebooks-") as scratch:
        for path in paths:
            nb = nbformat.read(path, as_version=4)
            started = time.monotonic()
            client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                                    record_timing=False,
                                    resources={"metadata": {"path": scratch}})
            try:
                client.execute()
            except CellExecutionError as exc:
                print(f"notebooks: {path.name} failed:\n{plain(str(exc))}", file=sys.stderr)
                raise SystemExit(1) from None
            print(f"notebooks: {path.name} ran in {time.monotonic() - started:.1f} s",
                  flush=True)
            done.append(nb)
    return done


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, help="write the executed notebooks here")
    parser.add_argument("--spec", default="", help="the engine spec, for the stamp")
    parser.add_argument("--run-id", default="")
    parser.add_argument("--timeout", type=int, default=600, help="seconds per cell")
    args = parser.parse_args(argv)
    paths = sorted(args.notebooks, key=lambda p: p.name)
    run_id = args.run_id or (time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
                             + f"-{secrets.token_hex(3)}")
    stamp = engine_stamp(args.spec, run_id)
    print(f"notebooks: run {run_id} on Docker {stamp['engine']} ({stamp['image_store']})")
    executed = execute(paths, args.timeout)
    for path, nb in zip(paths, executed, strict=True):
        clean_outputs(nb)
        prune_widget_state(nb)
        nb.metadata["labkit"] = copy.deepcopy(stamp)
        out = (args.out or path.parent) / path.name
        out.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, out)
        print(f"notebooks: wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
