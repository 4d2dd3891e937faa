"""The stages of ``sd evaluate`` after fidelity: conditional accuracy, band power, memorisation, sample grid."""

from __future__ import annotations

from typing import Any

import numpy as np


def conditional_accuracy(ctx, tasks, gen_images, gen_rows, gen_embeddings=None) -> dict[str, Any]:
    """Per task: how often the real-trained classifier finds the class each image was generated for."""
    from sd_core.evaluate.runs import class_recalls

    clf = ctx.classifier()
    if gen_embeddings is not None:  # the classifier space was computed: reuse its embeddings
        outputs = clf.outputs_from_embeddings(gen_embeddings)
    else:
        outputs = clf.predict(gen_images)
    result = {}
    for t in tasks:
        own = next((x for x in clf.tasks if x.name == t.name), None)
        if own is None:
            result[t.name] = {"skipped": f"the classifier {clf.run} has no {t.name!r} head"}
            continue
        result[t.name] = class_recalls(outputs[t.name], gen_rows, own)
    return result


def classifier_summary(ctx, clf_holder: dict[str, Any], recipe) -> dict[str, Any] | None:
    """The result's ``classifier``: the run used, and whether (and how long) it was trained here."""
    clf = ctx._classifier
    return {"run": str(clf.run), "trained_here": clf_holder.get("trained_here", False),
            "image_size": clf.image_size, "backbone": clf.info.get("backbone"),
            "steps": recipe.steps if clf_holder.get("trained_here") else None} if clf else None


def band_power(params, size, imgs, tasks, real_rows, gen_rows, seed):
    """Band statistics of real against generated images (pooled and per class), and the spectrum figure."""
    from sd_core.evaluate.bandpower import (
        band_features,
        band_means,
        band_statistics,
        class_masks,
        geometry,
        row_profile,
        spectrum_plot,
    )

    if not params:
        return {"skipped": "the real folder has no preprocess.json"}, {}
    geo = geometry(params, size)
    real_u8 = imgs["real"][:, 0].numpy()
    gen_u8 = imgs["generated"][:, 0].numpy()
    rb = band_means(band_features(real_u8, geo), geo)
    gb = band_means(band_features(gen_u8, geo), geo)
    groups = {t.name: {c: (rm, class_masks(gen_rows, t)[c]) for c, rm in class_masks(real_rows, t).items()}
              for t in tasks}
    stats = band_statistics(rb, gb, geo, groups, seed)
    png = spectrum_plot(row_profile(real_u8, geo), row_profile(gen_u8, geo), geo, groups)
    return stats, {"spectrum": png}


def memorisation_result(imgs, gen_rows, train_rows) -> tuple[dict[str, Any], tuple]:
    """The memorisation result, and the two distance sets of its figure."""
    from sd_core.evaluate.memorisation import memorisation

    mem = memorisation(imgs["generated"], imgs["real_train"], imgs["real"], gen_rows, train_rows)
    figure = (mem.pop("_d_gen"), mem.pop("_d_real"))
    return mem, figure


def grid_sets(tasks, real_rows, gen_rows, imgs, per_row: int = 6):
    """Per class of the first task: a few real and generated images (uint8 arrays)."""
    from sd_core.evaluate.bandpower import class_masks

    t = tasks[0]
    rm, gm = class_masks(real_rows, t), class_masks(gen_rows, t)
    out = []
    for c in t.classes:
        ri, gi = np.flatnonzero(rm[c]), np.flatnonzero(gm[c])
        step = max(1, len(ri) // per_row)
        out.append((f"{t.name}={c}", [imgs["real"][i, 0].numpy() for i in ri[::step][:per_row]],
                    [imgs["generated"][i, 0].numpy() for i in gi[:per_row]]))
    return out
