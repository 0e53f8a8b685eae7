"""Brain data as measured responses: (runs, N stimuli, C channels) -> an RDM per subject.

rsaflow.responses.noise: noise precision from residuals (rsatoolbox's prec_from_residuals);
rsaflow.responses.rdms: the response metrics (rsatoolbox's calc_rdm) and their registry;
rsaflow.responses.io: reading and checking response, mask and residual files. Torch-free.
"""
