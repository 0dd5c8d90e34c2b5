"""The datasets a config names: raw readers (`readers`), MNIST-1D's
generator (`mnist1d`), and splitting and normalizing (`datasets`)."""
