"""``python -m qprop_tf play --run DIR``: a finished run's saved policy, noise-free, on its env.

:func:`evaluate` runs the policy's mean action (DDPG: the actor's output), clipped to the
action bounds, for whole episodes: the first reset is seeded with ``seed``, later resets
continue the env's own generator (as the training envs do). For DDPG's actor (a tanh output)
it also says how much of the time the output is pinned at a bound (|tanh(z)| > 0.99), where
the critic's action gradient no longer reaches the actor's weights. It never renders, so it
needs no OpenGL. :func:`record` replays the first episode (the same seed, so the same
trajectory) in an env with ``render_mode="rgb_array"`` and writes every ``skip``-th frame to
a GIF (Pillow) or an MP4 (imageio-ffmpeg), at ``fps`` = the env's render fps / ``skip`` (real
time). MuJoCo picks its GL backend when it is imported: :func:`prepare_gl` sets
``MUJOCO_GL=egl`` (if unset) before that when a video is asked for, and disables GL otherwise.
"""

from __future__ import annotations

import csv
import importlib.util
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from qprop_tf.errors import VideoError
from qprop_tf.saved_policy import SavedPolicy, load_policy

VIDEO_FORMATS = (".gif", ".mp4")


SATURATED = 0.99  # |tanh(z)| above this: the actor's output is pinned at a bound


@dataclass(frozen=True)
class Evaluation:
    """Undiscounted returns and lengths of the episodes, in order. For a tanh output layer
    (DDPG's actor; :attr:`SavedPolicy.bounded`), over every step and action dimension:
    ``saturated``, the fraction with |tanh(z)| > 0.99 (:func:`saturated_fraction`), and
    ``median_abs_z``, the median |z| (z: the output layer's pre-activation); None otherwise."""

    returns: np.ndarray
    lengths: np.ndarray
    saturated: float | None = None
    median_abs_z: float | None = None

    def summary(self) -> str:
        r, n = self.returns, self.lengths
        text = (f"return {np.mean(r):.1f} ± {np.std(r):.1f} over {r.size} episodes (min "
                f"{np.min(r):.1f}, max {np.max(r):.1f}; length {np.mean(n):.0f} ± {np.std(n):.0f})")
        if self.saturated is not None:
            text += (f"; saturated outputs (|tanh(z)| > {SATURATED}): {self.saturated:.1%} of "
                     f"steps x actions, median |z| {self.median_abs_z:.3g}")
        return text


def saturated_fraction(z: np.ndarray) -> float:
    """The share of entries of z (steps x actions) where |tanh(z)| > 0.99, i.e. where
    d tanh(z)/dz = 1 - tanh(z)^2 < 0.02: the actor's gradient through them has all but
    vanished."""
    return float(np.mean(np.abs(np.tanh(z)) > SATURATED))


@dataclass(frozen=True)
class Video:
    """What :func:`record` wrote: ``frames`` frames of ``steps`` env steps (the episode's
    ``episode_return`` so far; the whole episode when ``ended``)."""

    path: Path
    frames: int
    fps: float
    steps: int
    episode_return: float
    ended: bool
    shape: tuple[int, int]


def run_env_id(run_dir: Path, policy: SavedPolicy) -> str:
    """The run's env id from its ``config.json`` (the policy file's when there is none)."""
    try:
        env_id = json.loads((run_dir / "config.json").read_text()).get("env_id")
    except (OSError, ValueError):
        env_id = None
    return str(env_id or policy.env_id)


def last_logged_return(run_dir: Path) -> tuple[str, float, int] | None:
    """(column, value, env_steps) of the run's last ``progress.csv`` row, if there is one:
    DDPG's last noise-free evaluation (``eval_return``; its ``average_return`` is the
    noisy training episodes'), else the last batch's mean return (``average_return``,
    on-policy, with exploration noise)."""
    try:
        with open(run_dir / "progress.csv", newline="") as f:
            rows = list(csv.DictReader(f))
        last = rows[-1]
        column = "eval_return" if last.get("eval_return") else "average_return"
        return column, float(last[column]), int(float(last["env_steps"]))
    except (OSError, ValueError, KeyError, IndexError):
        return None


