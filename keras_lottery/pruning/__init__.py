"""What to prune and how: the selection maths (`selection`), criteria
that score (`criteria`, `scoring`), the pruner that applies them to a model
(`pruner`), pruning at initialisation (`at_init`) and cutting pruned units
out of a model (`shrinking`; attention heads: `heads`)."""
