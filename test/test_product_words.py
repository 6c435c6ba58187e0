"""The product speaks of the product: no development-process words in what users and maintainers
read. README, CHANGELOG, docs, model cards, config, launch files, scripts, tests, and the comments,
docstrings and strings of the package are checked for

* ``session``/``sessions`` as a process word (in Python only comments and strings are read, so
  code such as ``start_new_session=True`` or ``ort.InferenceSession`` is not text),
* ``issue N`` and ``item N`` (tracker references; upstream references such as ``ros2/geometry2#711``
  are fine),
* helper tags such as ``H3`` or ``H12``,
* commit hashes given as evidence (7-40 hex characters with letters and digits; SHA-256 values, the
  model cards' ``code_version`` and upstream ``rosdistro`` pins are not evidence),
* references into the git-ignored ``runs/`` folder as evidence in the docs and model cards (a
  ``runs/...`` output folder inside a command is fine).

Machine paths (/work/, /home/<user>, ...) are checked by test_no_absolute_paths.py.
Each hit is reported as ``file:line: word: text``.
"""

from __future__ import annotations

import io
import json
import re
import tokenize
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SELF = Path(__file__).resolve()

PROCESS_WORDS = [
    ("session", re.compile(r"\bsessions?\b(?!\.[a-z_])", re.I)),  # not a dotted config key (session.intra_op...)
    ("issue N", re.compile(r"\bissues?\s+#?\d+", re.I)),
    ("item N", re.compile(r"\bitems?\s+\d+", re.I)),
    ("helper tag", re.compile(r"(?<![\w.#/-])H\d{1,2}(?![\w.])")),
]
#: 7-40 hex characters with at least one letter a-f and one digit, not part of a longer hex run
HASH = re.compile(r"(?<![0-9A-Za-z_])(?=[0-9a-f]*[a-f])(?=[0-9a-f]*\d)[0-9a-f]{7,40}(?![0-9A-Za-z_])")
#: "commit 8386339": a hash given as evidence, whatever its characters
COMMIT_WORD = re.compile(r"\bcommit\s+([0-9a-f]{7,40})\b", re.I)
HASH_OK_LINE = re.compile(r"sha256|sha-256|rosdistro|digest|0x[0-9a-f]|#[0-9a-f]{6}\b", re.I)
RUNS = re.compile(r"(?<![\w.-])runs/[\w.*{}\[\],-]+")
#: a ``runs/`` path is an output or input of a command when the same line holds one of these
COMMAND_HINT = re.compile(r"dsc-grasp|\.venv/bin|scripts/|--\w|OMP_NUM_THREADS|tensorboard|^\s*(for |[A-Z_]+=)")


def product_files() -> list[Path]:
    files = [ROOT / "README.md", ROOT / "CHANGELOG.md"]
    files += sorted((ROOT / "docs").rglob("*.md"))
    files += sorted((ROOT / "models").glob("*.json"))
    files += sorted(p for p in (ROOT / "config").rglob("*") if p.is_file())
    files += sorted(p for p in (ROOT / "dsc_grasp_ros").rglob("*.py"))
    files += sorted(p for p in (ROOT / "launch").glob("*") if p.is_file())
    files += sorted(p for p in (ROOT / "scripts").glob("*") if p.is_file())
    files += sorted(p for p in (ROOT / "test").rglob("*.py") if p.resolve() != SELF)
    return [p for p in files if p.is_file() and "__pycache__" not in p.parts]


def python_text(source: str) -> list[tuple[int, str]]:
    """(line, text) of the comments and string literals of Python source (not its code)."""
    out = []
    kinds = {tokenize.COMMENT, tokenize.STRING}
    kinds |= {getattr(tokenize, "FSTRING_MIDDLE", -1)}
    try:
        for tok in tokenize.generate_tokens(io.StringIO(source).readline):
            if tok.type in kinds:
                # a string on a line that says what its hex is (a digest, a sha256) keeps that context
                context = f"  [{tok.line.strip()}]" if tok.type == tokenize.STRING and HASH_OK_LINE.search(tok.line) else ""
                for i, part in enumerate(tok.string.splitlines() or [""]):
                    out.append((tok.start[0] + i, part + context))
    except (tokenize.TokenError, SyntaxError, IndentationError):
        return list(enumerate(source.splitlines(), 1))
    return out


