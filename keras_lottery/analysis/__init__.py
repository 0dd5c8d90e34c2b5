"""Reading finished workdirs: the lottery report (tables and plots) and
the cost report."""
