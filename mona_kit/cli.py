"""The ``mona-kit`` command line. Each verb lives in ``mona_kit.commands.<verb>``;
plugins add verbs through ``register_commands``."""

from __future__ import annotations

import argparse
import difflib
import importlib
import io
import os
import sys
from collections.abc import Sequence
from typing import TextIO

from .errors import MonaError, PluginError

# OpenMP threads that spin while waiting collapse on a shared CPU (a 2-thread step ran 8x slower
# than with passive waits, benchmarks/bench_threads.py); read once when torch loads, so set here.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

#: Built-in verbs: module name under mona_kit.commands.
VERBS = ("run", "sweep", "list", "describe", "plugins", "hooks", "data", "gap", "plot")

HELP = {
    "run": "run a method on a task (no arguments: the embedded default, MoNA beside fine-tuning and the linear reference)",
    "list": "list registered components of a kind, optionally filtered by a glob",
    "describe": "show a component's summary, config fields and providing plugin",
    "plugins": "list loaded plugins and what each contributes",
    "hooks": "list the hooks a plugin can implement",
    "data": "list, describe and verify datasets",
    "sweep": "run methods x tasks x seeds from a profile (resumable) and write tables and plots",
    "gap": "estimate the modality gap between target and source proxy data before training",
    "plot": "plot learning and knowledge-reuse curves of run directories",
}


class _Parser(argparse.ArgumentParser):
    """argparse's parser with its usage errors on one line (what is wrong, then where the help is), for
    the top parser and, through add_subparsers, every verb's. ``--help`` is argparse's own."""

    #: Set by a verb (``list``) whose optional positional may follow its flags: ``list methods --json 'mon*'``.
    intermixed = False
    _intermixing = False

    def parse_known_args(self, args=None, namespace=None):  # type: ignore[override]
        if self.intermixed and not self._intermixing:  # argparse's intermixed parse calls back in here
            self._intermixing = True
            try:
                return self.parse_known_intermixed_args(args, namespace)
            finally:
                self._intermixing = False
        return super().parse_known_args(args, namespace)

    def error(self, message: str):  # type: ignore[override]
        prefix = "the following arguments are required: "
        if message.startswith(prefix):  # argparse counts a missing name's trailing KEY=VALUE list (nargs='*') as missing too
            optional = {argparse._get_action_name(a) for a in self._actions if not a.option_strings and a.nargs == "*"}
            names = [n for n in message[len(prefix):].split(", ") if n not in optional]
            message = prefix + ", ".join(names or message[len(prefix):].split(", "))
        self.exit(2, f"{self.prog}: error: {' '.join(message.split())}; see '{self.prog} --help'.\n")


def _load_verb(name: str):
    return importlib.import_module(f"mona_kit.commands.{name.replace('-', '_')}")


def build_parser(kit=None) -> argparse.ArgumentParser:
    # allow_abbrev=False everywhere: argparse would take --overwrit for --overwrite, a flag that deletes.
    parser = _Parser(prog="mona-kit", description="Cross-modality transfer: MoNA, ORCA, PaRe and baselines.", allow_abbrev=False)
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = parser.add_subparsers(dest="verb", metavar="VERB")
    for verb in VERBS:
        try:
            module = _load_verb(verb)
        except ModuleNotFoundError:
            continue
        p = sub.add_parser(verb, help=HELP[verb], description=HELP[verb], allow_abbrev=False)
        module.configure(p)
        p.set_defaults(_handler=module.run)
    if kit is not None:
        for entry in kit.commands:
            if entry.name in VERBS:  # the built-in verb stays; refusing here would break every verb
                print(f"mona-kit: warning: plugin {entry.provider} registers CLI verb {entry.name!r}, which is built in; "
                      f"its command is left out - rename it in the plugin.", file=sys.stderr)
                continue
            p = sub.add_parser(entry.name, help=entry.summary, description=entry.summary, allow_abbrev=False)
            try:
                entry.meta["configure"](p)
            except Exception as exc:  # only this verb is broken: the others keep working, this one says why
                sub.choices[entry.name] = _broken_verb(p.prog, PluginError(
                    f"plugin {entry.provider}: configure(parser) of its command {entry.name!r} raised "
                    f"{type(exc).__name__}: {exc}; fix the plugin's configure (other verbs still work)."
                ))
                continue
            p.set_defaults(_handler=entry.factory)
    return parser


def _broken_verb(prog: str, error: PluginError) -> _Parser:
    """A stand-in for a plugin verb whose ``configure`` raised (its half-built parser could refuse the
    arguments first): whatever follows it, :func:`_main` raises ``error``."""
    p = _Parser(prog=prog, description=str(error), allow_abbrev=False, add_help=False)
    p.set_defaults(_plugin_error=error)
    return p


def _chosen_parsers(parser: argparse.ArgumentParser, args: argparse.Namespace) -> list[argparse.ArgumentParser]:
    """``parser`` and the (sub-)verb parsers ``args`` chose under it, outermost first."""
    chain = [parser]
    while True:
        chosen = None
        for action in chain[-1]._actions:
            if isinstance(action, argparse._SubParsersAction):
                chosen = action.choices.get(getattr(args, action.dest, None) or "")
        if chosen is None:
            return chain
        chain.append(chosen)


def _key_value_dest(parser: argparse.ArgumentParser, args: argparse.Namespace) -> str | None:
    """The attribute of the KEY=VALUE list (``run``'s ``items``, ``data``'s ``options``) of the (sub-)verb
    that parsed ``args``, or None: the sub-parsers are followed down as ``args`` chose them."""
    found: str | None = None
    for current in _chosen_parsers(parser, args):
        for action in current._actions:
            if not action.option_strings and action.nargs in ("*", "+") and (
                    action.dest == "items" or "=" in str(action.metavar or "")):
                found = action.dest
    return found


