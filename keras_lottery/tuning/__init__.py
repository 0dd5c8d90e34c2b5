"""The keras-tuner search over lottery configs (`search`)."""
