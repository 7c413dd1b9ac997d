"""charlstm: character-level LSTM name generator and portmanteau blender.

The public Python API (see README, "Python API")::

    import charlstm
    model = charlstm.load()
    model.generate(10, seed=1)
"""

__version__ = "0.1.0"

from charlstm.api import Model, blend, display_name, load, train
from charlstm.errors import CharlstmError, OptionError

__all__ = ["CharlstmError", "Model", "OptionError", "__version__", "blend", "display_name", "load", "train"]
