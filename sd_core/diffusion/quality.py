"""Generation quality while a diffusion model trains (``[training] quality_steps``).

Every N steps the EMA model generates one image per row of a fixed batch of real validation
images, with those rows' labels, and KID and FID compare the two batches in the embedding of a
classifier trained on real data: ``sd evaluate``'s ``classifier`` space, with its normalisation
(centred on the real batch, divided by one scale). The classifier is ``quality_classifier`` (a
run of ``sd train``) or one trained here, once, on the training split at the model's size.
Lower is better; checkpoints are then kept by KID.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from sd_core.errors import ConfigError

QUALITY_SPLIT = "val"


class QualityProbe:
    def __init__(self, exp: Any, project: Any, registry: Any, run: Path, spec: Any, text: Any = None) -> None:
        from sd_core.data.images import ProcessedImages
        from sd_core.data.select import read_rows, sources_for
        from sd_core.diffusion.plans import label_tensors
        from sd_core.diffusion.rows import caption, label_row

        d, tr = exp["data"], exp["training"]
        src = f"{exp.source}: [training] quality_steps"
        self.seed = int(tr["seed"])
        overrides = {k: exp.path(v) for k, v in d["paths"].items()}
        sources = sources_for(d["datasets"], overrides, project, registry, where=f"{exp.source}: [data] datasets")
        rows = read_rows(sources, QUALITY_SPLIT)
        if len(rows) < 4:
            raise ConfigError(f"{src} needs real {QUALITY_SPLIT} images to compare with; "
                              f"{', '.join(str(s.root) for s in sources)} has {len(rows)}")
        rng = np.random.default_rng(self.seed)
        n = min(int(tr["quality_images"]), len(rows))
        rows = [rows[i] for i in sorted(rng.choice(len(rows), n, replace=False))]
        self.rows = rows
        self.real = ProcessedImages(rows, [], d["image_size"]).images_uint8(list(range(n)))
        items = [{"dataset": r.get("dataset", ""), "labels": {t.name: t.raw_value(r) for t in spec.conditions}}
                 for r in rows]
        self.labels = label_tensors(spec, items)
        self.text = text.encode([caption(label_row(spec, it), registry) for it in items]) if text else None
        self.classifier = self._classifier(exp, project, registry, run, spec, sources, src)
        feats = self.classifier.embed(self.real)
        self.mu = feats.mean(0)
        scale = float(np.sqrt(feats.var(0).mean())) if len(feats) > 1 else 1.0
        self.scale = scale if scale > 1e-12 else 1.0
        self.real_feats = (feats - self.mu) / self.scale

    def _classifier(self, exp, project, registry, run, spec, sources, src):
        from sd_core.evaluate.runs import TrainingRecipe, ensure_run, experiment_text, load_classifier

        given = exp["training"]["quality_classifier"]
        if given:
            return load_classifier(exp.path(given), registry)
        tasks = [t.name for t in spec.categorical]
        if len(sources) != 1 or not tasks:
            raise ConfigError(f"{src}: set [training] quality_classifier to an sd train run; sd trains one "
                              "itself only for one data set and at least one classification condition")
        recipe = TrainingRecipe(int(exp["data"]["image_size"]))
        text = experiment_text(sources[0].dataset, tasks, sources[0].root, exp["data"]["split"], recipe,
                               self.seed, run / "quality-classifier")
        return load_classifier(ensure_run(text, run / "quality-classifier", registry, project), registry)

    def measure(self, net: Any, scheduler_config: Any, steps: int, guidance: float,
                device: Any = "cpu") -> dict[str, float]:
        """KID (with its standard error) and FID of ``net``'s images against the real batch."""
        from sd_core.diffusion.sampling import make_scheduler, sample, to_uint8
        from sd_core.evaluate.fidelity import fid, kid

        with torch.no_grad():
            images = sample(net, make_scheduler("dpm", scheduler_config), self.labels, self.text, steps=steps,
                            guidance=guidance, seed=self.seed, device=device)
        gen = (self.classifier.embed(to_uint8(images)[:, None]) - self.mu) / self.scale
        k = kid(self.real_feats, gen, self.seed)
        return {"kid": k["kid"], "kid_se": k["kid_se"], "fid": fid(self.real_feats, gen, self.seed)["fid"]}
