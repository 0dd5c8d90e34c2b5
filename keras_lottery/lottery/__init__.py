"""The lottery experiment: the round loop (`runner`), a round's training
(`trainer`), the run config, the controls, early-bird, the rewind search and
instability, transfer, cost, and `run_experiment` (`experiment`)."""
