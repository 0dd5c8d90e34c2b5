"""Exporting a ticket for serving: SavedModel and TensorFlow Lite, dense or
sparse layout, each checked against the Keras model before it is in place."""
