"""The paper's theory and linear-model sections: Theorem 1, kernels, random features."""
