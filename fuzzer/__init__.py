"""convfuzz: an operator-sequence fuzzer for PyTorch -> ONNX converters and ONNX Runtime."""

__version__ = "0.1.0"
