"""charlstm: character-level LSTM name generator and portmanteau blender."""

import os

# Inference multiplies small matrices, where a second OpenBLAS thread costs more in
# synchronisation than it gains; the setting only counts before numpy is imported.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

__version__ = "0.1.0"
