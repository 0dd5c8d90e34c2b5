"""Studies: grids of lottery runs, run on Ray (docs/STUDIES.md).

A study declares its runs (`Run`: the commands each executes, the runs it
reads, the files that say it is recorded) and its report (`Study`);
`runner.run_study` runs what is not recorded in dependency order, one Ray
task per run, on this machine or a cluster; `keras-lottery study NAME`
does it from the command line (`catalog`: the built-in studies, or a
user's `module:function`).

Importing it loads neither Ray nor TensorFlow.
"""

from keras_lottery.studies.catalog import Options
from keras_lottery.studies.grid import Call
from keras_lottery.studies.grid import Command
from keras_lottery.studies.grid import Run
from keras_lottery.studies.grid import Study

__all__ = ["Call", "Command", "Options", "Run", "Study"]
