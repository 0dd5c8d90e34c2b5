"""The wrapper and the model's state: which weights are prunable
(`prunable`), the mask wrapper (`masking`), wrapping a model (`wrapping`),
and reading and writing masks and rewind points (`state`)."""
