"""Command line: ``python -m qprop_tf train --algo trpo --env Hopper --seed 0`` trains a run;
``python -m qprop_tf play --run DIR`` evaluates its saved policy (and records a video)."""

from __future__ import annotations

import argparse
import sys

from qprop_tf.config import ALGOS, load_config, parse_pairs
from qprop_tf.config_scope import inapplicable
from qprop_tf.errors import (
    ConfigError,
    ConfigMismatch,
    NonFiniteError,
    PolicyFileError,
    RunInterrupted,
    RunLocked,
    VideoError,
)
from qprop_tf.progress import PAPER_EPISODE_STEPS
from qprop_tf.rundir import is_done
from qprop_tf.runtime import limit_threads


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="qprop-tf", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    tr = sub.add_parser("train", help="train one run")
    tr.add_argument("--algo", default="trpo", help=f"one of: {', '.join(ALGOS)}")
    tr.add_argument("--env", default="Hopper", help="paper name (Hopper) or env id (Hopper-v5)")
    tr.add_argument("--seed", type=int, default=0)
    tr.add_argument("--batch-size", type=int, default=None, help="env steps per iteration")
    budget = tr.add_mutually_exclusive_group()
    budget.add_argument("--max-steps", type=float, default=None, help="env-step budget")
    budget.add_argument("--max-episodes", type=float, default=None,
                        help=f"budget in the paper's episodes ({PAPER_EPISODE_STEPS} env steps)")
    tr.add_argument("--out", default=None, help="run directory (default runs/<Env>/<algo>/seed<k>)")
    tr.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                    help="override any config key (repeatable)")
    tr.add_argument("--no-progress", action="store_true", help="no progress bar")
    pl = sub.add_parser("play", help="evaluate a finished run's saved policy, noise-free; "
                        "optionally write a video of its first episode")
    pl.add_argument("--run", required=True, help="run directory (with policy.npz)")
    pl.add_argument("--episodes", type=positive_int, default=DEFAULT_EPISODES,
                    help=f"episodes to average over (default {DEFAULT_EPISODES})")
    pl.add_argument("--seed", type=int, default=0, help="seed of the first reset (default 0)")
    pl.add_argument("--video", default=None, metavar="FILE",
                    help="write the first episode to FILE.gif or FILE.mp4 (MuJoCo offscreen "
                         "rendering; MUJOCO_GL=egl unless set)")
    pl.add_argument("--fps", type=float, default=25.0,
                    help="video frames per second of simulated time, played in real time "
                         "(default 25)")
    pl.add_argument("--max-frames", type=positive_int, default=250,
                    help="cut the video after this many frames (default 250: 10 s at 25 fps)")
    pl.add_argument("--width", type=positive_int, default=320, help="video width (default 320)")
    pl.add_argument("--height", type=positive_int, default=240,
                    help="video height (default 240)")
    return parser


DEFAULT_EPISODES = 10


def positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {value}")
    return value


def play_main(args: argparse.Namespace) -> int:
    """``play``: one line on stderr and exit 2 for a missing policy or a video that cannot be
    written. TF is never loaded; MuJoCo's GL backend is chosen only when a video is asked."""
    from qprop_tf.play import play

    try:
        play(args.run, args.episodes, args.seed, args.video, args.fps, args.max_frames,
             args.width, args.height)
    except (PolicyFileError, VideoError) as exc:
        print(f"qprop-tf: error: {exc}", file=sys.stderr)
        return 2
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "play":
        return play_main(args)
    max_steps = args.max_steps
    if args.max_episodes is not None:
        max_steps = args.max_episodes * PAPER_EPISODE_STEPS
    fields = {"batch_size": args.batch_size,
              "max_steps": None if max_steps is None else float(max_steps),
              "out": args.out}
    if args.no_progress:
        fields["progress_bar"] = False
    try:
        cfg = load_config(args.algo, args.env, args.seed, args.overrides, **fields)
    except ConfigError as exc:
        print(f"qprop-tf: error: {exc}", file=sys.stderr)
        return 2
    ignored = inapplicable(cfg, list(parse_pairs(args.overrides)))
    if ignored:
        print("qprop-tf: error: " + "\n  ".join(ignored), file=sys.stderr)
        return 2

    limit_threads(cfg.tf_threads)
    # TensorFlow loads only now: a bad command line is answered without it, in a moment.
    from qprop_tf.run import default_out_dir, train

    out = cfg.out or str(default_out_dir(cfg))
    if is_done(out):
        print(f"run already finished: {out} (nothing to do)")
        return 0
    try:
        run_dir = train(cfg, out)
    except (ConfigMismatch, RunLocked) as exc:
        print(f"qprop-tf: error: {exc}", file=sys.stderr)
        return 2
    except NonFiniteError as exc:
        print(f"qprop-tf: error: {exc}; progress so far is in {out}/progress.csv (the last "
              f"checkpoint predates the NaN)", file=sys.stderr)
        return 3
    except RunInterrupted as exc:
        print(f"qprop-tf: {exc}; progress so far is in {out}/progress.csv", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"qprop-tf: interrupted; progress so far is in {out}/progress.csv; run the same "
              f"command to resume from the last checkpoint", file=sys.stderr)
        return 130
    except OSError as exc:
        print(f"qprop-tf: error: cannot write the run directory {out}: {exc}",
              file=sys.stderr)
        return 2
    print(f"run finished: {run_dir}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
