"""zhang2017: a TensorFlow/Keras reproduction of Zhang et al. 2017."""

import setuptools

setuptools.setup(
    name='zhang2017',
    version='0.1.0',
    description=('Understanding deep learning requires rethinking '
                 'generalization: the randomization tests, reproduced.'),
    packages=setuptools.find_packages(include=['zhang2017', 'zhang2017.*']),
    python_requires='>=3.10',
    install_requires=[
        'absl-py>=1.0',
        'keras>=3.5',
        'numpy>=1.24',
        'pandas>=1.5',
        'pillow>=9.0',
        'matplotlib>=3.6',
        'scipy>=1.10',
    ],
    extras_require={
        # The TensorFlow backend, tf.data, tf.distribute and tfds.
        'tf': ['tensorflow-cpu>=2.16; platform_machine=="x86_64"',
               'tensorflow>=2.16; platform_machine!="x86_64"',
               'tensorboard', 'tensorflow-datasets>=4.9',
               'importlib_resources'],
        'jax': ['jax>=0.4.30'],
        # Sweeps on a Slurm cluster (python -m zhang2017.sweep --launcher=slurm).
        'slurm': ['submitit>=1.5'],
        'test': ['tensorflow-cpu>=2.16; platform_machine=="x86_64"',
                 'tensorflow>=2.16; platform_machine!="x86_64"',
                 'tensorboard', 'tensorflow-datasets>=4.9',
                 'importlib_resources', 'jax[cpu]>=0.4.30', 'pytest>=7',
                 'pytest-xdist>=3', 'submitit>=1.5'],
    },
)
