"""What every round of one lottery run shares, and how a round trains.

`Experiment` holds the strategy, the data and the config of a run, builds
and loads its models, and trains one round (`train_round`), checkpointing
as it goes. `claimed`, `held` and `is_done` are how a run holds its
workdir and knows which rounds are done; the runner
(`keras_lottery.lottery.runner`), the controls, transfer and instability
all train through this module.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import os
import re
import shutil
import tempfile
import time
import zipfile
from collections.abc import Callable
from collections.abc import Iterator
from collections.abc import Sequence

import keras
import ml_collections
import numpy as np
import tensorflow as tf
from absl import logging

from keras_lottery.base import faults
from keras_lottery.base import files
from keras_lottery.base import paths
from keras_lottery.core import state
from keras_lottery.core import wrapping
from keras_lottery.data import streams
from keras_lottery.engine import augment as augmentation
from keras_lottery.engine import callbacks as lottery_callbacks
from keras_lottery.engine import precision
from keras_lottery.engine import progress
from keras_lottery.engine import streaming
from keras_lottery.engine import tasks
from keras_lottery.engine import training
from keras_lottery.lottery import early_bird
from keras_lottery.lottery import planning
from keras_lottery.lottery import run_config
from keras_lottery.models import zoo


class TrainingError(RuntimeError):
    """Training went wrong (a NaN loss); earlier rounds are intact."""


# The name `tf.train.CheckpointManager` gives checkpoints: `ckpt-<step>`.
_CHECKPOINT_NAME = "ckpt"


@contextlib.contextmanager
def _held(workdir: str) -> Iterator[None]:
    """Holds `workdir` for this process, and clears what killed writes left.

    Raises:
        ValueError: if another process holds it, or it cannot be written.
    """
    with contextlib.ExitStack() as stack:
        try:
            os.makedirs(workdir, exist_ok=True)
            stack.enter_context(files.exclusive(paths.lock_file(workdir)))
            # The lock file may be writable in a folder that is not.
            with tempfile.TemporaryFile(dir=workdir):
                pass
        except BlockingIOError:
            raise ValueError(
                "`workdir` is in use by another process (it holds "
                f"{paths.lock_file(workdir)}); wait for it to end. "
                f"Received: workdir={workdir!r}") from None
        except OSError as e:
            raise ValueError(
                f"`workdir` cannot be written: {e.strerror}. "
                f"Received: workdir={workdir!r}") from None
        files.remove_stale(workdir)
        yield


@contextlib.contextmanager
def claimed(config: ml_collections.ConfigDict,
             workdir: str) -> Iterator[None]:
    """Holds `workdir` (`_held`) with `config` claimed in it."""
    with _held(workdir):
        run_config.claim_workdir(config, workdir)
        yield


def is_done(workdir: str, round_index: int) -> bool:
    """Whether the round is done; checks a done round's files are whole.

    Raises:
        ValueError: if a done round's masks or model file is damaged.
    """
    if not os.path.exists(paths.metrics_file(workdir, round_index)):
        return False
    units = paths.units_file(workdir, round_index)
    for path in (paths.masks_file(workdir, round_index),
                 paths.model_file(workdir, round_index),
                 *([units] if os.path.exists(units) else [])):
        problem = files.zip_problem(path)
        if problem:
            raise ValueError(
                f"{path} is damaged ({problem}), so round {round_index} "
                "and every later round cannot be trusted: move their round "
                f"folders out of {workdir} and rerun to redo them.")
    # Leftovers of a process killed after the round was done.
    shutil.rmtree(paths.checkpoint_dir(workdir, round_index),
                  ignore_errors=True)
    return True


class Experiment:
    """What every round of one run shares: strategy, data, config."""

    # Set by `run` for logs of the whole run; a round alone otherwise.
    progress: progress.RunProgress | None = None
    # Told of every evaluation and finished round (`run`'s `callbacks`).
    callbacks: Sequence[lottery_callbacks.ExperimentCallback] = ()
    _trainer: training.Trainer | None = None  # the last round's

    def __init__(self, config: ml_collections.ConfigDict):
        self.config = config
        self.strategy = training.make_strategy(config.train.strategy,
                                               config.train.tpu)
        self.task = tasks.from_config(config)
        # Arrays (`datasets.Splits`), or a loader's datasets, whose
        # training set is streamed (`streams.Streams`).
        self.data = streams.load_config(config.data, config.seed,
                                        integer_labels=self.task.sparse)
        streamed = isinstance(self.data, streams.Streams)
        if streamed:
            logging.info("Training data: %d examples streamed from %s.",
                         self.data.train_count, self.data.source)
        # Tensors made once: a dataset built from NumPy arrays copies them
        # into a new constant, and each round builds its datasets anew
        # (MNIST: about 220 MB a round that was never given back).
        self.tensors = {
            name: tf.convert_to_tensor(getattr(self.data, name))
            for name in ("train_x", "train_y", "validation_x",
                         "validation_y", "test_x", "test_y")
            if not (streamed and name.startswith("train_"))}

    def training_data(self, seed: int, augmented: bool = True):
        """The training set in the order seeded by `seed`: a
        `training.TrainingData`, or a `streaming.StreamedData`; either
        is `start_step -> dataset` of batches, augmented as `data.augment`
        says unless `augmented` is False."""
        batch_size = self.config.train.batch_size
        augment = augmentation.get(self.config.data.get("augment", "none")
                                   if augmented else "none")
        if isinstance(self.data, streams.Streams):
            return streaming.StreamedData(
                self.data.train, self.data.train_count, batch_size, seed,
                self.config.data.get("shuffle_buffer", 10000), augment)
        return training.TrainingData(self.tensors["train_x"],
                                     self.tensors["train_y"], batch_size,
                                     seed, augment)

    def build_model(self, seed: int) -> keras.Model:
        """The wrapped network at its initialisation for `seed`."""
        keras.utils.set_random_seed(seed)
        with self.strategy.scope(), precision.policy(
                self.config.train.get("precision", "float32")):
            model = zoo.build(
                self.config.model.name, self.data.input_shape,
                self.data.num_classes, self.config.model.weight_decay,
                seed=seed)
            # A subclassed model holds its own MaskedWrapper layers.
            return (model if wrapping.wrapped_layers(model)
                    else wrapping.wrap(model))

    def score_data(self, round_index: int) -> list:
        """The training batches a data-driven criterion reads in a round.

        `prune.score_batches` batches of `train.batch_size`, in the order
        of a training run seeded by the round: the same on every rerun.
        """
        config = self.config
        dataset = self.training_data(config.seed + 104729 * round_index,
                                     augmented=False)(0)
        return [(x.numpy(), y.numpy()) for x, y in
                dataset.take(config.prune.score_batches)]

    def load_model(self, path: str) -> keras.Model:
        """Loads a round's saved model under the strategy's scope.

        `safe_mode` refuses a file that would run code when loaded (a
        `Lambda` layer's bytecode).

        Raises:
            ValueError: if `path` is missing, damaged, or not a model of
                `MaskedWrapper` layers.
        """
        try:
            with self.strategy.scope():
                model = keras.models.load_model(path, safe_mode=True)
        except (ValueError, TypeError, OSError, KeyError,
                zipfile.BadZipFile) as e:
            # Keras reports a damaged archive as "File not found", and
            # what safe_mode refuses over several lines.
            raise ValueError(
                f"{path} cannot be loaded: it is damaged or not a model "
                f"this run wrote ({type(e).__name__}: "
                f"{' '.join(str(e).split())})") from None
        if not wrapping.wrapped_layers(model):
            raise ValueError(
                f"{path} holds a model with no MaskedWrapper layer, so "
                "nothing in it can be pruned: it is not a model this run "
                "wrote.")
        return model

    def train_round(self, workdir: str, round_index: int,
                    make_model: Callable[[], keras.Model]) -> dict:
        """Trains one round, resuming from its checkpoint if there is one.

        Args:
            workdir: the run's (or control's) workdir.
            round_index: the round.
            make_model: builds the round's starting model (masks set,
                rewound); must give the same model every time it is called.

        Returns:
            The round's metrics, as written to its `metrics.json`.
        """
        config = self.config
        # The last round's model, trainer and datasets refer to each other
        # in cycles only the cycle collector frees: free them before this
        # round builds its own, so resident memory stays flat across
        # rounds (benchmarks/memory.py). A process's first round has none.
        self._began = time.perf_counter()  # for the start-up line
        if self._trainer is not None:
            gc.collect()
        files.remove_stale(paths.round_dir(workdir, round_index))
        start = time.perf_counter()
        model = make_model()
        prune_seconds = time.perf_counter() - start
        masks = state.get_masks(model, units=True)
        units = {k: masks.pop(k) for k in list(masks)
                 if k.endswith(f"/{state.UNITS}")}
        masks_path = paths.masks_file(workdir, round_index)
        units_path = paths.units_file(workdir, round_index)
        if os.path.exists(masks_path):
            # Workdirs written before unit masks existed have no units.npz:
            # their unit masks are all ones.
            saved_units = (files.read_arrays(units_path)
                           if os.path.exists(units_path)
                           else {k: np.ones_like(v) for k, v in units.items()})
            for path, saved, made in ((masks_path, files.read_arrays(
                    masks_path), masks), (units_path, saved_units, units)):
                if set(saved) != set(made) or any(
                        not np.array_equal(saved[k], made[k]) for k in made):
                    raise ValueError(
                        f"{path} does not match the masks this run makes "
                        "for the round: it was damaged or written by another"
                        " run. Move the round folder away to redo the round."
                    )
        else:
            # units.npz first: a round with masks.npz has both.
            files.write_arrays(units_path, units)
            files.write_arrays(masks_path, masks)
        remaining = state.sparsity(model)
        trainer = self._trainer = training.trainer_for(
            model, self.strategy, config.train, self._trainer, self.task)
        model = trainer.model
        watch = early_bird.watch(
            config, round_index, lambda: planning.pruning_plan(config, model),
            functools.partial(self.score_data, round_index + 1))
        history = self._restore(workdir, round_index, trainer, watch)
        metrics = self._train(workdir, round_index, trainer, history,
                              remaining["total"], watch)
        metrics["sparsity"] = remaining
        metrics["prune_seconds"] = prune_seconds + (watch.seconds
                                                    if watch else 0.0)
        if watch:
            metrics["early_bird"] = watch.record()
        _check_finite(model, round_index, config.train.num_steps)
        model_path = paths.model_file(workdir, round_index)
        with files.atomic_path(model_path) as tmp:
            model.save(tmp)
        faults.point("model_saved")
        # Written last: from here on the round is done.
        files.write_json(paths.metrics_file(workdir, round_index), metrics)
        faults.point("round_done")
        for callback in self.callbacks:
            callback.on_round_end(round_index, metrics)
        shutil.rmtree(paths.checkpoint_dir(workdir, round_index),
                      ignore_errors=True)
        compared = metrics["compared_metric"]
        logging.info(
            "Round %d done: %.2f%% of weights remain; test %s %.4f at "
            "early-stop step %d, %.4f at the end.", round_index,
            100 * remaining["total"], compared.replace("_", " "),
            metrics[f"test_{compared}"], metrics["early_stop_step"],
            metrics[f"final_test_{compared}"])
        return metrics

    def _checkpoint(self, trainer):
        return tf.train.Checkpoint(model=trainer.model,
                                   optimizer=trainer.optimizer)

    def _restore(self, workdir, round_index, trainer, watch) -> list[dict]:
        # TensorFlow names a checkpoint in its `checkpoint` index file (an
        # atomic write) only once the checkpoint's files are complete, and
        # `_train` writes a checkpoint's history before the checkpoint: the
        # checkpoint the index names always has both.
        directory = paths.checkpoint_dir(workdir, round_index)
        latest = tf.train.latest_checkpoint(directory)
        if latest is None:
            return []
        try:
            self._checkpoint(trainer).restore(latest).assert_consumed()
            history = files.read_json(latest + ".history.json")
            if watch:
                watch.restore(latest, trainer.step)
        except (tf.errors.OpError, ValueError, AssertionError, OSError,
                IndexError, KeyError) as e:
            # What TensorFlow raises for a damaged file depends on where
            # the damage is: a bad magic number, a short read, a CRC.
            message = " ".join(str(e).split())[:300]
            raise ValueError(
                f"The checkpoint {latest} of round {round_index} is "
                f"damaged ({type(e).__name__}: {message}). Delete "
                f"{directory} to redo the round from its start.") from None
        logging.info("Round %d resumes at step %d.", round_index,
                     trainer.step)
        return [h for h in history if h["step"] <= trainer.step]

    def _train(self, workdir, round_index, trainer, history, remaining,
               watch):
        config = self.config
        num_steps = config.train.num_steps
        rewind_step = config.prune.rewind_step if round_index == 0 else 0
        boundaries = sorted({
            *range(0, num_steps + 1, config.eval.every_steps),
            *range(0, num_steps + 1, config.train.checkpoint_every_steps),
            rewind_step, num_steps,
            *(watch.steps(num_steps) if watch else ()),
        })
        data = self.tensors
        dataset_fn = self.training_data(config.seed + round_index)
        validation = trainer.eval_dataset(data["validation_x"],
                                          data["validation_y"],
                                          config.eval.batch_size)
        test = trainer.eval_dataset(data["test_x"], data["test_y"],
                                    config.eval.batch_size)
        writer = tf.summary.create_file_writer(
            paths.tensorboard_dir(workdir, round_index))
        manager = tf.train.CheckpointManager(
            self._checkpoint(trainer),
            paths.checkpoint_dir(workdir, round_index), max_to_keep=1,
            checkpoint_name=_CHECKPOINT_NAME)
        step = trainer.step
        meter = self.progress or progress.RunProgress([round_index],
                                                      num_steps)
        meter.start_round(round_index, step)
        train_time = eval_time = 0.0
        while step < num_steps:
            target = min(b for b in boundaries if b > step)
            start = time.perf_counter()
            loss = np.nan
            while step < target:
                n = min(config.train.steps_per_loop, target - step)
                loss = trainer.train(dataset_fn, n)
                step += n
                if meter.warmed_up(step):  # the first call compiled
                    logging.info(
                        "Round %d: its first steps ended %.2f s after the "
                        "round began (%.1f s of CPU in the process).",
                        round_index, time.perf_counter() - self._began,
                        time.process_time())
                faults.point("train")
                if not np.isfinite(loss):
                    raise TrainingError(
                        f"Round {round_index}: the training loss is {loss} "
                        f"at step {step}. The round is not done and "
                        "nothing of it is exported; earlier rounds are "
                        "intact. Lower train.learning_rate (in a new "
                        "workdir) or check the data."
                    )
            train_time += time.perf_counter() - start
            if step == rewind_step:
                state.set_rewind_point(trainer.model)
                logging.info("Rewind point set at step %d.", step)
            # An early-bird check that ends the round makes this its end.
            end = step == num_steps or (
                watch is not None and step in watch.steps(num_steps)
                and watch.check(step, trainer.model))
            if step % config.eval.every_steps == 0 or end:
                start = time.perf_counter()
                val = trainer.evaluate(validation, len(data["validation_y"]))
                record = {
                    "step": step, "train_loss": loss,
                    "validation_loss": val.loss,
                    **{f"validation_{k}": v for k, v in val.metrics.items()},
                }
                if (config.eval.test_at == "every" or end
                        or self.task.is_best_yet(record, history)):
                    tst = trainer.evaluate(test, len(data["test_y"]))
                    record.update(test_loss=tst.loss, **{
                        f"test_{k}": v for k, v in tst.metrics.items()})
                eval_time += time.perf_counter() - start
                history.append(record)
                for callback in self.callbacks:
                    callback.on_evaluation(round_index, dict(record))
                with writer.as_default(step=step):
                    for name, value in record.items():
                        if name != "step":
                            tf.summary.scalar(name, value)
                logging.info(
                    "%s: loss %.4f, val loss %.4f%s; %s",
                    meter.where(step), loss, val.loss,
                    _metrics_text(record), meter.speed(step))
            if end:
                break
            if (step % config.train.checkpoint_every_steps == 0
                    and step < num_steps):
                self._save_checkpoint(manager, trainer, round_index, step,
                                      history, watch)
        writer.flush()
        if not history:
            raise ValueError(
                "No evaluation ran: `eval.every_steps` must be at most "
                f"`train.num_steps`. Received: eval.every_steps="
                f"{config.eval.every_steps}")
        best = self.task.best(history)
        compared = self.task.compared
        reported = dict.fromkeys([*self.task.metric_names, compared])
        return {
            "round": round_index,
            "remaining_fraction": remaining,
            "early_stop_step": best["step"],
            "early_stop_validation_loss": best["validation_loss"],
            **{f"test_{k}": best[f"test_{k}"] for k in reported},
            **{f"final_test_{k}": history[-1][f"test_{k}"]
               for k in reported},
            # What a ticket of this round is judged on, and which way.
            "compared_metric": compared,
            "compared_mode": self.task.compared_mode,
            "history": history,
            "train_seconds": train_time,
            "eval_seconds": eval_time,
            # keras_lottery.engine.sparse_compute's path; None when this process
            # resumed the round with no step left to take.
            "compute_path": trainer.path,
        }

    def _save_checkpoint(self, manager, trainer, round_index, step,
                         history, watch) -> None:
        """Saves the step's checkpoint; its history goes first.

        The history of step s is `ckpt-s.history.json`, so writing it
        before the checkpoint exists is harmless, and the checkpoint is
        named in the index only once it is complete: a kill at any moment
        leaves the index naming a checkpoint with its history.
        """
        trainer.sync()  # the optimizer's state, from a compute path
        _check_finite(trainer.model, round_index, step)
        prefix = os.path.join(manager.directory, f"{_CHECKPOINT_NAME}-{step}")
        files.write_json(prefix + ".history.json", history)
        if watch:
            watch.save(prefix)
        # Runs after the checkpoint's files are written, before TensorFlow
        # names it in its index (the manager appends its own callback).
        options = tf.train.CheckpointOptions(
            experimental_write_callbacks=[
                lambda: faults.point("checkpoint_files")])
        saved = manager.save(checkpoint_number=step, options=options)
        faults.point("checkpoint_saved")
        for path in early_bird.sidecars(manager.directory,
                                        os.path.basename(saved)):
            os.remove(path)


def _metrics_text(record: dict) -> str:
    """", val acc 0.9712, test acc 0.9698": an evaluation's metrics."""
    short = {"accuracy": "acc"}
    return "".join(
        f", {split} {short.get(key[len(prefix):], key[len(prefix):])} "
        f"{value:.4f}"
        for split, prefix in (("val", "validation_"), ("test", "test_"))
        for key, value in record.items()
        if key.startswith(prefix) and key != f"{prefix}loss")


