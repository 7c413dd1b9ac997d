"""charlstm: character-level LSTM name generator and portmanteau blender."""

__version__ = "0.1.0"
