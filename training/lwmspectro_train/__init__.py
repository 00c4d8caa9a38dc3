"""LWM-Spectro offline package (torch): model, training stages, evaluation and ONNX export."""
