"""Reference trainable-parameter counts, copied from independent sources (never computed here).

Each entry: registered name -> (trainable parameters at the registry's default input and
classes, where the figure comes from). Every registered model must have a row: a model whose
count nobody has checked against an outside figure is not done.
"""

REFERENCE_PARAMS = {
    # Derived from LeCun et al. 1998: conv 5x5 1->6 (156) + conv 5x5 6->16 (2,416)
    # + dense 400->120 (48,120) + 120->84 (10,164) + 84->10 (850), full C3 connections.
    "lenet5": (61_706, "derived from LeCun et al. 1998, Section II.B"),
}
