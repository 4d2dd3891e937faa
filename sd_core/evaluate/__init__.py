"""``sd evaluate REAL GEN``: is the synthetic data any good?

- ``features``: the feature spaces (the real-trained classifier's embedding, band powers read
  from the image rows, and any a plugin registers through ``sd_feature_extractors``);
- ``fidelity``: the set-level metrics FID, KID and precision/recall/density/coverage
  (registered through ``sd_set_metrics``);
- ``bandpower``: strip and band geometry of the images, band statistics with bootstrap intervals;
- ``runs``: classifier runs made by the ``sd train`` loop; ``utility``: TSTR, TRTS, augmentation;
- ``memorisation``: distance to the nearest training image;
- ``run``: the evaluation in order; ``stages``: its steps after fidelity;
  ``report``: evaluation.json, report.html, terminal table;
- ``demo``: the evaluation stage of ``sd demo``.
"""
