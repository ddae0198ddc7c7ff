"""The models: the paper's architectures, ResNet-18 and VGG-11-BN, plug-ins
(registry.py), and their layers."""
