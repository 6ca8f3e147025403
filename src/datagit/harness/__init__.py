"""The training/evaluation harness: the only package that imports torch (lazily)."""