def _check_finite(model: keras.Model, round_index: int, step: int) -> None:
    """Raises TrainingError if a weight of `model` is NaN or infinite.

    A loss can be finite at a step whose update made a weight NaN; such
    weights must never be checkpointed, pruned or exported.
    """
    bad = [v.path for v in model.weights
           if not np.all(np.isfinite(keras.ops.convert_to_numpy(v.value)))]
    if bad:
        raise TrainingError(
            f"Round {round_index}: weights became NaN or infinite by step "
            f"{step} ({', '.join(bad[:3])}{', ...' if len(bad) > 3 else ''})."
            " The round is not done and nothing of it is exported; earlier "
            "rounds are intact. Lower train.learning_rate (in a new workdir)"
            " or check the data.")


def check_pruning(experiment: Experiment) -> None:
    """Checks the config's pruning against the model, writing nothing.

    Raises:
        ValueError: as `pruning_plan`, naming the config field.
    """
    try:
        planning.pruning_plan(experiment.config,
                     experiment.build_model(experiment.config.seed))
    except ValueError as e:
        output = f"granularities[{zoo.OUTPUT_LAYER_NAME!r}]="
        message = re.sub(r"granularities\['[^']*'\]=", "conv_granularity=",
                         str(e).replace(output, "output_granularity="))
        message = re.sub(r"Received: (granularity|method|output_granularity"
                         r"|conv_granularity)=", r"Received: prune.\1=",
                         message)
        raise ValueError(message) from None
