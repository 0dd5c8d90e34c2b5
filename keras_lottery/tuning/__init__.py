"""The keras-tuner search over lottery configs (`search`), and what a
trial scores (`objectives`)."""
