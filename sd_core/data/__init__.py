"""Reading processed data sets (real or generated) for training and evaluation.

- ``sources``: find a processed folder and read its metadata rows.
- ``tasks``: resolve task names across one or several data sets into targets.
- ``images``: a torch dataset of images, per-task targets and metadata rows.
- ``sampling``: balanced (data set × class) sampling weights and the epoch order.
"""