def make_env(env_id: str, **kwargs: Any) -> Any:
    import gymnasium as gym

    return gym.make(env_id, disable_env_checker=True, **kwargs)


def evaluate(policy: SavedPolicy, env_id: str, episodes: int, seed: int) -> Evaluation:
    """``episodes`` whole episodes of the noise-free policy (no rendering)."""
    env = make_env(env_id)
    returns, lengths, zs = [], [], []
    try:
        for i in range(episodes):
            obs, _ = env.reset(seed=seed if i == 0 else None)
            ret, length, done = 0.0, 0, False
            while not done:
                if policy.bounded:
                    zs.append(policy.preactivation(obs))
                obs, rew, term, trunc, _ = env.step(policy.act(obs))
                ret += float(rew)
                length += 1
                done = term or trunc
            returns.append(ret)
            lengths.append(length)
    finally:
        env.close()
    if not zs:
        return Evaluation(np.array(returns), np.array(lengths))
    z = np.array(zs)
    return Evaluation(np.array(returns), np.array(lengths), saturated_fraction(z),
                      float(np.median(np.abs(z))))


def check_video_path(path: Path) -> None:
    """Refuse, before anything runs, a format without a writer or a directory that is not."""
    suffix = path.suffix.lower()
    if suffix not in VIDEO_FORMATS:
        raise VideoError(f"cannot write {path}: use a .gif or .mp4 file name")
    if suffix == ".mp4" and importlib.util.find_spec("imageio_ffmpeg") is None:
        raise VideoError(f"cannot write {path}: MP4 needs the imageio-ffmpeg package "
                         f"(pip install imageio-ffmpeg); a .gif needs nothing more")
    if not path.parent.is_dir():
        raise VideoError(f"cannot write {path}: no directory {path.parent}")


def follow_tracked_body(env: Any) -> None:
    """Keep the robot in the picture: Gymnasium 1.4 renders ``rgb_array`` with a free camera,
    so its default camera config's ``trackbodyid`` is ignored and a hopper runs out of the
    frame; move the free camera's look-at point (x, y) over that body's centre of mass."""
    renderer = getattr(env.unwrapped, "mujoco_renderer", None)
    viewer = getattr(renderer, "viewer", None)
    body = (getattr(renderer, "default_cam_config", None) or {}).get("trackbodyid")
    if viewer is not None and body is not None and body >= 0:
        viewer.cam.lookat[:2] = env.unwrapped.data.subtree_com[body][:2]


def render_frames(policy: SavedPolicy, env_id: str, seed: int, fps: float, max_frames: int,
                  width: int, height: int) -> tuple[list[np.ndarray], int, float, bool, float]:
    """Episode 0 again, rendering every ``skip`` = round(render fps / ``fps``) steps (the
    reset included) until it ends or ``max_frames`` frames: (frames, steps, return, ended,
    the frames' real-time rate render fps / skip)."""
    try:
        env = make_env(env_id, render_mode="rgb_array", width=width, height=height)
        obs, _ = env.reset(seed=seed)
        frames = [np.asarray(env.render())]
    except Exception as exc:  # noqa: BLE001 (GL back ends fail in many ways: one line for all)
        raise VideoError(gl_failure(f"render {env_id} offscreen", exc)) from exc
    try:
        render_fps = float(env.metadata.get("render_fps") or 1.0 / env.unwrapped.dt)
        skip = max(1, round(render_fps / fps))
        steps, ret, ended = 0, 0.0, False
        while len(frames) < max_frames and not ended:
            obs, rew, term, trunc, _ = env.step(policy.act(obs))
            steps += 1
            ret += float(rew)
            ended = bool(term or trunc)
            if steps % skip == 0 or ended:
                follow_tracked_body(env)
                frames.append(np.asarray(env.render()))
    finally:
        env.close()
    return frames, steps, ret, ended, render_fps / skip


