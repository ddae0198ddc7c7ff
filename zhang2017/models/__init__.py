"""The models: the paper's architectures and their layers."""
