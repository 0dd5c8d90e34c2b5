"""`python -m binaries COMMAND ...`, as the `keras-lottery` script."""

from binaries import command

if __name__ == "__main__":
    command.main()
