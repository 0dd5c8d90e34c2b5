"""The training engine: the custom loop under tf.distribute
(`training`, `feeding`, `evaluation`), sparse compute paths, multi-worker
distribution, callbacks and progress lines."""
