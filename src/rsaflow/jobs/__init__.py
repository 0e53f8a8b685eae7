"""One module per workflow step: read the inputs, call the pure functions, write the artifact.

The workflow's scripts call these; each rule depends on the module files it uses, so editing a
step reruns exactly that step's jobs.
"""
