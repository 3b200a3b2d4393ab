"""The `os1d` command line: parse arguments, call the verb, turn user errors into one line."""

from __future__ import annotations

import argparse
import faulthandler
import json
import logging
import os
import signal
import sys
from pathlib import Path

from . import __version__


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="os1d", description="A local, private voice companion.")
    parser.add_argument("--version", action="version", version=f"os1d {__version__}")
    parser.add_argument("--config", type=Path, help="config file (default: the user config folder's config.toml)")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    verbs = parser.add_subparsers(dest="verb", metavar="VERB", required=True)

    run = verbs.add_parser("run", help="run the daemon")
    run.add_argument("--config", type=Path, default=argparse.SUPPRESS)
    run.add_argument("--no-tray", action="store_true", help="run headless (no tray icon)")
    run.add_argument("--input-file", type=Path, metavar="WAV", help="replay a WAV file as the microphone, then exit")
    run.add_argument("--output-file", type=Path, metavar="WAV", help="write what would be played to a WAV file")
    run.add_argument("--events", metavar="FILE|-", help="write events as JSON lines to FILE or stdout")
    run.add_argument("--fast", action="store_true", help="with --input-file: as fast as possible, not in real time")

    doctor = verbs.add_parser("doctor", help="check audio devices, models and runtimes; print the config")
    doctor.add_argument("--config", type=Path, default=argparse.SUPPRESS)
    doctor.add_argument("--json", action="store_true")

    mdl = verbs.add_parser("models", help="download, list and verify models")
    mdl.add_argument("--config", type=Path, default=argparse.SUPPRESS)
    mverbs = mdl.add_subparsers(dest="models_verb", metavar="ACTION", required=True)
    pull = mverbs.add_parser("pull", help="download models (default: those the config needs)")
    pull.add_argument("names", nargs="*", metavar="NAME")
    pull.add_argument("--force", action="store_true", help="download again even if present")
    lst = mverbs.add_parser("list", help="list known models and their state")
    lst.add_argument("--json", action="store_true")
    ver = mverbs.add_parser("verify", help="re-hash every model file against its manifest")
    ver.add_argument("names", nargs="*", metavar="NAME")

    status = verbs.add_parser("status", help="the running daemon's state")
    status.add_argument("--json", action="store_true")
    for verb, what in (("mute", "stop listening and speaking (kept across restarts)"), ("unmute", "listen again"),
                       ("stop", "stop speaking and cancel the current turn")):
        verbs.add_parser(verb, help=what)
    ask = verbs.add_parser("ask", help="ask a question in text; prints the reply as it comes (and says it)")
    ask.add_argument("text", metavar="TEXT")
    ask.add_argument("--quiet", action="store_true", help="do not say the reply out loud")
    say = verbs.add_parser("say", help="say TEXT out loud")
    say.add_argument("text", metavar="TEXT")

    svc = verbs.add_parser("service", help="run os1d as a user service (systemd or launchd)")
    sverbs = svc.add_subparsers(dest="service_verb", metavar="ACTION", required=True)
    sinstall = sverbs.add_parser("install", help="write the service files, enable and start the service")
    sinstall.add_argument("--no-start", action="store_true", help="only write the files")
    sverbs.add_parser("uninstall", help="stop the service and remove its files")
    sverbs.add_parser("status", help="whether the service is installed and running")

    forget = verbs.add_parser("forget", help="forget everything OS1 remembers")
    forget.add_argument("--config", type=Path, default=argparse.SUPPRESS)
    forget.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    mem = verbs.add_parser("memories", help="list, search or forget memories")
    mem.add_argument("--config", type=Path, default=argparse.SUPPRESS)
    memverbs = mem.add_subparsers(dest="memories_verb", metavar="ACTION", required=True)
    mlist = memverbs.add_parser("list", help="every memory, oldest first")
    mlist.add_argument("--json", action="store_true")
    msearch = memverbs.add_parser("search", help="the memories nearest to some words, as OS1 would recall them")
    msearch.add_argument("query", metavar="QUERY")
    msearch.add_argument("-k", type=int, default=10, help="how many (default 10)")
    msearch.add_argument("--json", action="store_true")
    mforget = memverbs.add_parser("forget", help="forget one memory")
    mforget.add_argument("id", type=int, metavar="ID")
    mforget.add_argument("--json", action="store_true")
    wake = verbs.add_parser("wakeword", help="train a wake word from text, or test one on WAV files")
    wake.add_argument("--config", type=Path, default=argparse.SUPPRESS)
    wverbs = wake.add_subparsers(dest="wakeword_verb", metavar="ACTION", required=True)
    wtrain = wverbs.add_parser("train", help="train a wake-word model for PHRASE with synthetic voices")
    wtrain.add_argument("phrase", metavar="PHRASE")
    wtrain.add_argument("--out", type=Path, help="model file (default: the user data folder's wakewords/)")
    wtrain.add_argument("--minutes", type=float, default=20.0, help="about how long to spend (default 20)")
    wtrain.add_argument("--epochs", type=int, default=12, help="training epochs (default 12)")
    wtrain.add_argument("--seed", type=int, default=0)
    wtrain.add_argument("--data", type=Path, help=argparse.SUPPRESS)  # keep/reuse generated features (development)
    wtest = wverbs.add_parser("test", help="report wake-word detections and peak scores in WAV files")
    wtest.add_argument("wavs", nargs="+", type=Path, metavar="WAV")
    wtest.add_argument("--model", action="append", metavar="M", help="name or .onnx path (default: the config's)")
    wtest.add_argument("--threshold", type=float, help="score that counts as a detection (default: the config's)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="os1d: %(message)s", stream=sys.stderr)
    for noisy in ("faster_whisper", "httpx", "huggingface_hub"):
        logging.getLogger(noisy).setLevel(logging.WARNING)

    from .errors import UserError

    try:
        return dispatch(args, argv)
    except UserError as exc:
        print(f"os1d: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def program() -> None:
    """The `os1d` command: main(), and then the end, even where a model was still loading when the daemon
    was told to stop (its thread is not waited for)."""
    code = main()
    if (lanes := sys.modules.get("os1d.lanes")) is not None:  # (only where a daemon ran)
        lanes.abandon_at_exit(code)
    sys.exit(code)


def dispatch(args: argparse.Namespace, argv: list[str] | None = None) -> int:
    if args.verb in ("status", "mute", "unmute", "stop", "ask", "say"):
        from .control import control

        return control(args.verb, getattr(args, "text", ""), getattr(args, "json", False),
                       getattr(args, "quiet", False))
    if args.verb == "service":
        from . import service

        if args.service_verb == "install":
            return service.install(start=not args.no_start)
        return service.uninstall() if args.service_verb == "uninstall" else service.status()
    from .config import load_config

    if args.verb == "run" and hasattr(signal, "SIGHUP"):  # a reload asked for before os1d can take it: the
        signal.signal(signal.SIGHUP, signal.SIG_IGN)      # config is read right now anyway; never fatal
    if args.verb == "run" and hasattr(signal, "SIGUSR1"):  # `kill -USR1 PID`: every thread's stack to the log,
        faulthandler.register(signal.SIGUSR1, all_threads=True)  # even when os1d hangs
    cfg = load_config(args.config)
    if args.verb == "run":
        from .daemon import RELOAD, RunOptions
        from .desktop import run_daemon

        if args.fast and not args.input_file:
            from .errors import UserError

            raise UserError("--fast only applies with --input-file")
        opts = RunOptions(args.input_file, args.output_file, args.events, args.fast, not args.no_tray, args.config)
        code = run_daemon(cfg, opts)
        if code == RELOAD:  # SIGHUP with a good config: start afresh in this process (same pid for systemd)
            sys.stderr.flush()
            os.execv(sys.executable, [sys.executable, "-m", "os1d", *(argv if argv is not None else sys.argv[1:])])
        return code
    if args.verb == "forget":
        from .memory.cli import forget_all

        return forget_all(cfg, args.yes)
    if args.verb == "memories":
        from .memory.cli import memories_verb

        return memories_verb(cfg, args.memories_verb, getattr(args, "query", ""), getattr(args, "id", None),
                             args.json, getattr(args, "k", 10))
    if args.verb == "wakeword":
        from .wakeword import cli

        if args.wakeword_verb == "train":
            return cli.train_verb(cfg, args.phrase, args.out, args.minutes, args.epochs, args.seed, args.data)
        return cli.test_verb(cfg, args.wavs, args.model, args.threshold)
    if args.verb == "doctor":
        from .doctor import doctor

        return doctor(cfg, as_json=args.json)
    return models_verb(cfg, args)


def models_verb(cfg, args: argparse.Namespace) -> int:  # type: ignore[no-untyped-def]
    from . import models
    from .download import pull

    root = cfg.models_dir()
    needed = models.models_for(cfg.stt.model, cfg.llm.backend, cfg.memory.enabled)
    if args.models_verb == "pull":
        for name in args.names or needed:
            path = pull(root, models.spec(name, cfg), offline=cfg.offline(), force=args.force)
            print(f"{name}: ok ({path})")
        return 0
    if args.models_verb == "list":
        rows = [models.check(root, name, cfg=cfg) for name in models.REGISTRY]
        if args.json:
            print(json.dumps([{"name": r.name, "role": models.spec(r.name).role, "state": r.state,
                               "path": str(r.path), "detail": r.detail} for r in rows], indent=1))
        else:
            for r in rows:
                print(f"{r.name:14} {models.spec(r.name).role:6} {r.state:10} {r.detail or r.path}")
        return 0
    # the models the config needs, and any other that is here
    names = args.names or [n for n in models.REGISTRY
                           if n in needed or models.check(root, n, cfg=cfg).state != "missing"]
    bad = 0
    for name in names:
        r = models.check(root, name, deep=True, cfg=cfg)
        print(f"{name}: {r.state}" + (f" ({r.detail})" if r.detail else ""))
        bad += r.state not in ("ok",)
    if bad:
        print(f"os1d: error: {bad} model(s) failed verification; run `os1d models pull NAME --force`",
              file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    program()
