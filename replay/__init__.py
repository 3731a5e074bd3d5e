"""Replay: rescore the applications topic's history with another model and report what changed.

``credit-scorer replay run --model DIR|--model-version N [--from-offset …] [--to-time …] --out DIR``:
:mod:`replay.reader` (group-less consumer, stops at the real log end), :mod:`replay.baseline` (the live
decisions, joined by application id), :mod:`replay.runner` (read → features → rescore → publish →
checkpoint), :mod:`replay.rescore` (pure per-batch work), :mod:`replay.checkpoint` (resumable),
:mod:`replay.compare` + :mod:`replay.report` (Markdown report with PNG plots), :mod:`replay.cli`.
"""
