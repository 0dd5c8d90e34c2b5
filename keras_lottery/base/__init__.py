"""What every room stands on: the workdir's file names and atomic writes,
fault points for the kill tests, and import-path resolution."""
