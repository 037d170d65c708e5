"""Serving a trained model: the MLflow pyfunc flavour (pyfunc.py), the HTTP server speaking MLflow's scoring
protocol (http.py, with request frames decoded by frames.py), Ray Serve replicas (ray.py) and ONNX export and
inference (onnx.py). Nothing here is imported until `deepstation serve` or `export` runs."""
