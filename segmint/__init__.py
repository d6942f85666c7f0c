"""segmint: warehouse-native customer segmentation and activation."""

__version__ = "0.1.0"