def json_text(source: str) -> list[tuple[int, str]]:
    """Lines of a JSON file, without the values of keys that are identifiers, not prose."""
    out = []
    for i, line in enumerate(source.splitlines(), 1):
        if re.match(r'\s*"(commit|weights_sha256|sha256)"\s*:', line):
            continue
        out.append((i, line))
    return out


def text_lines(path: Path) -> list[tuple[int, str]]:
    try:
        source = path.read_text(encoding="utf-8")
    except (UnicodeDecodeError, OSError):
        return []
    if path.suffix == ".py":
        return python_text(source)
    if path.suffix == ".json":
        return json_text(source)
    return list(enumerate(source.splitlines(), 1))


def check_text(name: str, lines, docs: bool) -> list[str]:
    hits = []
    in_fence = False
    for n, line in lines:
        if line.lstrip().startswith("```"):
            in_fence = not in_fence
        for word, rx in PROCESS_WORDS:
            for m in rx.finditer(line):
                hits.append(f"{name}:{n}: {word}: {m.group(0)!r} in {line.strip()[:120]!r}")
        if not HASH_OK_LINE.search(line):
            found = {m.group(0) for m in HASH.finditer(line)} | {m.group(1) for m in COMMIT_WORD.finditer(line)}
            for h in sorted(found):
                hits.append(f"{name}:{n}: commit hash: {h!r} in {line.strip()[:120]!r}")
        if docs and not in_fence and not COMMAND_HINT.search(line):
            for m in RUNS.finditer(line):
                hits.append(f"{name}:{n}: runs/ as evidence: {m.group(0)!r} in {line.strip()[:120]!r}")
    return hits


def check_file(path: Path) -> list[str]:
    rel = path.relative_to(ROOT).as_posix()
    docs = path.suffix in (".md", ".json") and rel.split("/")[0] in ("README.md", "CHANGELOG.md", "docs", "models")
    return check_text(rel, text_lines(path), docs)


def test_no_process_words_in_the_product():
    hits = [h for p in product_files() for h in check_file(p)]
    for h in hits:
        print(h)
    assert not hits, f"{len(hits)} process word(s) in the product:\n" + "\n".join(hits)


def test_checker_catches_planted_examples(tmp_path):
    planted = {
        "notes.md": "Measured in session 7 at commit 8386339 (issue 9, item 5; added by H3): `runs/bench_s8`.\n",
        "mod.py": '"""Written in a session without a GPU."""\nx = 1  # issue 11, item 2\n',
        "card.json": json.dumps({"source": "runs/bench_s8/summary.json", "note": "sessions 6-7"}, indent=1) + "\n",
    }
    for name, text in planted.items():
        (tmp_path / name).write_text(text)
    hits = []
    for name in planted:
        p = tmp_path / name
        hits += check_text(name, text_lines(p), docs=p.suffix in (".md", ".json"))
    text = "\n".join(hits)
    for expected in ("notes.md:1: session", "notes.md:1: commit hash: '8386339'", "notes.md:1: issue N", "notes.md:1: item N",
                     "notes.md:1: helper tag: 'H3'", "notes.md:1: runs/ as evidence", "mod.py:1: session", "mod.py:2: issue N",
                     "card.json:2: runs/ as evidence", "card.json:3: session"):
        assert expected in text, f"{expected!r} not caught:\n{text}"


def test_checker_leaves_technical_text_alone(tmp_path):
    ok = {
        "code.py": "import subprocess\nsubprocess.Popen(['x'], start_new_session=True)\nsess = ort.InferenceSession('m.onnx')\n"
                   "opts.add_session_config_entry('session.intra_op.allow_spinning', '0')\n",
        "doc.md": ("Upstream: ros2/geometry2#711, ros2/rclpy#398. Quaternion (0.0, 0.7071068, 0.0, 0.7071068).\n"
                   "```bash\n.venv/bin/dsc-grasp bench --out runs/bench\n```\n"
                   "`dsc-grasp train ... --out runs/cw_rgbd` then `dsc-grasp export runs/cw_rgbd`\n"
                   "weights_sha256 b9dd11031172f3a9162f5cb200271970f8e418889382cbb2dbb924ee111eff13, model 0.1.0, 2026-12-03\n"),
        "card.json": json.dumps({"code_version": {"commit": "8c2101c529d5e4a5581123ff18b58004e71bf78a"}}, indent=1) + "\n",
    }
    hits = []
    for name, text in ok.items():
        (tmp_path / name).write_text(text)
        hits += check_text(name, text_lines(tmp_path / name), docs=not name.endswith(".py"))
    assert not hits, "\n".join(hits)
