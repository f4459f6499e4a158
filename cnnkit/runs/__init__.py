"""Runs on disk: the run folders (`store`), training jobs in their own processes (`jobs`), and
who sees which runs (`workspaces`). No TensorFlow: the server lists and watches runs cheaply.
"""