def _unrecognized(parser: argparse.ArgumentParser, args: argparse.Namespace, extra: list[str]) -> None:
    """Refuse ``extra`` in the name of the (sub-)verb that was given them, with the flag a typo most
    likely meant (allow_abbrev is off, so ``--overwrit`` is never taken for ``--overwrite``). A flag of an
    outer parser (``--debug`` of mona-kit itself) counts too: its parser then names the error."""
    chain = _chosen_parsers(parser, args)
    owner = {f: p for p in chain for action in p._actions for f in action.option_strings if f.startswith("--")}
    hints: list[str] = []
    for word in extra:
        if word.startswith("--"):
            hints += [f for f in difflib.get_close_matches(word.split("=", 1)[0], list(owner), n=1, cutoff=0.6) if f not in hints]
    hint = f" (did you mean {' or '.join(hints)}?)" if hints else ""
    (owner[hints[0]] if hints else chain[-1]).error(f"unrecognized arguments: {' '.join(extra)}{hint}")


class _OutlivesItsReader:
    """sys.stdout while a verb runs. When the reader of a pipe goes away (``mona-kit run ... | head -1``),
    the rest of the output is dropped and the work goes on; ending the verb there would stop a run
    half-way and still exit 0."""

    def __init__(self, inner: TextIO) -> None:
        self._inner, self._gone = inner, False

    def write(self, text: str) -> int:
        if not self._gone:
            try:
                self._inner.write(text)
            except BrokenPipeError:
                self._drop()
        return len(text)

    def flush(self) -> None:
        if not self._gone:
            try:
                self._inner.flush()
            except BrokenPipeError:
                self._drop()

    def _drop(self) -> None:
        self._gone = True
        try:  # what the buffer still holds would fail again at exit: send the descriptor to /dev/null
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self._inner.fileno())
            os.close(devnull)
        except (OSError, ValueError, io.UnsupportedOperation):
            pass  # not a real descriptor (a test's capture): the output is dropped all the same

    def __getattr__(self, name: str):
        return getattr(self._inner, name)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv or os.environ.get("MONA_KIT_DEBUG") == "1"
    argv = [a for a in argv if a != "--debug"]  # accepted anywhere, not only before the verb
    stdout = sys.stdout
    sys.stdout = _OutlivesItsReader(stdout)  # type: ignore[assignment]
    try:
        return _main(argv, debug)
    finally:
        sys.stdout.flush()
        sys.stdout = stdout


def _main(argv: list[str], debug: bool) -> int:
    try:
        from .kit import load_kit

        kit = load_kit()
        parser = build_parser(kit)
        args, extra = parser.parse_known_args(argv)
        if getattr(args, "_plugin_error", None) is not None:  # a plugin verb whose configure raised
            raise args._plugin_error
        # key=value overrides may follow options (run CONFIG --no-progress seed=1, data verify NAME --root R seed=1).
        dest = _key_value_dest(parser, args) if extra else None
        if extra and dest is not None and not any(e.startswith("-") for e in extra):
            setattr(args, dest, list(getattr(args, dest) or []) + extra)
        elif extra:
            _unrecognized(parser, args, extra)
        if not getattr(args, "_handler", None):
            parser.print_help()
            return 0
        return _exit_status(args._handler(args, kit), args.verb, kit)
    except MonaError as exc:
        if debug:
            raise
        print(f"mona-kit: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except BrokenPipeError:  # a pipe closed under something that bypassed sys.stdout: the work did not finish
        return 1
    except KeyboardInterrupt as exc:
        print(f"mona-kit: {_interrupted(exc, argv)}", file=sys.stderr)
        return 130


def _exit_status(status: object, verb: str, kit) -> int:
    """A verb's return value as the exit status: None is 0, an int is itself. Anything else (a plugin handler
    returning its message, or True for success) is the plugin's mistake, named, not a ValueError from int()."""
    if status is None:
        return 0
    if isinstance(status, int) and not isinstance(status, bool):
        if 0 <= status <= 255:
            return status
        # the OS keeps only the low 8 bits: 256 would read as success
        problem = f"returned exit status {status}; an exit status is 0 to 255 (0 for success)."
    else:
        problem = (f"returned {type(status).__name__} {status!r}; a handler returns an int exit status "
                   f"(0 for success) or None - print the text instead.")
    who = f"plugin {kit.commands.get(verb).provider}: its command" if verb in kit.commands else "command"
    raise PluginError(f"{who} {verb!r} {problem}")


def _interrupted(exc: KeyboardInterrupt, argv: list[str]) -> str:
    """What Ctrl-C left: a run to resume (named: the runner tags the interrupt), or nothing to lose."""
    import shlex

    from .errors import INTERRUPTED_RUN

    if getattr(exc, INTERRUPTED_RUN, None) is not None:
        folder = shlex.quote(str(getattr(exc, INTERRUPTED_RUN)))
        return f"interrupted; the run is checkpointed: continue it with mona-kit run --resume {folder}"
    if hasattr(exc, INTERRUPTED_RUN):
        return "interrupted before the run started: nothing of it was written."
    if next((a for a in argv if not a.startswith("-")), "") == "sweep":
        return "interrupted; finished cells are kept and running ones checkpointed: the same sweep command resumes them."
    return "interrupted."


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
