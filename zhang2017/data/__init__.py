"""The datasets: readers of the CIFAR-10/MNIST/ImageNet copies, the user's datasets (folder, function, tfds), the corruptions, batches."""
