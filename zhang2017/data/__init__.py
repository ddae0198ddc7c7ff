"""The datasets: readers of the CIFAR-10/MNIST/ImageNet copies, the corruptions, batches."""
