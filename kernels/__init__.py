"""Device kernel sources (OpenCL C / CUDA C), loaded with importlib.resources."""