def record(policy: SavedPolicy, env_id: str, path: Path, seed: int, fps: float = 25.0,
           max_frames: int = 250, width: int = 320, height: int = 240) -> Video:
    """Write episode 0 (seed ``seed``) as a GIF or MP4 of at most ``max_frames`` frames, about
    ``fps`` frames a second of simulated time, played back in real time."""
    check_video_path(path)
    frames, steps, ret, ended, out_fps = render_frames(policy, env_id, seed, fps, max_frames,
                                                       width, height)
    if path.suffix.lower() == ".gif":
        import imageio.v3 as iio

        iio.imwrite(path, np.stack(frames), extension=".gif", duration=1000.0 / out_fps,
                    loop=0)
    else:
        import imageio.v2 as iio2

        iio2.mimwrite(path, frames, format="FFMPEG", fps=out_fps, macro_block_size=2)
    return Video(path, len(frames), out_fps, steps, ret, ended, (width, height))


def prepare_gl(video: bool) -> None:
    """Choose MuJoCo's GL backend before MuJoCo is imported (a no-op once it is).

    Without a video none at all (``MUJOCO_GL=disable``), so a missing or broken backend
    cannot stop an evaluation; with one ``MUJOCO_GL=egl`` unless set, and a backend that
    cannot load raises :class:`~qprop_tf.errors.VideoError` before anything runs.
    """
    if "mujoco" in sys.modules:
        return
    if not video:
        os.environ["MUJOCO_GL"] = "disable"
        return
    os.environ.setdefault("MUJOCO_GL", "egl")
    try:
        import mujoco  # noqa: F401
    except Exception as exc:  # noqa: BLE001 (GL back ends fail in many ways: one line for all)
        raise VideoError(gl_failure("load MuJoCo's OpenGL backend", exc)) from exc


def gl_failure(what: str, exc: BaseException) -> str:
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return (f"cannot {what} (MUJOCO_GL={os.environ.get('MUJOCO_GL', '')!r}; is EGL "
            f"installed?): {type(exc).__name__}: {first}")


def play(run: str | Path, episodes: int = 10, seed: int = 0, video: str | Path | None = None,
         fps: float = 25.0, max_frames: int = 250, width: int = 320, height: int = 240,
         print_fn: Any = print) -> Evaluation:
    """Evaluate the run's saved policy and print the result (and write the video)."""
    path = Path(run)
    if video is not None:
        check_video_path(Path(video))  # refuse a bad name before the evaluation runs
    prepare_gl(video is not None)
    policy = load_policy(path)  # a run directory or its policy.npz
    run_dir = path if path.is_dir() else path.parent
    env_id = run_env_id(run_dir, policy)
    what = "mean action" if policy.kind == "gaussian" else "deterministic actor"
    print_fn(f"{run_dir}: {env_id}, {policy.kind} policy ({what}, {policy.n_params:,} "
             f"parameters), seed {seed}")
    result = evaluate(policy, env_id, episodes, seed)
    print_fn(result.summary())
    logged = last_logged_return(run_dir)
    if logged is not None:
        print_fn(f"the run's last logged {logged[0]}: {logged[1]:.1f} at {logged[2]:,} "
                 f"env steps (progress.csv)")
    if video is not None:
        v = record(policy, env_id, Path(video), seed, fps, max_frames, width, height)
        tail = "the whole episode" if v.ended else "cut at --max-frames"
        print_fn(f"video: {v.path}, {v.frames} frames at {v.fps:g} fps ({v.frames / v.fps:.1f} "
                 f"s), {v.shape[0]}x{v.shape[1]}, {v.path.stat().st_size / 1e6:.2f} MB; episode "
                 f"0's first {v.steps} steps ({tail}), return {v.episode_return:.1f}")
    return result
