"""Evaluation tasks beyond language modelling: targeted syntactic evaluation, logical inference."""
