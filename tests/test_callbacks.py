"""The `model.fit` callbacks: late rewinding and the ticket verdict."""

import keras
import numpy as np
import pytest

import keras_lottery
from keras_lottery.engine import callbacks


def problem():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 10)).astype("float32")
    y = (x[:, 0] + x[:, 1] > 0).astype("int32")
    return x, y


def wrapped_model():
    keras.utils.set_random_seed(1)
    return keras_lottery.wrap(keras.Sequential([
        keras.Input((10,)), keras.layers.Dense(16, activation="relu"),
        keras.layers.Dense(2, name="output")]))


def compile_(model):
    model.compile(keras.optimizers.SGD(0.1),
                  keras.losses.SparseCategoricalCrossentropy(
                      from_logits=True))


def test_rewind_point_is_the_weights_at_step_k():
    x, y = problem()
    model = wrapped_model()
    compile_(model)
    seen = {}

    class Snapshot(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            step = int(self.model.optimizer.iterations.numpy())
            seen[step] = [w.numpy().copy() for w in
                          keras_lottery.wrapping.wrapped_layers(
                              self.model)[0].layer.weights]

    rewind = callbacks.RewindPoint(7)
    model.fit(x, y, batch_size=40, epochs=2, verbose=0,
              callbacks=[Snapshot(), rewind])
    assert rewind.recorded_step == 7
    keras_lottery.rewind(model)
    first = keras_lottery.wrapping.wrapped_layers(model)[0].layer
    for got, want in zip(first.weights, seen[7]):
        np.testing.assert_array_equal(got.numpy(), want)


def test_rewind_point_beyond_training_is_an_error():
    x, y = problem()
    model = wrapped_model()
    compile_(model)
    with pytest.raises(ValueError, match=r"`fit` ended at step 10, before "
                       r"the rewind point.*Received: step=50"):
        model.fit(x, y, batch_size=40, epochs=1, verbose=0,
                  callbacks=[callbacks.RewindPoint(50)])


@pytest.mark.parametrize("kwargs,match", [
    ({"every_steps": 0}, r"`every_steps` must be an int > 0. Received: "
     r"every_steps=0"),
    ({"batch_size": 1.5}, r"`batch_size` must be an int > 0. Received: "
     r"batch_size=1.5"),
])
def test_early_stop_argument_errors(kwargs, match):
    x, y = problem()
    with pytest.raises(ValueError, match=match):
        callbacks.EarlyStop((x, y), (x, y), **kwargs)
    with pytest.raises(ValueError, match=r"`step` must be an int >= 0. "
                       r"Received: step=-1"):
        callbacks.RewindPoint(-1)


def test_early_stop_before_fit_is_an_error():
    x, y = problem()
    with pytest.raises(ValueError, match=r"`EarlyStop` has no evaluation "
                       r"yet"):
        _ = callbacks.EarlyStop((x, y), (x, y)).test_accuracy


def test_fit_loop_reaches_the_winning_ticket_verdict():
    x, y = problem()
    model = wrapped_model()
    stops = []
    for round_index in range(3):
        compile_(model)
        stop = callbacks.EarlyStop((x[:100], y[:100]), (x[100:200],
                                                        y[100:200]),
                                   every_steps=5, batch_size=64)
        late = [callbacks.RewindPoint(5)] if round_index == 0 else []
        model.fit(x[200:], y[200:], batch_size=20, epochs=2, verbose=0,
                  callbacks=[stop, *late])
        stops.append(stop)
        keras_lottery.prune(model, 0.3)
        keras_lottery.rewind(model)
    dense = stops[0]
    assert [h["step"] for h in dense.history] == [5, 10, 15, 20]
    best = min(dense.history, key=lambda h: (h["validation_loss"],
                                             h["step"]))
    assert dense.early_stop_step == best["step"]
    assert dense.test_accuracy == best["test_accuracy"]
    assert dense.final_test_accuracy == dense.history[-1]["test_accuracy"]
    for ticket in stops[1:]:
        assert callbacks.is_winning_ticket(ticket, dense) == (
            ticket.test_accuracy >= dense.test_accuracy
            and ticket.early_stop_step <= dense.early_stop_step)
    # The validation loss matches Keras's own evaluation of the loss.
    model.compile(loss=keras.losses.SparseCategoricalCrossentropy(
        from_logits=True))
    last = callbacks.EarlyStop((x[:100], y[:100]), (x[:100], y[:100]))
    last.set_model(model)
    loss = last._values(x[:100], y[:100])["loss"]
    assert loss == pytest.approx(model.evaluate(x[:100], y[:100],
                                                verbose=0), rel=1e-5)


def test_a_regression_is_judged_on_its_monitored_metric():
    """MSE with early stopping on validation MAE: the early-stop step is
    the lowest validation MAE's, the ticket judged on test MAE, lower is
    better, as summary.json judges a run of that task."""
    x, _ = problem()
    y = (x[:, :1] - 2 * x[:, 1:2]).astype("float32")
    keras.utils.set_random_seed(1)
    model = keras_lottery.wrap(keras.Sequential([
        keras.Input((10,)), keras.layers.Dense(16, activation="relu"),
        keras.layers.Dense(1, name="output")]))
    stops = []
    for _ in range(2):
        model.compile(keras.optimizers.SGD(0.02), "mse")
        stop = callbacks.EarlyStop(
            (x[:100], y[:100]), (x[100:200], y[100:200]), every_steps=5,
            batch_size=64, loss=keras.losses.MeanSquaredError(),
            metrics=["mae"], monitor="val_mae")
        model.fit(x[200:], y[200:], batch_size=20, epochs=2, verbose=0,
                  callbacks=[stop])
        stops.append(stop)
        keras_lottery.prune(model, 0.5)
        keras_lottery.rewind(model)
    dense, ticket = stops
    assert (dense.compared_metric, dense.compared_mode) == ("mae", "min")
    assert sorted(dense.history[0]) == [
        "step", "test_mae", "validation_loss", "validation_mae"]
    best = min(dense.history, key=lambda h: (h["validation_mae"], h["step"]))
    assert dense.early_stop_step == best["step"]
    assert dense.test_value == best["test_mae"]
    assert dense.final_test_value == dense.history[-1]["test_mae"]
    # It learned: the test MAE at early stop beats predicting the mean.
    assert dense.test_value < 0.8 * float(np.mean(np.abs(
        y[100:200] - y[200:].mean())))
    assert callbacks.is_winning_ticket(ticket, dense) == (
        ticket.test_value <= dense.test_value
        and ticket.early_stop_step <= dense.early_stop_step)
    # The values are Keras's own: MSE and MAE on the model's outputs.
    model.compile(loss="mse", metrics=["mae"])
    loss, mae = model.evaluate(x[:100], y[:100], verbose=0)
    values = stop._values(x[:100], y[:100])
    assert values["loss"] == pytest.approx(loss, rel=1e-5)
    assert values["mae"] == pytest.approx(mae, rel=1e-5)
    with pytest.raises(ValueError, match=r"^`EarlyStop` records no "
                       r"accuracy: use `test_value` \(test mae\)"):
        _ = dense.test_accuracy
    with pytest.raises(ValueError, match=r"^`monitor` must be a value each "
                       r"evaluation reports: 'val_loss', 'val_mae'\. "
                       r"Received: monitor='val_accuracy'$"):
        callbacks.EarlyStop((x, y), (x, y), loss="mse", metrics=["mae"],
                            monitor="val_accuracy")
    with pytest.raises(ValueError, match=r"must compare the same metric"):
        callbacks.is_winning_ticket(ticket, callbacks.EarlyStop((x, y),
                                                                 (x, y)))
