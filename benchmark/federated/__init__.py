"""The federated variant ("knowledge federation" face recognition): institutions train the shared
embedding network on faces that never leave them and share encrypted updates.

Orthogonal pieces (DESIGN.md, convention 5), one a file: ``aggregation`` (weighted FedAvg and other
rules, a registry), ``ckks`` (TenSEAL CKKS keys and checks), ``encryption`` (the plaintext,
third_party and blind workflows, a registry), ``local`` (an institution's training, the shared vector),
``client_app`` / ``server_app`` (the Flower apps and their Strategy), ``grid`` (in-process runs),
``deployment`` (SuperLink + SuperNodes as processes), ``stage`` (the pipeline stage).
"""
