"""Published test accuracies on the UCR/UEA sets that sktime bundles (builtin:ucr/NAME), for the classical and deep
references of series classification, each with where it was read. A figure nobody published, or that could not be
found, is None, and the entry says so; nothing here is estimated.

Every figure is on the archive's own train/test split (resample 0):
- rocket: ROCKET (Dempster, Petitjean and Webb, "ROCKET: exceptionally fast and accurate time series classification
  using random convolutional kernels", Data Mining and Knowledge Discovery 34, 2020), the mean of 10 runs on the
  128 UCR sets: github.com/angus924/rocket, results/results_ucr.csv (commit 36bd908). Variable-length sets were padded
  to their longest series (code/reproduce_experiments_ucr.py). The paper reports no UEA (multivariate) results.
- minirocket: MiniRocket (Dempster, Schmidt and Webb, KDD 2021) on 109 UCR sets (the variable-length ones, PLAID
  among them, are left out): resample 0 of github.com/angus924/minirocket, results/accuracy_ucr109_resamples.csv
  (commit 0b1c245; the author confirms resample 0 is the original split in angus924/minirocket issue 27);
  minirocket_30_resamples is the paper's figure, the mean over 30 resamples (results/results_ucr109_mean.csv).
  No UEA results were published.
- inceptiontime: InceptionTime, an ensemble of 5 Inception networks (Ismail Fawaz et al., "InceptionTime: finding
  AlexNet for time series classification", Data Mining and Knowledge Discovery 34, 2020), on the 128 UCR sets:
  github.com/hfawaz/InceptionTime, results-InceptionTime-128.csv (commit 952d115). The paper's own table covers the
  85-set 2015 archive (results-InceptionTime-85.csv): GunPoint 1.0, ItalyPowerDemand 0.9679. On the UEA sets the
  only figures found are results-mts.csv, added to that repository in commit 0d623a3 (2019-09-30) and no longer
  linked from its README (the line is commented out): not in the paper, so read them as the authors' unreviewed run.
- dtw: 1-NN DTW with the full warping window, the UCR archive's own benchmark (Dau et al., "The UCR time series
  archive", IEEE/CAA Journal of Automatica Sinica 6, 2019; its data-set table lists error rates), as copied with the
  table into github.com/ChangWeiTan/MultiRocket, utils/data_loader.py (commit 3ccaa4f); accuracy = 1 - error. The
  UEA archive paper (Bagnall et al. 2018, arXiv:1811.00075) has DTW figures too, but they could not be read here.
The multivariate bake-off (Ruiz et al., "The great multivariate time series classification bake off", Data Mining
and Knowledge Discovery 35, 2021) scores ROCKET, InceptionTime and DTW on the 26 equal-length UEA sets, BasicMotions
among them; its per-set table could not be read here, so those entries stay None.
"""
from __future__ import annotations

PUBLISHED = {
    "GunPoint": {
        "shape": "univariate, equal length (150); 50 train, 150 test, 2 classes",
        "rocket": 1.0, "minirocket": 0.993333, "minirocket_30_resamples": 0.992444, "inceptiontime": 1.0,
        "dtw": 1 - 0.0933,
        "source": "rocket: angus924/rocket results/results_ucr.csv; minirocket: angus924/minirocket "
                  "results/accuracy_ucr109_resamples.csv (resample 0) and results_ucr109_mean.csv; inceptiontime: "
                  "hfawaz/InceptionTime results-InceptionTime-128.csv; dtw: UCR archive table (error 0.0933)",
    },
    "ItalyPowerDemand": {
        "shape": "univariate, equal length (24); 67 train, 1029 test, 2 classes",
        "rocket": 0.96958212, "minirocket": 0.968902, "minirocket_30_resamples": 0.959572,
        "inceptiontime": 0.9650145772594751, "dtw": 1 - 0.0496,
        "source": "rocket: angus924/rocket results/results_ucr.csv; minirocket: angus924/minirocket "
                  "results/accuracy_ucr109_resamples.csv (resample 0) and results_ucr109_mean.csv; inceptiontime: "
                  "hfawaz/InceptionTime results-InceptionTime-128.csv; dtw: UCR archive table (error 0.0496)",
    },
    "ACSF1": {
        "shape": "univariate, equal length (1460); 100 train, 100 test, 10 classes",
        "rocket": 0.886, "minirocket": 0.92, "minirocket_30_resamples": 0.822333, "inceptiontime": 0.92,
        "dtw": 1 - 0.36,
        "source": "rocket: angus924/rocket results/results_ucr.csv; minirocket: angus924/minirocket "
                  "results/accuracy_ucr109_resamples.csv (resample 0) and results_ucr109_mean.csv; inceptiontime: "
                  "hfawaz/InceptionTime results-InceptionTime-128.csv; dtw: UCR archive table (error 0.36)",
    },
    "PLAID": {
        "shape": "univariate, unequal length (100-1344); 537 train, 537 test, 11 classes",
        "rocket": 0.90260708, "minirocket": None, "minirocket_30_resamples": None,
        "inceptiontime": 0.9441340782122905, "dtw": 1 - 0.1601,
        "source": "rocket: angus924/rocket results/results_ucr.csv (series padded to the longest); minirocket: None, "
                  "PLAID is not among MiniRocket's 109 sets (variable length); inceptiontime: hfawaz/InceptionTime "
                  "results-InceptionTime-128.csv; dtw: UCR archive table (error 0.1601)",
    },
    "BasicMotions": {
        "shape": "multivariate (6 channels), equal length (100); 40 train, 40 test, 4 classes",
        "rocket": None, "minirocket": None, "minirocket_30_resamples": None, "inceptiontime": 1.0, "dtw": None,
        "source": "rocket, minirocket: None, neither paper reports UEA sets and the multivariate bake-off's table "
                  "(Ruiz et al. 2021) could not be read here; inceptiontime: hfawaz/InceptionTime results-mts.csv "
                  "(commit 0d623a3, unlinked from the README, not in the paper); dtw: None, not found",
    },
    "JapaneseVowels": {
        "shape": "multivariate (12 channels), unequal length (7-29); 270 train, 370 test, 9 classes",
        "rocket": None, "minirocket": None, "minirocket_30_resamples": None, "inceptiontime": 0.9918918918918921,
        "dtw": None,
        "source": "rocket, minirocket: None, neither paper reports UEA sets and the multivariate bake-off's table "
                  "(Ruiz et al. 2021) could not be read here; inceptiontime: hfawaz/InceptionTime "
                  "results-mts.csv (commit 0d623a3, unlinked from the README, not in the paper); dtw: None, not found",
    },
}

# The sets above as sktime 1.2 bundles them (sktime/datasets/data/NAME/NAME_TRAIN.ts and _TEST.ts): all six are there.
# deepstation.data.builtin.series.ucr loads them as numpy3D, which fails on the unequal-length ones (JapaneseVowels,
# PLAID: "all input arrays must have the same shape") as of this file.
BUNDLED_BY_SKTIME = ("ACSF1", "BasicMotions", "GunPoint", "ItalyPowerDemand", "JapaneseVowels", "PLAID")
