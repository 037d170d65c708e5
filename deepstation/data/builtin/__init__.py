"""Built-in data sets, made from installed packages: nothing is downloaded."""
