"""Neural networks: layers (forward/backward/init), optimizers (init/update), models (ffn, cnn)."""
