"""The shipped imaging models, scored from their weights on the named splits, beside published figures.

- PneumoniaMNIST (val; we hold no test split) and BreastMNIST (test): AUC and ACC with 95% bootstrap CIs,
  beside the MedMNIST v2 table (ResNet-18 (28), ResNet-50 (224), Google AutoML);
- DRIVE vessels (official 20 test images, inside the FOV, first observer): F1/Dice, accuracy, AUC, beside
  the second observer (human level) and the U-Net of the R2U-Net paper;
- the denoiser at sigma 15/25/50 and Poisson noise: PSNR/SSIM of noisy, non-local means, BM3D, ours
  (BM3D-guided U-Net, one pass and x8, the x8 self-ensemble being what ``enhance`` runs by default for it)
  and the unguided U-Net on the same crops in one run.
"""

from __future__ import annotations

import pandas as pd

from benchmarks.harness import markdown_table
from smartcare.core.data import data_root
from smartcare.imaging.enhance_apply import load_denoiser
from smartcare.imaging.enhance_train import compare
from smartcare.imaging.medmnist import load_split
from smartcare.imaging.segment import config_from_card
from smartcare.imaging.segment_train import evaluate_test, load_segmenter
from smartcare.imaging.train import evaluate, load_classifier

NAME = "imaging_models"
TITLE = "Imaging: shipped classifiers, DRIVE segmenter and denoiser scored from their weights"
MEDMNIST = {  # published MedMNIST v2 test figures (AUC, ACC)
    "pneumoniamnist": {"ResNet-18 (28)": (0.944, 0.854), "ResNet-50 (224)": (0.962, 0.884),
                       "Google AutoML": (0.991, 0.946)},
    "breastmnist": {"ResNet-18 (28)": (0.901, 0.863)},
}
SPLITS = {"pneumoniamnist": "val", "breastmnist": "test"}


def _classifiers(root) -> tuple[pd.DataFrame, dict]:
    rows, metrics = [], {}
    for name, split in SPLITS.items():
        model, _ = load_classifier(name)
        images, labels = load_split(name, split, root=root)
        m = evaluate(model, images, labels)
        auc, acc = m["auc"], m["acc"]
        metrics[f"{name}_{split}_auc"], metrics[f"{name}_{split}_acc"] = auc[0], acc[0]
        rows.append({"dataset": name, "model": f"smartcare ({split})", "AUC": f"{auc[0]:.4f} [{auc[1]:.4f}, "
                     f"{auc[2]:.4f}]", "ACC": f"{acc[0]:.4f} [{acc[1]:.4f}, {acc[2]:.4f}]"})
        for ref, (a, c) in MEDMNIST[name].items():
            rows.append({"dataset": name, "model": f"{ref} (published, test)", "AUC": a, "ACC": c})
    return pd.DataFrame(rows), metrics


def _drive(root) -> tuple[pd.DataFrame, dict, dict]:
    model, card = load_segmenter("drive-vessels")
    ours, human = evaluate_test(model, config_from_card(card), float(card["threshold"]), data_root=root,
                                tta=bool(card.get("tta", True)))
    table = pd.DataFrame([
        {"who": "smartcare drive-vessels", "F1": ours["f1"], "Acc": ours["acc"], "AUC": ours.get("auc")},
        {"who": "2nd observer (human)", "F1": human["f1"], "Acc": human["acc"], "AUC": None},
        {"who": "U-Net, R2U-Net paper", "F1": 0.8142, "Acc": 0.9531, "AUC": 0.9755},
    ])
    return table, {"drive_test_f1": ours["f1"], "drive_test_auc": ours.get("auc")}, {"drive_2nd_observer_f1":
                                                                                       human["f1"]}


def _denoise(root) -> tuple[pd.DataFrame, dict, dict, dict]:
    model, _ = load_denoiser("denoise")  # BM3D-guided
    unguided, _ = load_denoiser("denoise-unet")
    result = compare(model.eval(), root, log=lambda *a: None, others={"unguided": unguided})
    rows = []
    for cond, sets in result.items():
        if cond == "images":  # the list of test crops, not a condition
            continue
        for method, v in sets["all"].items():
            rows.append({"condition": cond, "method": method, "PSNR": v["psnr"], "SSIM": v["ssim"]})
    table = pd.DataFrame(rows)
    g25 = result["gaussian-25"]["all"]
    return (table, {"denoise_sigma25_psnr": g25["ours"]["psnr"], "denoise_x8_sigma25_psnr": g25["ours-x8"]["psnr"],
                    "denoise_unguided_sigma25_psnr": g25["unguided"]["psnr"],
                    "denoise_ct_sigma25_psnr": result["gaussian-25"]["ct"]["ours"]["psnr"]},
            {"bm3d_sigma25_psnr": g25["bm3d"]["psnr"], "nlm_sigma25_psnr": g25["nlm"]["psnr"],
             "bm3d_ct_sigma25_psnr": result["gaussian-25"]["ct"]["bm3d"]["psnr"]},
            {"denoise_minus_bm3d_db_sigma25": g25["ours"]["psnr"] - g25["bm3d"]["psnr"],
             "denoise_x8_minus_bm3d_db_sigma25": g25["ours-x8"]["psnr"] - g25["bm3d"]["psnr"]})


def run() -> dict:
    root = data_root()
    cls_table, metrics = _classifiers(root)
    drive_table, drive_m, drive_peer = _drive(root)
    den_table, den_m, den_peer, den_ratio = _denoise(root)
    metrics.update(drive_m)
    metrics.update(den_m)
    ratios = {"drive_f1_vs_unet_paper": drive_m["drive_test_f1"] / 0.8142,
              "drive_f1_vs_2nd_observer": drive_m["drive_test_f1"] / drive_peer["drive_2nd_observer_f1"], **den_ratio}
    return {"metrics": metrics, "peer": {**drive_peer, **den_peer}, "ratios": ratios,
            "tables": {"classification (95% bootstrap CIs)": markdown_table(cls_table),
                       "DRIVE test, inside the FOV, first observer": markdown_table(drive_table),
                       "denoising, all test crops (DRIVE green + CT)": markdown_table(den_table)},
            "notes": "PneumoniaMNIST is scored on val because the official test split is held back."}
